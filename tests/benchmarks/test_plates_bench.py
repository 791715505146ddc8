"""The synthetic plate benchmark (benchmarks.plates): what it draws, and a tiny run."""

from __future__ import annotations

import numpy as np

from benchmarks import plates as bp
from ocr.recognize.plates import PLATE


def test_every_condition_draws_valid_plates_reproducibly():
    font = bp.plate_font()
    for condition in bp.CONDITIONS:
        images, texts = bp.plate_set(condition, 4, seed=3, font=font)
        again, same = bp.plate_set(condition, 4, seed=3, font=font)
        assert texts == same and all(np.array_equal(a, b) for a, b in zip(images, again))
        assert all(PLATE.match(t) for t in texts)
        assert len(texts[0]) == 8 and len(texts[1]) == 7  # one in four a green six-character serial
        assert all(img.ndim == 3 and img.shape[1] in (94, 140, 220) for img in images)


def test_a_tiny_run_reports_every_condition(capsys):
    bp.main(["--models", "fast", "--n", "2", "--threads", "1"])
    out = capsys.readouterr().out
    assert "| fast |" in out and out.count("/ 2") == len(bp.CONDITIONS)


def test_a_tiny_run_as_pages(capsys):
    bp.main(["--models", "fast", "--n", "2", "--threads", "1", "--pages"])
    out = capsys.readouterr().out
    assert "read as pages" in out and out.count("/ 2") == len(bp.CONDITIONS)
