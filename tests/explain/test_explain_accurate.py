"""Explanations of the accurate network (issue 16): Grad-CAM, the alignment, an attribution and error
attribution work on it, on its own layer and padding, and leave no hook behind. Tiny inputs: the
accurate network is ~8x slower than the fast one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import explain
from explain.hooks import count_hooks
from ocr.imageio import load_image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def accurate():
    from ocr.recognize.recognizer import Recognizer

    return Recognizer.load(model="accurate", threads=1)


@pytest.fixture(scope="module")
def short_line() -> np.ndarray:
    """The first four characters of examples/line_zh.png (价税合计)."""
    return np.ascontiguousarray(load_image(ROOT / "examples" / "line_zh.png")[:, :148])


def test_gradcam_alignment_and_saliency_explain_the_accurate_network(accurate, short_line):
    from ocr.recognize.network_accurate import AccurateCRNN

    out = explain.explain_line(accurate, short_line, methods=("gradcam", "alignment", "saliency"))
    reading = accurate.recognize_one(short_line)
    assert isinstance(accurate.model, AccurateCRNN) and out["text"] == reading.text == "价税合计"
    assert out["tables"]["gradcam"]["layers"] == ["backbone.blocks.12"]  # its own last CNN block
    h, w = short_line.shape[:2]
    line_map = out["maps"]["gradcam_line"]
    assert line_map.shape == (h, w) and line_map.max() > 0.5
    assert sorted(out["maps"]["gradcam_chars"]) == sorted(out["maps"]["saliency_chars"]) == [0, 1, 2, 3]
    # each character's CAM peaks in its own quarter of the line, more or less
    peaks = [int(np.argmax(out["maps"]["gradcam_chars"][i].sum(0))) for i in range(4)]
    assert peaks == sorted(peaks)
    # the alignment shows the accurate model's classes (18,710), read as inference reads (same padding)
    from explain.alignment import align_line

    assert align_line(accurate, short_line).prepared.pad_to == accurate.pad_min_width
    assert max(max(row) for row in out["tables"]["alignment"]["topk"]["classes"]) < 18710
    assert abs(out["confidence"] - reading.confidence) < 1e-3
    assert count_hooks(accurate.model) == 0


def test_error_attribution_on_the_accurate_network(accurate, short_line):
    report = explain.attribute_errors(accurate, short_line, "价税合针")
    assert report.prediction == "价税合计"
    wrong = [e for e in report.errors if e.op == "substitute"]
    assert len(wrong) == 1 and wrong[0].true_char == "针" and wrong[0].pred_char == "计"
    assert wrong[0].true_rank is not None  # the accurate charset holds 针: it is ranked, not out of charset
    assert count_hooks(accurate.model) == 0


def test_a_cam_layer_of_the_other_network_is_refused(accurate, short_line):
    with pytest.raises(explain.ExplainRequestError, match="unknown layer"):
        explain.explain_line(accurate, short_line, methods=("gradcam",), layer="backbone.blocks.13")
    assert count_hooks(accurate.model) == 0
