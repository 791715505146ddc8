"""The ONNX engine: parity with torch, staleness detection, same readings."""

from __future__ import annotations

import shutil

import numpy as np

from training.export import check_parity, export_onnx
from ocr.recognize.recognizer import DEFAULT_WEIGHTS, Recognizer, onnx_engine_for
from training.synth import render_text


def test_export_matches_torch_and_is_tied_to_its_weights(tmp_path):
    weights = tmp_path / "crnn.pt"
    shutil.copy(DEFAULT_WEIGHTS, weights)
    onnx_path = export_onnx(weights, tmp_path / "crnn.onnx")
    assert check_parity(weights, onnx_path) <= 1e-4
    assert onnx_engine_for(weights, threads=1) is not None
    with weights.open("ab") as f:  # weights changed after export: the export is stale
        f.write(b"\0")
    assert onnx_engine_for(weights, threads=1) is None


def test_engines_read_alike(cjk_font):
    images = [render_text(t, cjk_font, 36).image for t in ("发票代码", "价税合计", "金额 128.50")]
    torch_rec = Recognizer.load(engine="torch")
    auto_rec = Recognizer.load(engine="auto")
    a, b = torch_rec.recognize(images), auto_rec.recognize(images)
    assert [r.text for r in a] == [r.text for r in b]
    assert np.allclose([r.confidence for r in a], [r.confidence for r in b], atol=1e-3)
