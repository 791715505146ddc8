"""The int8 engine choice (issue 17): file by suffix, SHA256SUMS, staleness, fallback to float."""

from __future__ import annotations

import logging
import shutil

import onnx
import pytest

from ocr.detect import TextDetector
from ocr.engines import (ENGINES, INT8_BY_DEFAULT, QUANTIZED_FROM_KEY, SOURCE_KEY, int8_path, wants_int8)
from ocr.errors import ModelLoadError
from ocr.recognize.recognizer import Recognizer
from ocr.settings import WEIGHTS_DIR, Settings
from tests.int8_support import int8_weights_dir, write_sums


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return int8_weights_dir(tmp_path_factory.mktemp("int8src"))


@pytest.fixture
def weights(built, tmp_path):
    for path in built.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def load(root, engine):
    return Recognizer.load(root / "crnn.pt", charset=root / "charset.txt", engine=engine, threads=1)


def set_meta(path, **values):
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key in values:
            prop.value = values[prop.key]
    onnx.save(model, str(path))


def test_file_by_suffix_and_default_choice():
    assert int8_path(WEIGHTS_DIR / "det_small.pt") == WEIGHTS_DIR / "det_small.int8.onnx"
    assert "onnx-int8" in ENGINES and INT8_BY_DEFAULT == {"det_small.pt"}
    assert wants_int8("auto", WEIGHTS_DIR / "det_small.pt") and not wants_int8("auto", WEIGHTS_DIR / "det.pt")
    assert wants_int8("onnx-int8", WEIGHTS_DIR / "det.pt") and not wants_int8("onnx", WEIGHTS_DIR / "crnn.pt")
    assert Settings.from_env({}).engine == "auto"
    assert Settings.from_env({"OCR_ENGINE": "ONNX-INT8"}).engine == "onnx-int8"


def test_the_recogniser_int8_runs_on_request_only(weights):
    assert load(weights, "auto").engine_name == "onnxruntime"  # outside the model card's accuracy bound
    assert load(weights, "onnx-int8").engine_name == "onnxruntime-int8"
    assert load(weights, "onnx").engine_name == "onnxruntime"
    assert load(weights, "torch").engine_name == "torch"


def test_the_shipped_accurate_int8_runs_on_request_and_reads_like_float():
    """The accurate recogniser's int8 file (opt-in, as the fast one's) is current, checksummed and read by
    ``onnx-int8`` only; on a clear printed line it reads what the float model reads."""
    floating = Recognizer.load(model="accurate", threads=1)
    int8 = Recognizer.load(model="accurate", engine="onnx-int8", threads=1)
    assert floating.engine_name == "onnxruntime" and int8.engine_name == "onnxruntime-int8"
    line = WEIGHTS_DIR.parent / "examples" / "line_zh.png"
    assert [r.text for r in int8.recognize([line])] == [r.text for r in floating.recognize([line])] != [""]


def test_missing_int8_falls_back_to_float_with_a_log_line(weights, caplog):
    (weights / "crnn.int8.onnx").unlink()
    with caplog.at_level(logging.INFO, logger="ocr.engines"):
        assert load(weights, "onnx-int8").engine_name == "onnxruntime"
    assert "crnn.int8.onnx not found" in caplog.text and "training.quantize --only crnn" in caplog.text


@pytest.mark.parametrize("key", [SOURCE_KEY, QUANTIZED_FROM_KEY])
def test_stale_int8_falls_back_to_float_with_a_warning(weights, caplog, key):
    set_meta(weights / "crnn.int8.onnx", **{key: "0" * 64})
    write_sums(weights)
    with caplog.at_level(logging.WARNING, logger="ocr.engines"):
        rec = load(weights, "onnx-int8")
    assert rec.engine_name == "onnxruntime" and "is stale" in caplog.text
    assert rec.recognize_one(WEIGHTS_DIR.parent / "examples" / "line_zh.png").text  # and reads


def test_int8_of_a_replaced_float_export_is_stale(weights, caplog):
    model = onnx.load(str(weights / "crnn.onnx"))  # the same weights' export, re-saved: another file
    model.doc_string = "re-exported"
    onnx.save(model, str(weights / "crnn.onnx"))
    write_sums(weights)
    with caplog.at_level(logging.WARNING, logger="ocr.engines"):
        assert load(weights, "onnx-int8").engine_name == "onnxruntime"
    assert "quantised from another crnn.onnx" in caplog.text


def test_corrupt_int8_is_refused(weights):
    with open(weights / "crnn.int8.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelLoadError, match="corrupt"):
        load(weights, "onnx-int8")


def test_shipped_small_detector_is_int8_and_keeps_its_release():
    det = TextDetector.load(threads=1)
    assert det.engine_name == "onnxruntime-int8" and det.variant == "small" and det.engine.config.name == "small"
    assert TextDetector.load(threads=1, engine="onnx").engine_name == "onnxruntime"
    assert TextDetector.load(threads=1, variant="tiny").engine_name == "onnxruntime"  # tiny stays float
    assert TextDetector.load(threads=1, variant="tiny", engine="onnx-int8").engine_name == "onnxruntime"


def test_cli_takes_every_engine_for_lines_and_pages():
    from ocr.__main__ import build_parser

    for command in ("recognize", "page"):
        assert build_parser().parse_args([command, "--engine", "onnx-int8", "x.png"]).engine == "onnx-int8"
        assert build_parser().parse_args([command, "x.png"]).engine == "auto"
