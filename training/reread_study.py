"""Second readings, measured on the VALIDATION slice of ``../shared/train`` (the only data it reads; it
chooses nothing and writes no setting):

    OMP_NUM_THREADS=2 python -m training.reread_study [--root ../shared/train] [--threads 2]
        [--json runs/reread_study.json]

1. **Test-time views.** Each model reads every validation line as is and under cheap views of it
   (:data:`VIEWS`: 8% cut off top and bottom, 0.8x as wide, 1.3x as wide, a margin, and padded to 320 px
   instead of 160). For the lines read below confidence ``t`` the most confident reading is kept. Reported:
   char / line accuracy per domain (``choose_cascade.domain``) and the reads it adds.
2. **Which lines should ``auto`` re-read?** For each signal of the fast reading (:data:`SIGNALS`), the lowest
   threshold that keeps every domain within ``choose_cascade.MARGIN`` of the accurate model (the cascade's own
   rule), and the share of the accurate model's work (input columns, padded to 160) it re-reads; and a check
   out of sample: the threshold fitted on one half of the slice (split by source page) judged on the other.
   (How far any signal could go: ``python -m benchmarks.cascade_bound``, measured on the eval sets.)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from ocr.recognize.lineprep import input_columns
from training.choose_cascade import MARGIN, domain, line_edits, page_halves, per_set, read_pass, validation_images
from training.real_data import TRAIN_ROOT, RealLine

log = logging.getLogger("training.reread_study")


def _trimmed(rgb: np.ndarray) -> np.ndarray:
    cut = int(round(0.08 * rgb.shape[0]))
    return rgb[cut: rgb.shape[0] - cut] if rgb.shape[0] - 2 * cut >= 8 else rgb


def _widened(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    def view(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        return cv2.resize(rgb, (max(4, round(w * factor)), h),
                          interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)
    return view


def _margin(rgb: np.ndarray) -> np.ndarray:
    h = rgb.shape[0]
    v, s = max(1, round(0.1 * h)), max(1, round(0.25 * h))
    return cv2.copyMakeBorder(rgb, v, v, s, s, cv2.BORDER_REPLICATE)


#: image views (``padded320`` is read by a recogniser padding to 320 instead)
VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "trimmed": _trimmed, "narrow": _widened(0.8), "wide": _widened(1.3), "margin": _margin}
BEST_OF = ("trimmed", "narrow", "padded320")
THRESHOLDS = (0.85, 0.9, 0.95)
#: fast-reading signals (higher = surer): name -> f(line result)
SIGNALS: dict[str, Callable[[Any], float]] = {
    "line confidence (in force)": lambda r: r.confidence,
    "mean char confidence": lambda r: float(np.mean([c.confidence for c in r.chars])) if r.chars else 0.0,
    "least confident char": lambda r: min((c.confidence for c in r.chars), default=0.0),
    "least margin over a char's runner-up": lambda r: min(
        (c.confidence - (c.candidates[1][1] if len(c.candidates) > 1 else 0.0) for c in r.chars), default=0.0),
}


def readings(model: str, images: list[np.ndarray], threads: int) -> dict[str, list[Any]]:
    """The model's readings of every image as is, under each view, and padded to 320."""
    from ocr.recognize.recognizer import Recognizer

    rec = Recognizer.load(model=model, threads=threads)
    out = {"as is": read_pass(rec.recognize, images)[0]}
    for name, view in VIEWS.items():
        out[name] = read_pass(rec.recognize, [view(img) for img in images])[0]
        log.info("%s: %s read", model, name)
    out["padded320"] = read_pass(Recognizer.load(model=model, threads=threads, pad_min_width=320).recognize, images)[0]
    return out


def by_domain(lines: Sequence[RealLine], edits: np.ndarray) -> dict[str, list[float]]:
    """Char / line accuracy (%) per domain."""
    chars = per_set(lines, edits, domain)
    out = {}
    for name in chars:
        idx = [i for i, ln in enumerate(lines) if domain(ln.set_name) == name]
        out[name] = [round(100 * chars[name], 2), round(100 * float(np.mean(edits[idx] == 0)), 2)]
    return out


