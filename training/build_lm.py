"""Build the decoder's character language model from word lists that ship in pip packages.

    python -m training.build_lm --out weights/lm_char.txt.gz --lexicon-out weights/lexicon_en.txt.gz

Sources (credited in weights/README.md): jieba 0.42.1's ``dict.txt`` (MIT; ~350k Chinese words
with corpus counts) and wordfreq 3.1.1's English list (code Apache-2.0, data CC BY-SA 4.0; the
most frequent ``--english-words`` words). The same English words, those of ASCII letters only, are the
word list of ``ocr.recognize.lexicon``. Never the evaluation labels, and not ``../shared/train``
either: the model is meant to know language, not our sets.

A word weighs ``log(1 + count)``: raw counts would let a handful of function words decide every
context, type counts would let rare words weigh as much as common ones.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Iterator

from ocr.recognize.language import ORDER, CharLanguageModel
from ocr.recognize.lexicon import Lexicon


def jieba_words() -> Iterator[tuple[str, float]]:
    import jieba

    path = Path(jieba.__file__).parent / "dict.txt"
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                yield parts[0], math.log1p(float(parts[1]))


def english_words(n: int) -> Iterator[tuple[str, float]]:
    import wordfreq

    for word in wordfreq.top_n_list("en", n):
        yield word, math.log1p(wordfreq.word_frequency(word, "en") * 1e9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("weights/lm_char.txt.gz"))
    parser.add_argument("--english-words", type=int, default=100_000)
    parser.add_argument("--order", type=int, default=ORDER)
    parser.add_argument("--lexicon-out", type=Path, default=Path("weights/lexicon_en.txt.gz"))
    args = parser.parse_args(argv)
    english = list(english_words(args.english_words))
    words = [*jieba_words(), *english]
    model = CharLanguageModel.from_words(words, order=args.order)
    model.save(args.out)
    print(f"{args.out}: {len(words)} words, {len(model.followers)} contexts, {args.out.stat().st_size / 1e6:.1f} MB")
    lexicon = Lexicon([w for w, _ in english])
    lexicon.save(args.lexicon_out)
    print(f"{args.lexicon_out}: {len(lexicon.words)} words, {args.lexicon_out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
