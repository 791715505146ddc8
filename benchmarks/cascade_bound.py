"""How cheap could ``model="auto"`` be? Its re-reads against an oracle's, on the eval line sets (measure only).

    OMP_NUM_THREADS=2 python -m benchmarks.cascade_bound [--sets zh_web_mtwi_lines en_iiit5k_test] [--threads 2]

Both models read every line of each set once. The *oracle* re-reads only lines the accurate model reads
better, those saving the most edits per input column first, until the set is within 0.5 points of char
accuracy of the accurate model (the cascade's target); *the rule* is the cascade in force (fast confidence
below ``cascade_choice.THRESHOLD``). Work = input columns padded to 160 (the accurate model's time per line
grows with them). The oracle is no reader (it looks at the labels): it bounds what any re-read rule can save.
Nothing is chosen from these figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.lines import DEFAULT_EVAL_ROOT, SETS, read_rgb
from benchmarks.report import positive_int
from ocr.manifest import read_manifest
from ocr.recognize.cascade_choice import THRESHOLD
from ocr.recognize.lineprep import input_columns
from ocr.textdist import edit_distance, normalize
from training.choose_cascade import MARGIN  # the cascade's own target: within this of the accurate model

CHUNK = 32


def oracle_rereads(fast_edits: np.ndarray, accurate_edits: np.ndarray, label_chars: int, work: np.ndarray,
                   margin: float = MARGIN) -> np.ndarray:
    """Which lines the oracle re-reads (module docstring): the fewest columns that bring the set's edits within
    ``margin * label_chars`` of the accurate model's."""
    chosen = np.zeros(len(fast_edits), bool)
    budget = accurate_edits.sum() + margin * label_chars
    saved = fast_edits - accurate_edits
    left = fast_edits.sum()
    for i in np.argsort(-saved / work, kind="stable"):
        if left <= budget:
            break
        chosen[i] = True
        left -= saved[i]
    return chosen


def read_all_lines(reader: Any, images: Sequence[np.ndarray]) -> list[Any]:
    return [r for i in range(0, len(images), CHUNK) for r in reader.recognize(list(images[i:i + CHUNK]))]


def measure_set(fast: Any, accurate: Any, root: Path, set_name: str) -> dict[str, Any]:
    protocol = SETS[set_name].protocol
    items = [(read_rgb(root / set_name / rel), label) for rel, label in read_manifest(root / set_name / "labels.tsv")]
    items = [(img, label) for img, label in items if img is not None]
    images, labels = [img for img, _ in items], [normalize(label, protocol) for _, label in items]
    by_fast, by_accurate = read_all_lines(fast, images), read_all_lines(accurate, images)
    ef = np.array([edit_distance(normalize(r.text, protocol), t) for r, t in zip(by_fast, labels)])
    ea = np.array([edit_distance(normalize(r.text, protocol), t) for r, t in zip(by_accurate, labels)])
    work = np.array([input_columns(*img.shape[:2]) for img in images], float)
    oracle = oracle_rereads(ef, ea, sum(map(len, labels)), work)
    rule = np.array([r.confidence < THRESHOLD for r in by_fast])
    return {"lines": len(images), "oracle": shares(oracle, work), f"rule (confidence < {THRESHOLD})": shares(rule, work)}


def shares(chosen: np.ndarray, work: np.ndarray) -> dict[str, float]:
    """The share of the lines re-read, and of the accurate model's work."""
    return {"lines": round(float(chosen.mean()), 4), "work": round(float(work[chosen].sum() / work.sum()), 4)}


def main(argv: list[str] | None = None) -> None:
    from ocr.recognize.recognizer import Recognizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_EVAL_ROOT)
    parser.add_argument("--sets", nargs="+", default=["zh_web_mtwi_lines", "en_iiit5k_test"], choices=list(SETS))
    parser.add_argument("--threads", type=positive_int, default=2)
    args = parser.parse_args(argv)
    fast = Recognizer.load(model="fast", threads=args.threads)
    accurate = Recognizer.load(model="accurate", threads=args.threads)
    print(json.dumps({name: measure_set(fast, accurate, args.root, name) for name in args.sets}, indent=1))


if __name__ == "__main__":
    main()