def views_table(lines: Sequence[RealLine], read: dict[str, list[Any]]) -> dict[str, Any]:
    """Part 1 (module docstring) for one model."""
    edits = {name: line_edits(lines, [r.text for r in res]) for name, res in read.items()}
    conf = {name: np.array([r.confidence for r in res]) for name, res in read.items()}
    table: dict[str, Any] = {name: by_domain(lines, e) for name, e in edits.items()}
    for t in THRESHOLDS:
        cands = ["as is", *BEST_OF]
        pick = np.stack([conf[c] for c in cands]).argmax(axis=0)
        best = np.stack([edits[c] for c in cands])[pick, np.arange(len(lines))]
        unsure = conf["as is"] < t
        table[f"best of as is + {' + '.join(BEST_OF)}, below {t}"] = {
            **by_domain(lines, np.where(unsure, best, edits["as is"])),
            "lines read again": round(float(unsure.mean()), 4), "extra reads per line": round(3 * float(unsure.mean()), 3)}
    return table


def lowest_threshold(lines: Sequence[RealLine], signal: np.ndarray, fast: np.ndarray, accurate: np.ndarray,
                     where: np.ndarray) -> float:
    """The cascade's rule on the lines ``where``: the lowest signal value below which re-reading keeps every
    domain within MARGIN of the accurate model."""
    subset = [ln for ln, w in zip(lines, where) if w]
    signal, fast, accurate = signal[where], fast[where], accurate[where]
    target = per_set(subset, accurate, domain)
    for t in np.unique(signal):
        acc = per_set(subset, np.where(signal <= t, accurate, fast), domain)
        if all(acc[d] >= target[d] - MARGIN - 1e-12 for d in target):
            return float(t)
    return math.inf


def signals_table(lines: Sequence[RealLine], fast: list[Any], accurate: list[Any]) -> dict[str, Any]:
    """Part 2 (module docstring)."""
    ef, ea = line_edits(lines, [r.text for r in fast]), line_edits(lines, [r.text for r in accurate])
    work = np.array([input_columns(r.height, r.width) for r in fast], float)
    half = page_halves(lines)
    everywhere = np.ones(len(lines), bool)
    out: dict[str, Any] = {}
    for name, signal_of in SIGNALS.items():
        signal = np.array([signal_of(r) for r in fast])
        t = lowest_threshold(lines, signal, ef, ea, everywhere)
        row = {"threshold": round(t, 4), "work share": round(float(work[signal <= t].sum() / work.sum()), 4),
               "lines re-read": round(float((signal <= t).mean()), 4)}
        for fit in (0, 1):
            t_half = lowest_threshold(lines, signal, ef, ea, half == fit)
            other = half != fit
            chosen = np.where(signal <= t_half, ea, ef)
            other_lines = [ln for ln, o in zip(lines, other) if o]
            best, got = per_set(other_lines, ea[other], domain), per_set(other_lines, chosen[other], domain)
            gap = {d: round(100 * (best[d] - got[d]), 2) for d in best}
            row[f"fitted on half {fit}, other half"] = {
                "work share": round(float(work[other & (signal <= t_half)].sum() / work[other].sum()), 4),
                "points below accurate": gap}
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=TRAIN_ROOT)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="validation lines per set (a smoke run)")
    parser.add_argument("--json", type=Path, default=Path("runs/reread_study.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    val, images = validation_images(args.root, args.limit)
    read = {model: readings(model, images, args.threads) for model in ("fast", "accurate")}
    study = {"lines": len(val), "views": {model: views_table(val, r) for model, r in read.items()},
             "signals": signals_table(val, read["fast"]["as is"], read["accurate"]["as is"])}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(study, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(study, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
