"""The recognition core: converter parity, reading rendered lines, batching, bad inputs, the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ocr.errors import InvalidImageError, OCRError
from training.synth import render_text

ROOT = Path(__file__).resolve().parents[2]
LINES_ZH = ["发票代码", "价税合计", "北京科技有限公司", "金额"]
LINES_EN = ["TOTAL 128.50", "Thank you", "INVOICE 2024"]


def test_charset_is_data_with_blank_at_zero(charset):
    assert charset.num_classes == 6906
    assert charset.char(0) == ""
    for char in " ¥€$%°，。：（）发票金额税":
        assert char in charset, char
    assert charset.encode("a\U0001F600b") == charset.encode("ab")  # outside the charset: dropped


def test_converter_matches_onnxruntime():
    import onnxruntime as ort
    from training.convert import default_onnx_path, tiny_from_onnx

    path = default_onnx_path()
    model = tiny_from_onnx(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for width in (64, 200):
        x = np.random.default_rng(width).uniform(-1, 1, (2, 3, 48, width)).astype(np.float32)
        expected = session.run(None, {"x": x})[0]
        with torch.no_grad():
            got = model(torch.from_numpy(x)).numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-4


def test_crnn_starts_exactly_at_the_pretrained_head():
    from training.convert import crnn_from_onnx, default_onnx_path, tiny_from_onnx

    crnn, tiny = crnn_from_onnx(default_onnx_path()), tiny_from_onnx(default_onnx_path())
    x = torch.rand(1, 3, 48, 96) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(crnn(x).softmax(-1), tiny(x), atol=1e-6)


def test_an_inert_bilstm_is_skipped_at_inference_with_identical_output():
    from ocr.recognize.network import CRNN

    torch.manual_seed(0)
    model = CRNN().eval()
    seq = torch.randn(2, 12, 160)
    calls = []
    handle = model.lstm.register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            full = model.classifier(model.feature_proj(seq) + model.context_proj(model.lstm(seq)[0]))
            calls.clear()
            assert model.context_is_inert()
            assert torch.equal(model.head(seq), full) and calls == []  # skipped, same numbers
            model.train()  # training always runs it, or the BiLSTM could never start learning
            model.head(seq)
            assert calls == [1]
            model.eval()
            torch.nn.init.normal_(model.context_proj.weight, std=0.1)  # a trained BiLSTM always runs
            calls.clear()
            out = model.head(seq)
            assert calls == [1] and not torch.allclose(out, full)
    finally:
        handle.remove()


def test_model_shapes(recognizer):
    model = recognizer.model
    x = torch.zeros(2, 3, 48, 160)
    with torch.no_grad():
        assert model.features(x).shape == (2, 20, 160)
        assert model(x).shape == (2, 20, 6906)


@pytest.mark.parametrize("text", LINES_ZH)
def test_reads_rendered_chinese_line(recognizer, cjk_font, text):
    line = render_text(text, cjk_font, 36)
    assert recognizer.recognize_one(line.image).text == text


@pytest.mark.parametrize("text", LINES_EN)
def test_reads_rendered_english_line(recognizer, latin_font, text):
    line = render_text(text, latin_font, 36)
    assert recognizer.recognize_one(line.image).text == text


def test_char_spans_fall_on_their_glyphs(recognizer, cjk_font):
    line = render_text("价税合计", cjk_font, 40)
    result = recognizer.recognize_one(line.image)
    assert result.text == "价税合计"
    for span, (x1, _, x2, _) in zip(result.chars, line.char_boxes):
        centre = (span.x_start + span.x_end) / 2
        assert x1 - 8 <= centre <= x2 + 8
        assert 0.0 <= span.confidence <= 1.0
    assert 0.0 <= result.confidence <= 1.0


def test_batch_equals_single_calls(recognizer, cjk_font, latin_font):
    images = [render_text(t, cjk_font, s).image for t in LINES_ZH for s in (28, 44)]
    images += [render_text(t, latin_font, s).image for t in LINES_EN for s in (24, 40)]
    batched = recognizer.recognize(images)
    single = [recognizer.recognize_one(img) for img in images]
    assert [r.text for r in batched] == [r.text for r in single]
    for b, s in zip(batched, single):
        assert abs(b.confidence - s.confidence) < 0.15  # right-padding shifts edge frames slightly


def test_input_kinds_agree(recognizer, cjk_font):
    rgb = render_text("金额", cjk_font, 36).image
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    deep = (gray.astype(np.uint16) * 257)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    for image in (rgb, gray, rgba, deep, Image.fromarray(rgb), buf.getvalue()):
        assert recognizer.recognize_one(image).text == "金额"


def test_bad_inputs_give_clear_errors_or_sensible_results(recognizer, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image at all")
    for bad in (empty, junk, b"", tmp_path / "missing.png"):
        with pytest.raises(InvalidImageError):
            recognizer.recognize_one(bad)
    tiny = recognizer.recognize_one(np.zeros((1, 1, 3), np.uint8))
    assert tiny.text == "" or len(tiny.text) <= 2
    wide = recognizer.recognize_one(np.full((30, 10000, 3), 255, np.uint8))
    assert wide.text.strip() == ""
    assert 0.0 <= wide.confidence <= 1.0


def _make_manifest(tmp_path, font, texts):
    (tmp_path / "images").mkdir()
    rows = []
    for i, text in enumerate(texts):
        Image.fromarray(render_text(text, font, 36).image).save(tmp_path / "images" / f"{i}.png")
        rows.append(f"images/{i}.png\t{text}")
    manifest = tmp_path / "labels.tsv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


def test_manifest_cli_round_trip(tmp_path, cjk_font, capsys):
    from ocr.__main__ import main as ocr_main
    from benchmarks.evaluate import main as evaluate_main

    texts = ["发票代码", "价税合计", "金额"]
    manifest = _make_manifest(tmp_path, cjk_font, texts)
    (tmp_path / "images" / "9.png").write_bytes(b"broken")
    with manifest.open("a", encoding="utf-8") as f:
        f.write("images/9.png\t坏\n")
    preds = tmp_path / "preds.tsv"
    assert ocr_main(["recognize", "--manifest", str(manifest), "--out", str(preds)]) == 1  # as batch: one unread
    assert "1 image(s) could not be read" in capsys.readouterr().err
    rows = [line.split("\t") for line in preds.read_text(encoding="utf-8").splitlines()]
    assert [r[0] for r in rows] == ["images/0.png", "images/1.png", "images/2.png", "images/9.png"]
    assert [r[1] for r in rows] == texts + [""]
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows)
    capsys.readouterr()
    evaluate_main([str(manifest), "--protocol", "zh", "--preds", str(preds), "--json"])
    scores = json.loads(capsys.readouterr().out)
    assert scores["line_accuracy"] == pytest.approx(0.75)


def test_cli_reports_bad_image_without_traceback(tmp_path, capsys):
    from ocr.__main__ import main as ocr_main

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    assert ocr_main(["recognize", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_corrupt_weights_refused(tmp_path):
    from ocr.errors import ModelLoadError
    from ocr.recognize.recognizer import load_crnn

    bad = tmp_path / "crnn.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError):
        load_crnn(bad, verify=False)
    with pytest.raises(ModelLoadError):
        load_crnn(tmp_path / "absent.pt")
    assert issubclass(ModelLoadError, OCRError)


def test_blank_lines_read_as_nothing(recognizer):
    for image in (np.full((48, 300, 3), 255, np.uint8), np.full((40, 200), 30, np.uint8)):
        result = recognizer.recognize_one(image)
        assert result.text == "" and result.chars == []


def test_weights_match_their_recorded_checksums(tmp_path):
    import shutil

    from ocr.errors import ModelLoadError
    from ocr.recognize.recognizer import CHECKSUMS, DEFAULT_WEIGHTS, load_crnn, verify_checksum

    for name in ("crnn.pt", "crnn.onnx", "det.pt", "charset.txt"):
        verify_checksum(CHECKSUMS.parent / name)
    shutil.copy(DEFAULT_WEIGHTS, tmp_path / "crnn.pt")
    shutil.copy(CHECKSUMS, tmp_path / "SHA256SUMS")
    with (tmp_path / "crnn.pt").open("r+b") as f:  # one flipped byte deep inside the tensors
        f.seek(4_000_000)
        byte = f.read(1)
        f.seek(4_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_crnn(tmp_path / "crnn.pt")


def test_is_blank_matches_numpy_percentiles_exactly():
    """The histogram shortcut decides as np.percentile does, on gray and colour, flat and noisy lines."""
    from ocr.recognize.recognizer import BLANK_SPREAD, is_blank

    rng = np.random.default_rng(3)
    for trial in range(300):
        h, w = int(rng.integers(1, 50)), int(rng.integers(1, 200))
        base = int(rng.integers(0, 256))
        spread = int(rng.integers(0, 30))
        img = np.clip(base + rng.integers(-spread, spread + 1, (h, w, 3)), 0, 255).astype(np.uint8)
        if trial % 4 == 0:
            img = img[..., 0]
        gray = img.mean(axis=2) if img.ndim == 3 else img
        lo, hi = np.percentile(gray, (1, 99))
        assert is_blank(img) == (float(hi - lo) < BLANK_SPREAD), (trial, hi - lo)
        assert is_blank(img.astype(np.float32)) == is_blank(img)


def test_recogniser_load_hashes_its_weights_once_and_refuses_a_corrupt_export(tmp_path, monkeypatch):
    """One digest serves the checksum and the export's source check; a damaged export is refused."""
    pytest.importorskip("onnxruntime")
    import shutil

    import ocr.engines
    from ocr.errors import ModelLoadError
    from ocr.recognize.recognizer import CHECKSUMS, DEFAULT_WEIGHTS, Recognizer

    hashed: list[str] = []
    sha = ocr.engines.sha256_of
    monkeypatch.setattr(ocr.engines, "sha256_of", lambda p: hashed.append(p.name) or sha(p))
    assert Recognizer.load().engine_name == "onnxruntime"
    assert hashed.count("crnn.pt") == 1 and hashed.count("crnn.onnx") == 1
    for name in ("crnn.pt", "charset.txt", CHECKSUMS.name):
        shutil.copy(DEFAULT_WEIGHTS.parent / name, tmp_path / name)
    data = bytearray((DEFAULT_WEIGHTS.parent / "crnn.onnx").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "crnn.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="corrupt"):
        Recognizer.load(tmp_path / "crnn.pt", tmp_path / "charset.txt")


def test_batches_are_bounded_in_padded_columns_and_read_the_same(latin_font):
    """Memory grows with batch x padded width, time per line does not shrink with the batch:
    batches stop at ``max_batch_columns``, and the text is the same however lines are batched."""
    from ocr.recognize.lineprep import PAD_MIN_WIDTH, prepare_line
    from ocr.recognize.recognizer import Recognizer

    rec = Recognizer.load(threads=1)
    rec.max_batch_columns = 1000
    rng = np.random.default_rng(0)
    images = [np.full((32, int(w), 3), 255, np.uint8) for w in rng.integers(20, 1400, 40)]
    prepared = [prepare_line(img) for img in images]
    batches = rec._buckets(prepared)
    assert sorted(i for b in batches for i in b) == list(range(len(images)))
    for batch in batches:
        widest = max(max(prepared[i].width for i in batch), PAD_MIN_WIDTH)
        assert len(batch) == 1 or len(batch) * widest <= rec.max_batch_columns
    lines = [render_text(t, latin_font, 32).image for t in ("TOTAL 12.50", "CASH", "CHANGE DUE 7.50 THANK YOU")]
    bounded = [r.text for r in rec.recognize(lines)]
    rec.max_batch_columns = 10**6
    assert [r.text for r in rec.recognize(lines)] == bounded


def test_reading_text_never_imports_torch_and_the_lazy_model_is_the_same_network():
    """The onnxruntime path (CLI, REST API) runs without torch; explanations still get the CRNN."""
    pytest.importorskip("onnxruntime")
    import subprocess
    import sys


    code = ("import sys; from ocr.recognize.recognizer import Recognizer; rec = Recognizer.load(threads=1); "
            "res = rec.recognize_one('examples/line_zh.png'); "
            "print(rec.engine_name, rec.model_built, 'torch' in sys.modules, res.text); "
            "rec.model; print(rec.model_built, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first.split(" ", 3)[:3] == ["onnxruntime", "False", "False"]
    assert "1,234.56" in first
    assert second == "True True"


def test_lazy_model_matches_an_eagerly_loaded_one():
    pytest.importorskip("onnxruntime")
    from ocr.recognize.recognizer import DEFAULT_WEIGHTS, Recognizer, load_crnn

    lazy = Recognizer.load(threads=1)
    assert lazy.engine_name == "onnxruntime" and not lazy.model_built
    eager = load_crnn(DEFAULT_WEIGHTS)
    for (name, a), (_, b) in zip(lazy.model.state_dict().items(), eager.state_dict().items()):
        assert torch.equal(a, b), name
    assert Recognizer.load(threads=1, engine="torch").model_built


def test_recognize_cli_points_page_images_to_the_page_command(capsys, caplog):
    from ocr.__main__ import main as ocr_main

    page, line = ROOT / "examples" / "receipt_en.png", ROOT / "examples" / "line_zh.png"
    with caplog.at_level("WARNING", logger="ocr"):
        assert ocr_main(["recognize", str(line), str(page)]) == 0
    hints = [r.getMessage() for r in caplog.records if "python -m ocr page" in r.getMessage()]
    assert len(hints) == 1 and str(page) in hints[0] and str(line) not in hints[0]
    assert "1,234.56" in capsys.readouterr().out


def test_batches_read_side_by_side_on_several_cores_give_the_very_same_readings(cjk_font, latin_font):
    """With two workers the batches of one call run at once on a one-thread session; each batch is the same
    array through the same network, so every reading, confidence and character span is identical."""
    pytest.importorskip("onnxruntime")
    from ocr.recognize.lineprep import prepare_line
    from ocr.recognize.recognizer import Recognizer

    images = [render_text(t, cjk_font, s).image for t in LINES_ZH for s in (20, 28, 44)]
    images += [render_text(t, latin_font, s).image for t in LINES_EN for s in (16, 24, 40, 64)]
    one, two = Recognizer.load(threads=1), Recognizer.load(threads=2)
    assert one.engine.workers == 1 and two.engine.workers == 2
    assert len(two._buckets([prepare_line(img) for img in images])) >= 2  # several batches to share
    sequential, side_by_side = one.recognize(images), two.recognize(images)
    assert two.engine._per_core.built  # the batches did go through the per-core session
    assert [r.to_dict() for r in side_by_side] == [r.to_dict() for r in sequential]
    # one batch alone keeps the two-thread session
    assert Recognizer.load(threads=2).recognize(images[:1])[0].text == sequential[0].text


def test_tail_frames_are_decoded_and_padded_for():
    """A tightly cropped word's last character may peak one frame past its content (``profit`` read
    ``profi``): each model decodes ``tail_frames`` steps more, and a batch is padded so those steps exist,
    even for its widest line."""
    import math

    from ocr.recognize.lineprep import STRIDE_X, batch_array, prepare_line
    from ocr.recognize.models import SPECS

    rgb = np.full((48, 400, 3), 255, np.uint8)
    plain, tailed = prepare_line(rgb), prepare_line(rgb, tail_frames=1)
    assert tailed.steps == plain.steps + 1 == math.ceil(400 / STRIDE_X) + 1
    assert batch_array([tailed]).shape[-1] >= STRIDE_X * tailed.steps > batch_array([plain]).shape[-1] - 1
    assert all(spec.tail_frames == 1 for spec in SPECS.values())
    # the accurate model decodes its narrowest batch whole, as PaddleOCR decodes its padded input
    short = prepare_line(rgb[:, :40], pad_to=160, tail_frames=1, min_steps=160 // STRIDE_X)
    assert short.steps == 20 and batch_array([short]).shape[-1] == 160
    assert SPECS["accurate"].decode_padding and not SPECS["fast"].decode_padding
