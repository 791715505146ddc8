"""Which way up the page is: the one page-orientation algorithm (the pipeline's).

Sideways pages are told from the layout (most detected boxes taller than wide); upside-down
ones need the recogniser: the page's widest lines are read turned 180 degrees, and a clearly
more confident reading wins.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ocr.detect.geometry import TALL_RATIO, TextBox

#: lines recognised at 0° and 180° to decide whether a page is upside down
ORIENTATION_PROBE_LINES = 6
#: a 180° reading must beat the upright one by this much mean confidence to win
ORIENTATION_MARGIN = 0.1
#: fewer characters than this on the probed lines are too little to judge by: the page keeps its way up. One
#: short, unsure line read turned is often "more confident" by chance: synthetic licence plates uploaded as
#: pages (``python -m benchmarks.plates``, seed 11) would have been turned 180° in 11 / 22 / 30 of 200 (none /
#: tilted / all distortions), and read as nonsense
ORIENTATION_MIN_CHARS = 12


def lies_sideways(boxes: Sequence[TextBox]) -> bool:
    """More than half the boxes are tall: the text runs vertically, the page lies on its side."""
    tall = sum(1 for b in boxes if b.height > TALL_RATIO * b.width)
    return tall > len(boxes) / 2


def upside_down(recognizer: Any, crops: list[np.ndarray], results: list[Any]) -> bool:
    """Read the longest lines rotated 180°; a clearly more confident reading means the page is upside down.

    The flipped reading can win only if the upright one is below ``1 - ORIENTATION_MARGIN``
    (no mean confidence exceeds 1), so above that the probe is skipped: same answer, and the
    probe re-reads the page's widest lines (about 40% of recognition time on web images). Lines
    holding fewer than ``ORIENTATION_MIN_CHARS`` characters in all are not turned at all.
    """
    order = sorted(range(len(crops)), key=lambda i: -crops[i].shape[1])[:ORIENTATION_PROBE_LINES]
    if sum(len("".join(results[i].text.split())) for i in order) < ORIENTATION_MIN_CHARS:
        return False
    upright = float(np.mean([results[i].confidence for i in order]))
    if upright + ORIENTATION_MARGIN >= 1.0:
        return False
    flipped = recognizer.recognize([np.ascontiguousarray(crops[i][::-1, ::-1]) for i in order], lm=False)
    return float(np.mean([r.confidence for r in flipped])) > upright + ORIENTATION_MARGIN
