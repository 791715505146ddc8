"""explain.errors (error attribution) and explain.preprocess_attribution (per-step confidence changes)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from explain.errors import DIAGNOSES, align, attribute_errors
from ocr.textdist import edit_distance
from ocr.recognize.charset import Charset
from ocr.decode import greedy_decode
from ocr.recognize.lineprep import PreparedLine
from training.synth import render_text

TEXT = "价税合计"
IMAGE_DIAGNOSES = {"low_contrast", "blur", "background_lines", "watermark_or_colour", "crowded"}


pytestmark = pytest.mark.usefixtures("one_opencv_thread")


@pytest.fixture(scope="module")
def clean_line(cjk_font):
    return render_text(TEXT, cjk_font, 32)


@pytest.fixture(scope="module")
def clean_read(recognizer, clean_line):
    result = recognizer.recognize_one(clean_line.image)
    assert result.text == TEXT, "the model must read the clean test line right for these tests to mean anything"
    return result


def _names(error) -> set[str]:
    return {d.name for d in error.diagnoses}


def _centre_in_box(x_range, box) -> bool:
    c = (x_range[0] + x_range[1]) / 2
    return box[0] <= c <= box[2]


# ---------------------------------------------------------------- edit alignment


def test_align_identical_strings_are_all_matches():
    ops = align("价税合计", "价税合计")
    assert [o.op for o in ops] == ["match"] * 4
    assert [(o.pred_index, o.truth_index) for o in ops] == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_align_substitution_position():
    ops = align("abxd", "abcd")
    assert [o.op for o in ops] == ["match", "match", "substitute", "match"]
    sub = ops[2]
    assert (sub.pred_index, sub.truth_index, sub.pred_char, sub.true_char) == (2, 2, "x", "c")


def test_align_insertion_is_an_extra_predicted_char():
    ops = align("abXcd", "abcd")
    errors = [o for o in ops if o.op != "match"]
    assert len(errors) == 1
    ins = errors[0]
    assert (ins.op, ins.pred_index, ins.truth_index, ins.pred_char, ins.true_char) == ("insert", 2, None, "X", "")


def test_align_deletion_is_a_missed_true_char():
    ops = align("acd", "abcd")
    errors = [o for o in ops if o.op != "match"]
    assert len(errors) == 1
    d = errors[0]
    assert (d.op, d.pred_index, d.truth_index, d.pred_char, d.true_char) == ("delete", None, 1, "", "b")
    assert d.pred_pos == 1  # it belongs before the prediction's "c"


def test_align_mixed_and_edge_cases():
    ops = align("价锐合计额", "价税合计")
    assert [o.op for o in ops] == ["match", "substitute", "match", "match", "insert"]
    assert edit_distance("价锐合计额", "价税合计") == 2
    assert [o.op for o in align("", "ab")] == ["delete", "delete"]
    assert [o.op for o in align("ab", "")] == ["insert", "insert"]
    assert align("", "") == []
    # the script always rebuilds both strings
    for pred, truth in [("kitten", "sitting"), ("元无元", "无元"), ("abc", "xyz"), ("TOTAL 1.50", "TOTA 11.50")]:
        ops = align(pred, truth)
        assert "".join(o.pred_char for o in ops) == pred
        assert "".join(o.true_char for o in ops) == truth
        assert sum(o.op != "match" for o in ops) == edit_distance(pred, truth)


# ---------------------------------------------------------------- attribution on real readings


def test_substitution_is_located_on_the_glyph(recognizer, clean_line, clean_read):
    report = attribute_errors(recognizer, clean_line.image, "价税合讣", result=clean_read)
    assert report.prediction == TEXT
    assert report.distance == 1 and report.cer == pytest.approx(0.25)
    assert len(report.errors) == 1
    e = report.errors[0]
    assert (e.op, e.pred_index, e.truth_index, e.pred_char, e.true_char) == ("substitute", 3, 3, "计", "讣")
    assert e.location == "predicted_span"
    span = clean_read.chars[3]
    assert e.x_range == (pytest.approx(span.x_start), pytest.approx(span.x_end))
    assert _centre_in_box(e.x_range, clean_line.char_boxes[3])
    assert e.region[0] <= e.x_range[0] and e.x_range[1] <= e.region[1]
    assert e.true_prob is not None and e.true_prob < 0.05
    assert e.candidates and e.candidates[0][0] == "计" and e.candidates[0][1] > 0.5
    assert all(0.0 <= p <= 1.0 for _, p in e.candidates)
    assert e.pred_prob == pytest.approx(e.candidates[0][1])
    # a clean rendering: no image-quality excuse, and the numbers behind that are reported
    assert not _names(e) & IMAGE_DIAGNOSES
    assert e.measurements["contrast"] > 150
    assert report.summary["substitute"] == 1 and report.summary["undiagnosed"] == 1
    assert set(DIAGNOSES) <= set(report.summary)
    data = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert data["errors"][0]["true_char"] == "讣" and data["prediction"] == TEXT


def test_same_report_without_a_precomputed_result(recognizer, clean_line, clean_read):
    a = attribute_errors(recognizer, clean_line.image, "价税合讣", result=clean_read).to_dict()
    b = attribute_errors(recognizer, clean_line.image, "价税合讣").to_dict()
    assert a == b


def test_insertion_and_deletion(recognizer, clean_line, clean_read):
    report = attribute_errors(recognizer, clean_line.image, "价合计", result=clean_read)
    (e,) = report.errors
    assert (e.op, e.pred_char, e.true_char, e.location) == ("insert", "税", "", "predicted_span")
    assert _centre_in_box(e.x_range, clean_line.char_boxes[1])
    assert e.true_prob is None

    report = attribute_errors(recognizer, clean_line.image, "价税合计额", result=clean_read)
    (e,) = report.errors
    assert (e.op, e.truth_index, e.true_char) == ("delete", 4, "额")
    assert report.forced_alignment and e.location == "forced_alignment"
    assert e.true_x_range is not None and e.x_range[0] >= clean_read.chars[2].x_end  # after 合, not before
    assert 0 <= e.x_range[0] < e.x_range[1] <= clean_line.image.shape[1]
    assert e.true_prob is not None and e.blank_prob is not None


def test_true_char_outside_the_charset(recognizer, clean_line, clean_read):
    for outsider in ("\U0001F600", "龘"):
        assert outsider not in recognizer.charset
        report = attribute_errors(recognizer, clean_line.image, "价税合" + outsider, result=clean_read)
        (e,) = report.errors
        assert e.op == "substitute" and e.true_char == outsider
        assert "out_of_charset" in _names(e)
        assert e.true_prob is None and e.true_rank is None
        assert report.summary["out_of_charset"] == 1
    # a missed outsider is placed in the gap after the last character
    report = attribute_errors(recognizer, clean_line.image, TEXT + "\U0001F600", result=clean_read)
    (e,) = report.errors
    assert e.op == "delete" and e.location == "gap" and "out_of_charset" in _names(e)
    assert e.x_range[0] >= clean_read.chars[-1].x_end - 1e-6


def _wrong_truth_report(recognizer, image):
    report = attribute_errors(recognizer, image, "价税合讣")
    assert report.errors
    return report


def test_low_contrast(recognizer, cjk_font):
    image = render_text(TEXT, cjk_font, 32, fg=(150, 150, 150), bg=(185, 185, 185)).image
    report = _wrong_truth_report(recognizer, image)
    assert all("low_contrast" in _names(e) for e in report.errors)
    d = next(d for d in report.errors[0].diagnoses if d.name == "low_contrast")
    assert d.value < d.threshold and "spread" in d.detail
    assert "blur" not in _names(report.errors[0])  # sharpness is measured relative to the contrast


def test_blur(recognizer, cjk_font):
    image = cv2.GaussianBlur(render_text(TEXT, cjk_font, 32).image, (0, 0), 3.0)
    report = _wrong_truth_report(recognizer, image)
    assert all("blur" in _names(e) for e in report.errors)
    assert report.summary["blur"] == len(report.errors)


def test_background_lines(recognizer, cjk_font):
    image = render_text(TEXT + "金额", cjk_font, 32).image.copy()
    h, w = image.shape[:2]
    cv2.line(image, (0, h // 2), (w, h // 2), (60, 60, 60), 2)
    cv2.line(image, (0, h // 3), (w, h // 3), (60, 60, 60), 1)
    report = attribute_errors(recognizer, image, "价税合讣金额")
    assert report.errors
    assert all("background_lines" in _names(e) for e in report.errors)
    assert report.errors[0].measurements["h_line_rows"] >= 2


def test_watermark_overlay(recognizer, cjk_font):
    image = render_text(TEXT + "金额", cjk_font, 32).image.astype(np.float32)
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.putText(mask, "AB12CD", (0, h - 5), cv2.FONT_HERSHEY_SIMPLEX, h / 30, 255, 2)
    alpha = 0.35 * (mask / 255.0)[..., None]
    stamped = np.clip(image * (1 - alpha) + np.array([220, 120, 120]) * alpha, 0, 255).astype(np.uint8)
    report = attribute_errors(recognizer, stamped, "价税合讣金额")
    sub = next(e for e in report.errors if e.truth_index == 3)
    assert "watermark_or_colour" in _names(sub)


# ---------------------------------------------------------------- attribution on controlled probabilities


class _StubRecognizer:
    """Fixed frame probabilities over a 4-character charset: 8 frames of 8 px, scale 1."""

    def __init__(self, probs: np.ndarray) -> None:
        self.charset = Charset(list("元无价税"))
        self.probs = probs.astype(np.float32)
        self.decoder = "greedy"

    def probabilities(self, images):
        t = self.probs.shape[0]
        return [(self.probs, PreparedLine(np.zeros((3, 48, 8 * t), np.float32), 8 * t, 1.0)) for _ in images]

    def recognize_one(self, image):
        from ocr.recognize.recognizer import LineResult

        line = greedy_decode(self.probs, self.charset, scale=1.0, image_width=image.shape[1])
        return LineResult(line.text, line.confidence, line.chars, image.shape[1], image.shape[0])


def _frames(rows: list[dict[int, float]], classes: int = 5) -> np.ndarray:
    out = np.zeros((len(rows), classes))
    for t, row in enumerate(rows):
        out[t, 0] = 1.0 - sum(row.values())
        for c, p in row.items():
            out[t, c] = p
    return out


def test_close_runner_up_and_low_line_confidence():
    # frames: 价 | blank | 无 (0.5) vs 元 (0.4) | blank ...
    probs = _frames([{3: 0.95}, {}, {2: 0.5, 1: 0.4}, {}, {4: 0.9}, {}, {}, {}])
    stub = _StubRecognizer(probs)
    image = np.full((48, 64, 3), 255, np.uint8)
    report = attribute_errors(stub, image, "价元税")
    assert report.prediction == "价无税"
    (e,) = report.errors
    assert (e.op, e.pred_char, e.true_char, e.frames) == ("substitute", "无", "元", (2, 2))
    assert e.x_range == (16.0, 24.0)
    assert e.true_prob == pytest.approx(0.4, abs=1e-6) and e.true_rank == 2
    assert [c for c, _ in e.candidates[:2]] == ["无", "元"]
    d = next(d for d in e.diagnoses if d.name == "close_runner_up")
    assert d.value == pytest.approx(0.1, abs=1e-6)
    assert "low_confidence_throughout" not in _names(e)  # line confidence (0.95*0.5*0.9)^(1/3) ≈ 0.75

    weak = _frames([{3: 0.45, 2: 0.2}, {}, {2: 0.4, 4: 0.3, 1: 0.05}, {}, {4: 0.45, 3: 0.2}, {}, {}, {}])
    report = attribute_errors(_StubRecognizer(weak), image, "价元税")
    (e,) = report.errors
    assert "low_confidence_throughout" in _names(e)
    assert report.prediction == "价无税" and report.confidence < 0.5
    assert e.true_rank == 4 and "close_runner_up" not in _names(e)  # 元 is behind 无, 税 and blank


def test_deletion_located_by_forced_alignment():
    # 税 has some evidence at frame 5 but blank wins there: greedy drops it, forced alignment finds it
    probs = _frames([{3: 0.95}, {}, {2: 0.9}, {}, {}, {4: 0.35}, {}, {}])
    report = attribute_errors(_StubRecognizer(probs), np.full((48, 64, 3), 255, np.uint8), "价无税")
    assert report.prediction == "价无"
    (e,) = report.errors
    assert (e.op, e.true_char, e.location, e.frames) == ("delete", "税", "forced_alignment", (5, 5))
    assert e.x_range == (40.0, 48.0)
    assert e.true_prob == pytest.approx(0.35, abs=1e-6) and e.blank_prob == pytest.approx(0.65, abs=1e-6)
    assert e.true_rank == 2 and "close_runner_up" in _names(e)


# ---------------------------------------------------------------- preprocessing attribution


def test_preprocessing_attribution_variants(recognizer, clean_line, clean_read):
    from explain.preprocess_attribution import attribute_preprocessing

    steps = ("denoise", "contrast", "binarize", "deskew")
    report = attribute_preprocessing(recognizer, clean_line.image, steps=steps)
    base = report["base"]
    assert base["text"] == TEXT and len(base["chars"]) == len(TEXT)
    assert [v["step"] for v in report["variants"]] == list(steps)
    for v in report["variants"]:
        assert v["enabled"] is (not v["base_on"])
        assert len(v["chars"]) == len(base["text"])  # one entry per base character
        assert [c["char"] for c in v["chars"]] == list(base["text"])
        for c in v["chars"]:
            assert c["status"] in ("same", "changed", "disappeared")
            if c["status"] == "disappeared":
                assert c["delta"] is None and c["variant_char"] is None
            else:
                assert c["delta"] == pytest.approx(c["variant_confidence"] - c["base_confidence"], abs=2e-4)
        kept = len(v["chars"]) - v["counts"]["disappeared"]
        assert kept + len(v["appeared"]) == len(v["text"])
        assert v["confidence_delta"] == pytest.approx(v["confidence"] - base["confidence"], abs=2e-4)
    json.dumps(report, ensure_ascii=False)

    # a manual base with contrast on: that variant switches it off
    manual = attribute_preprocessing(recognizer, clean_line.image, steps=("contrast",),
                                     base_config={"mode": "manual", "contrast": True, "deskew": False})
    (v,) = manual["variants"]
    assert v["base_on"] is True and v["enabled"] is False and "contrast" not in v["applied"]
    assert "contrast" in manual["base"]["applied"]
    with pytest.raises(ValueError):
        attribute_preprocessing(recognizer, clean_line.image, steps=("sharpen",))
