"""A character language model for the beam-search decoder, built from word lists that ship in packages.

Why characters and why words: a line is read character by character, so the decoder asks
"how likely is this next character after these?"; word lists with frequencies (jieba's Chinese
dictionary, wordfreq's English list: ``training.build_lm``) teach which characters follow
which inside words. Only letters (of any script, CJK included) are judged: digits, punctuation and symbols
(prices, dates, codes on receipts) are neutral and break the context, because no word list
knows which number comes next.

The model is an interpolated Witten-Bell n-gram: every order's estimate is mixed with the
shorter context's, so a pair never seen inside one word (two Chinese words side by side) falls
back to how common the character is rather than being ruled out. The decoder adds
``weight * log(P(c | history) * V)`` per judged character: the log-ratio against a uniform
guess over the ``V`` known characters, so common continuations gain and rare ones lose while
the length of a reading is not penalised.
"""

from __future__ import annotations

import gzip
import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from ocr.engines import read_checked_once
from ocr.settings import WEIGHTS_DIR

#: context of at most ``ORDER - 1`` characters
ORDER = 4
#: the lowest log-ratio a character gets: a letter no word list holds in that place (several
#: back-off escapes, down to -22) is doubted, not ruled out, when the image insists on it
MIN_BONUS = -8.0


def is_judged(ch: str) -> bool:
    """Letters of any script (CJK ideographs included): what the word lists can say something about.
    A letter the lists never hold (``à`` inside an English word, a kana) is judged too, and loses."""
    return ch.isalpha()


def fold(ch: str) -> str:
    return ch.lower()


class CharLanguageModel:
    """Interpolated Witten-Bell character n-gram over judged characters (see the module docstring)."""

    def __init__(self, followers: dict[str, dict[str, float]], order: int = ORDER) -> None:
        self.followers = followers
        self.order = order
        self.totals = {h: sum(f.values()) for h, f in followers.items()}
        self.vocab_size = max(1, len(followers.get("", {})))
        self._bonus: dict[tuple[str, str], float] = {}

    @classmethod
    def from_words(cls, weighted_words: Iterable[tuple[str, float]], order: int = ORDER) -> "CharLanguageModel":
        """Count every n-gram (up to ``order``) inside each run of judged characters of each word."""
        counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for word, weight in weighted_words:
            for run in judged_runs(word):
                for i, ch in enumerate(run):
                    for k in range(min(i, order - 1) + 1):
                        counts[run[i - k : i]][ch] += weight
        return cls({h: dict(f) for h, f in counts.items()}, order)

    def probability(self, history: str, ch: str) -> float:
        """P(ch | the last ``order - 1`` judged characters of ``history``), Witten-Bell interpolated."""
        history = self._tail(history)
        p = 1.0 / (self.vocab_size + 1)  # the floor: a character no word list holds
        for k in range(len(history) + 1):
            h = history[len(history) - k:]
            followers = self.followers.get(h)
            if not followers:
                break
            distinct, total = len(followers), self.totals[h]
            p = (followers.get(ch, 0.0) + distinct * p) / (total + distinct)
        return p

    def _tail(self, text: str) -> str:
        """The last ``order - 1`` characters of ``text`` (all of a shorter one): what a history can be."""
        return text[-(self.order - 1):] if self.order > 1 else ""

    def __call__(self, prefix: str, next_char: str) -> float:
        """The decoder's hook: log-ratio bonus of ``next_char`` after ``prefix`` (0 when not judged)."""
        if not is_judged(next_char):
            return 0.0
        key = (self._tail(prefix), next_char)  # all the history can depend on
        bonus = self._bonus.get(key)
        if bonus is None:
            bonus = self._bonus_of(prefix, next_char)
            if len(self._bonus) < 1_000_000:
                self._bonus[key] = bonus
        return bonus

    def _bonus_of(self, prefix: str, next_char: str) -> float:
        history = []
        for ch in reversed(prefix):
            if not is_judged(ch) or len(history) == self.order - 1:
                break
            history.append(fold(ch))
        ratio = self.probability("".join(reversed(history)), fold(next_char)) * self.vocab_size
        return max(MIN_BONUS, math.log(ratio))

    def save(self, path: Path) -> None:
        """One context per line: ``context<TAB>char weight char weight ...`` (gzip, UTF-8)."""
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
            f.write(f"#order\t{self.order}\n")
            for h in sorted(self.followers):
                items = " ".join(f"{c}{w:.3g}" for c, w in sorted(self.followers[h].items()))
                f.write(f"{h}\t{items}\n")

    @classmethod
    def load(cls, path: Path) -> "CharLanguageModel":
        followers: dict[str, dict[str, float]] = {}
        order = ORDER
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                h, _, items = line.rstrip("\n").partition("\t")
                if h == "#order":
                    order = int(items)
                    continue
                followers[h] = {tok[0]: float(tok[1:]) for tok in items.split(" ")}
        return cls(followers, order)


def judged_runs(text: str) -> list[str]:
    """The maximal runs of judged characters in ``text``, case-folded."""
    runs, current = [], []
    for ch in text:
        if is_judged(ch):
            current.append(fold(ch))
        elif current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs


#: the shipped model (``python -m training.build_lm``), checked against ``weights/SHA256SUMS``
DEFAULT_LM = WEIGHTS_DIR / "lm_char.txt.gz"


def default_language_model(path: Path = DEFAULT_LM) -> CharLanguageModel:
    """The language model, read once per process on first use (0.8 s, ~120 MB)."""
    return read_checked_once(path, CharLanguageModel.load, "language model", "python -m training.build_lm")
