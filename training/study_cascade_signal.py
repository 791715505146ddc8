"""Study (chooses nothing by itself): which fast-model score should decide the cascade's re-reads?

    OMP_NUM_THREADS=1 python -m training.study_cascade_signal [--json runs/cascade_signal.json]

``model="auto"`` re-reads a line when the fast reading's *line* confidence (the geometric mean of its
characters' confidences) is below a threshold. A long line with one doubtful character keeps a high geometric
mean (20 characters at 0.99 and one at 0.5: 0.957), so it is never re-read, while a short line with two
middling characters is. Here every validation line of ``../shared/train`` is read once by the fast model and
once by the accurate model (as shipped, padded to ``ACCURATE_PAD_WIDTH``), and for each candidate score the
threshold is chosen by ``training.choose_cascade``'s own rule (every domain within 0.5 points of the accurate
model). Compared: the share of lines re-read and their cost (the accurate model's input columns, which its time
follows), and the predicted accuracy per domain.

Candidates: ``geomean`` (in force), ``min_char`` (the least confident character), ``mean_low2`` (geometric mean
of the two least confident characters).

The rule, written before the first run (2026-12-07 18:47 UTC): a candidate replaces ``geomean`` only if, at its
own threshold, it re-reads at least 10% fewer accurate-model columns than ``geomean`` at its threshold.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ocr.recognize.cascade_choice import ACCURATE_PAD_WIDTH
from ocr.recognize.lineprep import input_columns
from ocr.results import LineResult
from training.choose_cascade import choose_threshold, line_edits, read_by_set, rounded, validation_images

#: a candidate must cut the re-read columns by this share to replace the score in force
MIN_SAVING = 0.10


def _char_confidences(result: LineResult) -> list[float]:
    return [c.confidence for c in result.chars] or [result.confidence]


def geomean(result: LineResult) -> float:
    return result.confidence


def min_char(result: LineResult) -> float:
    return min(_char_confidences(result))


def mean_low2(result: LineResult) -> float:
    low = sorted(_char_confidences(result))[:2]
    return math.exp(sum(math.log(max(c, 1e-12)) for c in low) / len(low))


SIGNALS: dict[str, Callable[[LineResult], float]] = {"geomean": geomean, "min_char": min_char, "mean_low2": mean_low2}


def compare(lines: Sequence[Any], fast: list[LineResult], fast_edits: np.ndarray, accurate_edits: np.ndarray,
            columns: np.ndarray) -> dict[str, Any]:
    """Per signal: its threshold by the cascade's rule, the share of lines and of accurate columns re-read,
    and the predicted char accuracy per domain."""
    out = {}
    for name, signal in SIGNALS.items():
        score = np.array([signal(r) for r in fast])
        threshold, by_domain = choose_threshold(lines, score, fast_edits, accurate_edits)
        reread = score < threshold
        out[name] = {"threshold": threshold, "reread_share": round(float(reread.mean()), 4),
                     "reread_columns_share": round(float(columns[reread].sum() / columns.sum()), 4),
                     "by_domain_predicted": rounded(by_domain)}
    base = out["geomean"]["reread_columns_share"]
    for name, figures in out.items():
        figures["replaces_geomean"] = bool(name != "geomean"
                                           and figures["reread_columns_share"] <= (1 - MIN_SAVING) * base)
    return out


def main(argv: list[str] | None = None) -> None:
    from ocr.recognize.recognizer import Recognizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("runs/cascade_signal.json"))
    args = parser.parse_args(argv)
    lines, images = validation_images()
    fast = Recognizer.load(model="fast", threads=args.threads)
    accurate = Recognizer.load(model="accurate", threads=args.threads, pad_min_width=ACCURATE_PAD_WIDTH)
    fast_res, _ = read_by_set(fast.recognize, lines, images)
    accurate_res, _ = read_by_set(accurate.recognize, lines, images)
    columns = np.array([input_columns(*img.shape[:2], pad_to=ACCURATE_PAD_WIDTH) for img in images], float)
    result = compare(lines, fast_res, line_edits(lines, [r.text for r in fast_res]),
                     line_edits(lines, [r.text for r in accurate_res]), columns)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
