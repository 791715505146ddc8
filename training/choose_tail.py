"""Choose, per model, how many time steps past a line's content are decoded (``ModelSpec.tail_frames``), on the
VALIDATION slice of ``../shared/train`` (``training.real_data.read_all()[1]``: the only data this module reads).

    OMP_NUM_THREADS=1 python -m training.choose_tail [--models fast accurate] [--json runs/tail_choice.json]

Why: a frame's evidence sits about half a stride right of the columns it covers, so a tightly cropped word's
last character may peak on the first frame past the content, which was never decoded (``profit`` read as
``profi``). Frames further into the padding may also hold junk. Each model reads the slice as shipped (language
model and word list as chosen) with each of ``TAILS``; the rule, fixed before its first run: the tail with the
best mean char and line accuracy over the three domains (ties: the smaller), adopted if that mean is at least
``MIN_GAIN`` above no tail and no domain's char accuracy falls by more than ``MAX_LOSS``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ocr.imageio import load_image
from training.choose_lm import runner
from training.real_data import RealLine, read_all

log = logging.getLogger("training.choose_tail")

TAILS = (0, 1, 2)
#: a later candidate (2026-12-07 23:30 UTC), judged by the same rule against no tail: the chosen tail and, for a
#: short line, every step of the model's narrowest batch (``ModelSpec.decode_padding``)
PADDING = "padding"
MIN_GAIN = 0.05
MAX_LOSS = 0.1


def decide(runs: dict[Any, dict[str, Any]]) -> Any:
    """The chosen tail, or :data:`PADDING` (0 unless the best one passes the rule)."""
    best = max(sorted(runs, key=str), key=lambda t: runs[t]["mean"])  # max keeps the first of equal means
    none = runs[0]
    gains = runs[best]["mean"] >= none["mean"] + MIN_GAIN
    no_loss = all(runs[best]["scores"][d]["char"] >= none["scores"][d]["char"] - MAX_LOSS for d in none["scores"])
    return best if gains and no_loss else 0


def measure(name: str, lines: list[RealLine], images: list[np.ndarray], threads: int | None,
            padding: bool = False) -> dict[str, Any]:
    """Each tail of :data:`TAILS`; with ``padding``, the shipped tail with ``decode_padding`` on as well."""
    from ocr.recognize.recognizer import Recognizer

    recognizer = Recognizer.load(model=name, threads=threads, decode_padding=False)
    shipped = recognizer.tail_frames
    runs: dict[Any, dict[str, Any]] = {}
    for tail in TAILS:
        recognizer.tail_frames = tail
        runs[tail] = runner(recognizer, lines, images)(None)  # type: ignore[arg-type]
        log.info("%s tail %d: %s", name, tail, runs[tail])
    if padding:
        recognizer.tail_frames, recognizer.decode_padding = shipped, True
        runs[PADDING] = runner(recognizer, lines, images)(None)  # type: ignore[arg-type]
        log.info("%s tail %d and the padding: %s", name, shipped, runs[PADDING])
    return {"tail_frames": decide(runs), "by_tail": {str(t): r for t, r in runs.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.choose_tail", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["fast", "accurate"], choices=["fast", "accurate"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--padding", action="store_true", help="also the shipped tail with decode_padding on")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _, lines = read_all()
    images = [load_image(str(ln.image)) for ln in lines]  # read once, for every model
    choice = {name: measure(name, lines, images, args.threads, args.padding) for name in args.models}
    for name, result in choice.items():
        print(f"{name}: {result['tail_frames']}  (tail_frames, or decode_padding: ocr/recognize/models.py SPECS)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(choice, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
