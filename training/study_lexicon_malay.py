"""Study (chooses nothing): would Malay words in the word list help receipts? Validation slice only.

    OMP_NUM_THREADS=1 python -m training.study_lexicon_malay [--models fast accurate]

SROIE receipts are Malaysian: street names, "BARANG YANG SUDAH DIBELI", "SDN BHD". The word list
(``ocr.recognize.lexicon``) holds English only. Here each shipped reader (language model and word list as in
force) reads the validation slice of ``../shared/train`` with the English list and with English + wordfreq
3.1.1's Malay words (``ms``, ASCII letters, at least 3). The rule, written before the first run (2026-12-07
18:40 UTC): adopt the larger list if the fast model's SROIE char accuracy rises by at least 0.05 points, the
accurate model's does not fall, and no domain falls by more than 0.05 for either model.
"""

from __future__ import annotations

import argparse
import json
import re

from ocr.imageio import load_image
from ocr.recognize.lexicon import Lexicon, default_lexicon
from ocr.recognize.recognizer import Recognizer
from training.choose_lm import per_domain
from training.real_data import read_all


def malay_words() -> list[str]:
    import wordfreq

    return [w for w in wordfreq.top_n_list("ms", 100_000) if re.fullmatch(r"[a-z]{3,}", w)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["fast", "accurate"])
    args = parser.parse_args(argv)
    _, lines = read_all()
    images = [load_image(str(line.image)) for line in lines]
    english = default_lexicon()
    lists = {"en": english, "en+ms": Lexicon(sorted(set(english.words) | set(malay_words())))}
    scores = {}
    for model in args.models:
        recognizer = Recognizer.load(model=model)
        for name, lexicon in lists.items():
            recognizer.lexicon = lexicon
            scores[f"{model}/{name}"] = per_domain(lines, [r.text for r in recognizer.recognize(images)])
    print(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
