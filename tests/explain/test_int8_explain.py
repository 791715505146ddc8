"""An int8 reading and its explanation refer to the same characters (issue 17).

Explanations run on the float torch model; the reading may come from an int8 engine that reads
otherwise. The explanation must explain the characters the engine emitted (forced alignment of
its class indices on the float model's frames), and say which model it explains with.
"""

from __future__ import annotations

import pytest

from explain.registry import explain_line
from ocr.detect import TextDetector
from ocr.pipeline import OCRPipeline
from ocr.recognize.recognizer import Recognizer
from ocr.settings import EXAMPLES_DIR
from tests.int8_support import int8_weights_dir


@pytest.fixture(scope="module")
def int8_recognizer(tmp_path_factory):
    root = int8_weights_dir(tmp_path_factory.mktemp("int8"))
    rec = Recognizer.load(root / "crnn.pt", charset=root / "charset.txt", engine="onnx-int8", threads=1)
    assert rec.engine_name == "onnxruntime-int8"
    return rec


@pytest.fixture(scope="module")
def example_lines(int8_recognizer):
    """(crop, reading) of the lines of two example pages, read by the int8 recogniser in the pipeline."""
    pipeline = OCRPipeline(int8_recognizer, TextDetector.load(threads=1))
    lines = []
    for name in ("receipt_en.png", "shipping_label.png"):
        lines += [(ln.crop, ln.line_result) for ln in pipeline.run(EXAMPLES_DIR / name, use_cache=False).lines]
    assert len(lines) > 15
    return lines


def test_explanation_explains_the_int8_reading_of_every_example_line(int8_recognizer, example_lines):
    forced = 0
    for crop, reading in example_lines:
        out = explain_line(int8_recognizer, crop, methods=("alignment",), reading=reading)
        assert out["text"] == reading.text
        assert [row["char"] for row in out["chars"]] == [c.char for c in reading.chars]
        assert [row["class_index"] for row in out["chars"]] == [c.index for c in reading.chars]
        assert out["explained_with"] == "float torch model" and out["reading_engine"] == "onnxruntime-int8"
        forced += out["force_aligned"]
    assert forced >= 3  # this int8 model reads otherwise than float: the alignment is what kept them equal


def test_line_example_read_alone_and_explained_with_gradcam(int8_recognizer):
    image = EXAMPLES_DIR / "line_zh.png"
    reading = int8_recognizer.recognize_one(image)
    out = explain_line(int8_recognizer, image, methods=("gradcam", "alignment"))  # no reading given: read here
    assert out["text"] == reading.text and reading.text
    assert sorted(out["maps"]["gradcam_chars"]) == list(range(len(reading.text)))
    spans = [(row["t_start"], row["t_end"]) for row in out["chars"]]
    assert all(a <= b for a, b in spans) and all(b1 < a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))


def test_float_engine_explanations_are_not_force_aligned(recognizer):
    out = explain_line(recognizer, EXAMPLES_DIR / "line_zh.png", methods=("alignment",))
    assert out["text"] == recognizer.recognize_one(EXAMPLES_DIR / "line_zh.png").text
    assert out["explained_with"] == "float torch model" and not out["force_aligned"]
