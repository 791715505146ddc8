"""training.reread_study: the views it reads and the cascade rule it applies to each signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training import reread_study as rs
from training.real_data import RealLine


def _line(set_name: str, label: str) -> RealLine:
    return RealLine(set_name, Path("x.png"), label, label, source=label)


def test_views_keep_the_height_or_the_width_they_should():
    rgb = np.full((50, 200, 3), 200, np.uint8)
    assert rs.VIEWS["trimmed"](rgb).shape == (42, 200, 3)  # 8% (4 px) off top and bottom
    assert rs.VIEWS["narrow"](rgb).shape == (50, 160, 3)
    assert rs.VIEWS["wide"](rgb).shape == (50, 260, 3)
    assert rs.VIEWS["margin"](rgb).shape == (60, 224, 3)  # 10% of the height above and below, 25% (12 px) each side
    tiny = np.full((9, 30, 3), 200, np.uint8)
    assert rs.VIEWS["trimmed"](tiny).shape == tiny.shape  # too thin to cut


def test_the_lowest_threshold_keeps_every_domain_within_the_margin():
    lines = [_line("en_receipts_sroie_train_lines", "ABCDEFGHIJ")] * 2 + [_line("en_scene_ic15_train", "word")] * 2
    fast = np.array([0, 2, 1, 0])
    accurate = np.array([0, 0, 0, 0])
    signal = np.array([0.99, 0.5, 0.7, 0.98])
    everywhere = np.ones(4, bool)
    # the receipts' 2 edits and the scene word's 1 must both go: re-read up to the 0.7 line
    assert rs.lowest_threshold(lines, signal, fast, accurate, everywhere) == 0.7
    # on the receipts alone, the 0.5 line is enough
    assert rs.lowest_threshold(lines, signal, fast, accurate, np.array([True, True, False, False])) == 0.5
