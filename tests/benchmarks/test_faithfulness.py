"""Faithfulness measures (benchmarks.faithfulness) on rendered lines: fast, no ../shared access."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks import faithfulness as fa
from explain.hooks import count_hooks
from explain.targets import CharScore
from ocr.recognize.lineprep import PreparedLine, prepare_line
from training.synth import held_out_fonts, render_text

TEXTS = ("客户签名", "Change Due 1.10")


@pytest.fixture(scope="module")
def font(cjk_font):
    fonts = held_out_fonts()
    return fonts[0] if fonts else cjk_font


@pytest.fixture(scope="module")
def lines(font):
    return [render_text(t, font, 32) for t in TEXTS]


@pytest.fixture(scope="module")
def read_lines(recognizer, lines):
    out = []
    for line in lines:
        decoding, prepared = fa.read_line(recognizer, line.image)
        assert decoding.text == line.text, "the recogniser should read these clean lines"
        out.append((line, decoding, prepared))
    return out


# ---------------------------------------------------------------- AUC


def test_curve_auc_on_constructed_curves():
    x = fa.FRACTIONS
    assert fa.curve_auc(np.ones_like(x)) == pytest.approx(1.0)
    assert fa.curve_auc(np.zeros_like(x)) == pytest.approx(0.0)
    assert fa.curve_auc(1.0 - x) == pytest.approx(0.5)  # linear decay
    assert fa.curve_auc(x) == pytest.approx(0.5)
    assert fa.curve_auc(x**2) == pytest.approx(1 / 3, abs=1e-3)  # trapezoid error (1/6) h^2
    drop = (x < 0.1).astype(float)  # gone after 10%: 0.05 + half of the 0.05 ramp
    assert fa.curve_auc(drop) == pytest.approx(0.075)
    # the x-axis is normalised to [0, 1] whatever its units
    assert fa.curve_auc([1.0, 0.0], [0, 100]) == pytest.approx(0.5)
    assert fa.curve_auc([0.2, 0.2, 1.0], [10, 20, 30]) == pytest.approx(0.4)
    both = fa.curve_auc(np.stack([np.ones_like(x), 1.0 - x]))
    assert both.shape == (2,) and np.allclose(both, [1.0, 0.5])
    with pytest.raises(ValueError):
        fa.curve_auc([1.0], [0.0])
    with pytest.raises(ValueError):
        fa.curve_auc([1.0, 0.5], [1.0, 0.0])


def test_pixel_order_and_points():
    m = np.array([[0.1, 0.9], [0.9, np.nan]])
    assert fa.pixel_order(m).tolist() == [1, 2, 0, 3]  # ties in raster order, NaN last
    plateau = np.zeros((48, 10), np.float32)
    plateau[:9, 4] = 1.0  # an upsampled CAM: flat from the top cell's centre to the border
    assert fa.argmax_point(plateau) == (8, 4)
    assert fa.empty_map(np.zeros((3, 3))) and not fa.empty_map(plateau)


# ---------------------------------------------------------------- on rendered lines


def test_pointing_game_on_two_rendered_lines(recognizer, lines):
    res = fa.pointing_game(recognizer, lines, ["layercam", "saliency"])
    assert res["lines"] == 2 and res["lines_read"] == 2
    n = sum(1 for t in TEXTS for c in t if not c.isspace())
    assert res["chars"] == n
    assert set(res["methods"]) == {"ctc frames", "layercam", "saliency"}
    for row in res["methods"].values():
        assert row["chars"] == n
        assert 0.0 <= row["hit_rate"] <= 1.0 and 0.0 <= row["column_hit_rate"] <= 1.0
        assert row["hits"] <= row["column_hits"] <= n  # a box hit is a column hit
    assert count_hooks(recognizer.model) == 0


def test_deletion_insertion_on_two_rendered_lines(recognizer, lines):
    res = fa.deletion_benchmark(recognizer, [("synthetic", line.image) for line in lines], ["layercam"],
                                max_chars=4, per_line=2, seeds=(0,))
    assert res["chars"] == 4 and res["lines"] == 2
    for row in res["rows"]:
        assert 0.0 <= row["score"] <= 1.0
        for key in ("random_deletion_auc", "random_insertion_auc"):
            assert 0.0 <= row[key] <= 1.0
        aucs = row["methods"]["layercam"]
        assert 0.0 <= aucs["deletion_auc"] <= 1.0 and 0.0 <= aucs["insertion_auc"] <= 1.0
    table = res["methods"]["layercam"]
    assert table["chars"] == 4 and 0.0 <= table["deletion_wins"] <= 1.0
    assert all(0.0 <= table[k] <= 1.0 for k in ("deletion_auc", "insertion_auc", "random_deletion_auc"))


def test_curves_start_and_end_where_they_should(recognizer, read_lines):
    line, decoding, prepared = read_lines[0]
    target = fa.CharProb.from_span(decoding.chars[1])
    forward = fa.recognizer_forward(recognizer)
    x = fa.line_array(prepared)
    order = fa.random_order(x.shape[1] * prepared.width, 0)
    d, i = fa.perturbation_curves(forward, x, prepared.width, order, [target])
    full, empty = fa.end_scores(forward, x, prepared.width, [target])
    assert d.shape == i.shape == (1, len(fa.FRACTIONS))
    assert d[0, 0] == pytest.approx(full[0]) and i[0, -1] == pytest.approx(full[0])
    assert d[0, -1] == pytest.approx(empty[0]) and i[0, 0] == pytest.approx(empty[0])
    assert full[0] == pytest.approx(decoding.chars[1].confidence, abs=1e-3)
    assert empty[0] < 0.5  # a mid-grey line does not read as the character


def test_perfect_attribution_points_and_deletes_faster_than_random(recognizer, read_lines):
    line, decoding, prepared = read_lines[0]
    k = 1
    x1, y1, x2, y2 = line.char_boxes[k]
    h = line.image.shape[0]
    mask = np.zeros((prepared.tensor.shape[1], prepared.width), np.float32)
    sy = prepared.tensor.shape[1] / h
    mask[int(np.floor(y1 * sy)) : int(np.ceil(y2 * sy)),
         int(np.floor(x1 / prepared.scale)) : int(np.ceil(x2 / prepared.scale))] = 1.0
    assert fa.pointing_hits([mask], [line.char_boxes[k]], prepared, h) == [True]
    assert fa.pointing_hits([mask], [line.char_boxes[k + 1]], prepared, h) == [False]
    res = fa.deletion_insertion(fa.recognizer_forward(recognizer), prepared, mask,
                                [fa.CharProb.from_span(decoding.chars[k])], seeds=(0, 1))
    assert res["deletion_auc"][0] < res["random_deletion_auc"][0] - 0.1
    assert 0.0 <= res["insertion_auc"][0] <= 1.0


def test_attribution_maps_have_the_input_shape(recognizer, read_lines):
    _, decoding, prepared = read_lines[1]
    targets = [CharScore.from_span(decoding.chars[0])]
    for method in ("layercam", "gradcam", "layercam-logit", "saliency"):
        (m,) = fa.attributions(method, recognizer.model, prepared, targets)
        assert m.shape == (48, prepared.width) and np.isfinite(m).all()
    with pytest.raises(ValueError):
        fa.attributions("nope", recognizer.model, prepared, targets)
    assert count_hooks(recognizer.model) == 0


def test_curves_match_torchcam_deletion_insertion_metric(recognizer, font):
    """Our curves and AUCs equal torchcam's DeletionInsertionMetric on the map it computes (LayerCAM)."""
    from torchcam.methods import LayerCAM
    from torchcam.metrics import DeletionInsertionMetric

    prepared = prepare_line(render_text("Paid by Debit Card: 1,234.50 MYR", font, 32).image)
    # torchcam ranks every column of the tensor: no padding (width >= the batch minimum, a multiple of 8), and
    # 48 * width / 20 whole pixels per 5% step as torchcam splits them (width a multiple of 5)
    width = 400
    assert prepared.width >= width
    line = PreparedLine(np.ascontiguousarray(prepared.tensor[:, :, :width]), width, prepared.scale)
    model = recognizer.model
    x = torch.from_numpy(fa.line_array(line)).unsqueeze(0)
    assert x.shape[3] == width
    with torch.inference_mode():
        probs = model(x).softmax(-1)[0].numpy()
    from ocr.decode import greedy_decode

    span = greedy_decode(probs, recognizer.charset).chars[2]

    def target(logits: torch.Tensor) -> torch.Tensor:  # one sample [T, C]: the CharProb score
        return logits[span.t_start : span.t_end + 1].softmax(-1)[:, span.index].mean()

    with LayerCAM(model, target_layer="backbone.blocks.8") as extractor:
        metric = DeletionInsertionMetric(extractor, steps=20, batch_size=64)
        metric.update(x.clone(), targets=target)
        ref = metric.summary()
        cams = extractor(scores=model(x.clone().requires_grad_(True)), targets=target)
        cam = extractor.fuse_cams(cams)
    assert count_hooks(model) == 0
    cam = F.interpolate(cam.unsqueeze(1), size=(48, width), mode="bilinear", align_corners=False)[0, 0]
    d, i = fa.perturbation_curves(fa.torch_forward(model), x[0].numpy(), width,
                                  fa.pixel_order(cam.detach().numpy()), [fa.CharProb.from_span(span)])
    assert fa.curve_auc(d[0]) == pytest.approx(ref["deletion_auc"], abs=1e-4)
    assert fa.curve_auc(i[0]) == pytest.approx(ref["insertion_auc"], abs=1e-4)


def test_write_section_keeps_everything_else(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    original = "# Benchmarks\n\n<!-- other:start -->\nkeep me  \n<!-- other:end -->"  # no final newline
    path.write_text(original, encoding="utf-8")
    fa.write_section(path, "first")
    text = path.read_text(encoding="utf-8")
    assert text.startswith(original) and text.endswith(f"{fa.MARK_START}\nfirst\n{fa.MARK_END}\n")
    path.write_text(text + "tail\n", encoding="utf-8")
    fa.write_section(path, "second")
    assert path.read_text(encoding="utf-8") == text.replace("first", "second") + "tail\n"
    path.write_text(f"x\n{fa.MARK_START}\n", encoding="utf-8")
    with pytest.raises(ValueError):
        fa.write_section(path, "third")
