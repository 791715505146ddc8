"""Latin words read one edit away from a known English word, corrected where the frames allow it.

Why: the character language model (``ocr.recognize.language``) judges each letter from the three before
it, so it cannot tell that ``CHCCOLATE`` is one letter from a word. On the validation slice of
``../shared/train`` about a quarter of the fast model's misread scene words are one edit from their label,
and the label is a common English word. Here a read token that is no known word is compared with every
known word one edit away *on the line's own frames*: the CTC probability of each spelling, summed over
every frame path within the token's frames (``ocr.decode.ctc_log_likelihood``). A known word replaces the
reading only if the frames give it at most ``margin`` nats less than the reading itself, so a clearly
printed name or code keeps its letters, and an unsure letter falls to the word.

Letters are compared case-folded (the frames' upper- and lower-case probabilities summed); the corrected
word takes, letter by letter, the case its frames prefer. Digits and other scripts are never changed
except a single digit inside a Latin token (``5ALE``), which may be read as a letter.

The word list (``weights/lexicon_en.txt.gz``, ``python -m training.build_lm``) comes from wordfreq's English
list, which ships in a pip package: never from ``../shared``.
"""

from __future__ import annotations

import gzip
import re
import string
from pathlib import Path
from typing import Sequence

import numpy as np

from ocr.decode import LineDecoding, ctc_log_likelihood, forced_align
from ocr.engines import read_checked_once
from ocr.recognize.charset import BLANK, Charset
from ocr.settings import WEIGHTS_DIR

#: tokens shorter than this have too many one-edit neighbours to be corrected safely
MIN_TOKEN = 3
#: a token with more digits than this is a code or a number, not a misread word
MAX_DIGITS = 1
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_ALPHABET = string.ascii_lowercase


class Lexicon:
    """A set of lower-case ASCII words and their one-edit neighbourhoods."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = frozenset(w for w in words if w.isascii() and w.isalpha())

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.words

    def neighbours(self, token: str) -> list[str]:
        """The known words one deletion, transposition, substitution or insertion from ``token`` (folded)."""
        t = token.lower()
        splits = [(t[:i], t[i:]) for i in range(len(t) + 1)]
        edits = {a + b[1:] for a, b in splits if b}
        edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        edits |= {a + c + b[1:] for a, b in splits if b for c in _ALPHABET}
        edits |= {a + c + b for a, b in splits for c in _ALPHABET}
        edits.discard(t)
        return sorted(w for w in edits if len(w) >= MIN_TOKEN and w in self.words)

    def save(self, path: Path) -> None:
        """One word a line, sorted; gzip without a timestamp, so a rebuild writes the same bytes."""
        with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
            f.write(("\n".join(sorted(self.words)) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> "Lexicon":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return cls(f.read().split())


def correctable_tokens(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of ASCII letters and digits that may be a misread word: at least
    ``MIN_TOKEN`` long, at most ``MAX_DIGITS`` digits, the rest letters."""
    spans = []
    for m in _TOKEN.finditer(text):
        token = m.group()
        if len(token) >= MIN_TOKEN and sum(ch.isdigit() for ch in token) <= MAX_DIGITS:
            spans.append((m.start(), m.end()))
    return spans


class _FoldedFrames:
    """A token's frames with each letter's upper- and lower-case probabilities summed into one column: blank,
    then one column per symbol (every ASCII letter and the token's own characters), built once per token."""

    def __init__(self, frames: np.ndarray, charset: Charset, token: str) -> None:
        self.frames = frames
        self.charset = charset
        classes = {ch: self.classes(ch) for ch in dict.fromkeys(_ALPHABET + token.lower())}
        symbols = [ch for ch, found in classes.items() if found]
        self.columns = {ch: k + 1 for k, ch in enumerate(symbols)}
        self.matrix = np.stack([frames[:, BLANK], *(frames[:, classes[ch]].sum(axis=1) for ch in symbols)], axis=1)

    def classes(self, ch: str) -> list[int]:
        return [self.charset.encode(v)[0] for v in dict.fromkeys((ch.lower(), ch.upper())) if v in self.charset]

    def labels(self, word: str) -> list[int] | None:
        """The folded columns of ``word``'s characters (None if the charset lacks one)."""
        out = [self.columns.get(ch) for ch in word.lower()]
        return None if None in out else out  # type: ignore[return-value]

    def log_likelihood(self, word: str) -> float:
        labels = self.labels(word)
        return -np.inf if labels is None else ctc_log_likelihood(self.matrix, labels)

    def cased(self, word: str) -> list[int] | None:
        """``word``'s class indices, each letter in the case its aligned frames give more probability."""
        labels = self.labels(word)
        spans = forced_align(self.matrix, labels) if labels else []
        if not spans:
            return None
        return [max(self.classes(ch), key=lambda c: float(self.frames[t0 : t1 + 1, c].sum()))
                for ch, (t0, t1) in zip(word, spans)]


def token_frames(line: LineDecoding, start: int, end: int, n_frames: int) -> tuple[int, int]:
    """The frames a token may use: from after the character before it to before the character after it."""
    t0 = line.chars[start - 1].t_end + 1 if start > 0 else 0
    t1 = line.chars[end].t_start if end < len(line.chars) else n_frames
    return t0, t1


def corrected_labels(probs: np.ndarray, line: LineDecoding, charset: Charset, lexicon: Lexicon,
                     margin: float) -> list[int] | None:
    """The line's class indices with each correctable, unknown token replaced by the known word the
    frames favour most, where that word is at most ``margin`` nats less likely than the reading;
    None when nothing changes."""
    if len(line.chars) != len(line.text):
        return None
    labels = [c.index for c in line.chars]
    changed = False
    for start, end in reversed(correctable_tokens(line.text)):  # right to left: earlier spans stay valid
        token = line.text[start:end]
        if token in lexicon:
            continue
        candidates = lexicon.neighbours(token)
        if not candidates:
            continue
        t0, t1 = token_frames(line, start, end, probs.shape[0])
        folded = _FoldedFrames(probs[t0:t1], charset, token)
        scores = {w: folded.log_likelihood(w) for w in candidates}
        best = max(candidates, key=lambda w: scores[w])
        if scores[best] < folded.log_likelihood(token) - margin:
            continue
        cased = folded.cased(best)
        if cased is None:
            continue
        labels[start:end] = cased
        changed = True
    return labels if changed else None


#: the shipped word list (``python -m training.build_lm``), checked against ``weights/SHA256SUMS``
DEFAULT_LEXICON = WEIGHTS_DIR / "lexicon_en.txt.gz"


def default_lexicon(path: Path = DEFAULT_LEXICON) -> Lexicon:
    """The word list, read once per process on first use."""
    return read_checked_once(path, Lexicon.load, "word list", "python -m training.build_lm")
