"""Explanations: map shapes and ranges, localisation, hook and state hygiene, threads, progress, CLI."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explain import render
from explain.alignment import BLANK_LABEL, align_line
from explain.registry import ExplainRequestError, explain_line
from explain.gradcam import DEFAULT_LAYER, GradCAMExplainer, available_layers
from explain.hooks import count_hooks
from explain.maps import to_image_size
from explain.occlusion import occlusion_maps
from explain.saliency import gradient_extent, ig_maps, saliency_maps
from explain.targets import CharScore, CTCLossScore, LinePathScore, char_targets
from training.synth import render_text

ROOT = Path(__file__).resolve().parents[2]
LONG = "北京华夏科技有限公司发票代码金额合计税额"  # 20 characters
SHORT = "发票金额"


@pytest.fixture(scope="module")
def long_line(recognizer, cjk_font):
    line = render_text(LONG, cjk_font, 32)
    result = recognizer.recognize_one(line.image)
    assert result.text == LONG  # clean rendering: boxes and spans pair up one to one
    return line, result, recognizer.prepare(line.image)


@pytest.fixture(scope="module")
def short_line(recognizer, cjk_font):
    line = render_text(SHORT, cjk_font, 32)
    result = recognizer.recognize_one(line.image)
    assert result.text == SHORT
    return line, result, recognizer.prepare(line.image)


def _state(model):
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


def _check_map(m, prep):
    assert m.shape == (48, prep.width)
    assert m.dtype == np.float32
    assert np.isfinite(m).all()
    assert m.min() >= 0.0 and m.max() <= 1.0


def _peak_in_box(m, prep, box, tol=6.0):
    col = (float(m.sum(0).argmax()) + 0.5) * prep.scale
    return box[0] - tol <= col <= box[2] + tol


# ---------------------------------------------------------------- targets


def test_targets_score_samples_and_batches(recognizer, short_line):
    _, result, prep = short_line
    x = torch.from_numpy(prep.tensor)[None]
    with torch.no_grad():
        logits = recognizer.model(x)
    batch = logits.repeat(3, 1, 1)
    c = result.chars[1]
    target = CharScore.from_span(c)
    one = target(logits[0])
    assert one.ndim == 0 and one.item() <= 0.0
    assert torch.allclose(target(batch), one.expand(3))
    expected = logits[0, c.t_start : c.t_end + 1].log_softmax(-1)[:, c.index].sum()
    assert torch.isclose(one, expected)
    line_score = LinePathScore.from_logits(logits, prep.steps)
    assert line_score(logits[0]).item() <= one.item() + 1e-6  # the whole path is at most as likely as a part
    labels = recognizer.charset.encode(SHORT)
    ctc = CTCLossScore(labels, prep.steps)
    assert ctc(batch).shape == (3,)
    assert ctc(logits[0]).item() >= line_score(logits[0]).item() - 1e-4  # all paths >= the best one
    with pytest.raises(ValueError):
        CharScore(0, 0, 1)


# ---------------------------------------------------------------- Grad-CAM


def test_gradcam_maps_shape_range_and_localisation(recognizer, long_line):
    line, result, prep = long_line
    assert DEFAULT_LAYER in available_layers(recognizer.model)
    probs, _ = recognizer.probabilities([line.image])[0]
    with GradCAMExplainer(recognizer.model) as cam:
        line_map = cam.line_map(prep, LinePathScore.from_probs(probs, prep.steps))
        maps = cam.char_maps(prep, char_targets(result.chars))
    assert len(maps) == len(result.chars) == len(line.char_boxes)
    for m in [line_map, *maps]:
        _check_map(m, prep)
        assert m.max() == pytest.approx(1.0)
    flat = np.stack([m.ravel() for m in maps])
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    cosine = flat @ flat.T
    assert np.diag(cosine, 1).max() < 0.6  # neighbours point at different evidence (measured: <= 0.21)
    hits = sum(_peak_in_box(m, prep, box) for m, box in zip(maps, line.char_boxes))
    assert hits >= 0.8 * len(maps), f"only {hits}/{len(maps)} character maps peak on their character"
    h, w = line.image.shape[:2]
    full = to_image_size(maps[0], (h, w))
    assert full.shape == (h, w) and full.dtype == np.float32 and 0.0 <= full.min() <= full.max() <= 1.0


def test_gradcam_fused_layers_and_bad_layer(recognizer, short_line):
    _, result, prep = short_line
    with GradCAMExplainer(recognizer.model, ["backbone.blocks.5", DEFAULT_LAYER], method="gradcam") as cam:
        maps = cam.char_maps(prep, char_targets(result.chars))
    for m in maps:
        _check_map(m, prep)
    with pytest.raises(ValueError, match="unknown layer"):
        GradCAMExplainer(recognizer.model, "backbone.nope")
    with pytest.raises(RuntimeError, match="context manager"):
        GradCAMExplainer(recognizer.model).line_map(prep, CharScore.from_span(result.chars[0]))


def test_hooks_and_model_state_restored_also_after_errors(recognizer, short_line):
    _, result, prep = short_line
    model = copy.deepcopy(recognizer.model)
    model.train()
    model.backbone.stem1.weight.requires_grad_(False)  # a mixed, non-default state must come back exactly
    model.neck.eval()
    before = _state(model)
    assert count_hooks(model) == 0
    with GradCAMExplainer(model, [DEFAULT_LAYER, "backbone.blocks.4"]) as cam:
        assert count_hooks(model) > 0
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        cam.char_maps(prep, char_targets(result.chars))
    assert count_hooks(model) == 0 and _state(model) == before

    with pytest.raises(RuntimeError, match="boom"):
        with GradCAMExplainer(model) as cam:
            cam.line_map(prep, CharScore.from_span(result.chars[0]))
            raise RuntimeError("boom")
    assert count_hooks(model) == 0 and _state(model) == before

    def bad_target(logits):
        raise ValueError("target failed")

    with pytest.raises(ValueError, match="target failed"):
        with GradCAMExplainer(model) as cam:
            cam.line_map(prep, bad_target)
    assert count_hooks(model) == 0 and _state(model) == before

    for run in (lambda t: saliency_maps(model, prep, t), lambda t: occlusion_maps(model, prep, t, stride=16)):
        run([CharScore.from_span(result.chars[0])])
        assert count_hooks(model) == 0 and _state(model) == before


def test_count_hooks_counts_module_and_tensor_hooks(recognizer):
    model = copy.deepcopy(recognizer.model)
    handles = [model.neck.register_forward_hook(lambda *a: None),
               model.lstm.register_forward_pre_hook(lambda *a: None),
               model.classifier.weight.register_hook(lambda g: g)]
    assert count_hooks(model) == 3
    for h in handles:
        h.remove()
    assert count_hooks(model) == 0


def test_two_threads_explaining_at_once(recognizer, long_line, short_line):
    jobs = {"long": long_line, "short": short_line}
    barrier = threading.Barrier(len(jobs) + 1)
    results: dict[str, object] = {}

    def work(name):
        line, result, prep = jobs[name]
        barrier.wait()
        try:
            results[name] = explain_line(recognizer, line.image, methods=("gradcam",))
        except Exception as exc:  # reported below
            results[name] = exc

    def reader():  # plain recognition on the shared model while hooks may be attached
        barrier.wait()
        results["reader"] = [recognizer.recognize_one(short_line[0].image).text for _ in range(3)]

    threads = [threading.Thread(target=work, args=(n,)) for n in jobs] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results["reader"] == [SHORT] * 3
    for name, (line, result, prep) in jobs.items():
        out = results[name]
        assert isinstance(out, dict), out
        h, w = line.image.shape[:2]
        assert out["text"] == result.text
        assert out["maps"]["gradcam_line"].shape == (h, w)
        assert len(out["maps"]["gradcam_chars"]) == len(result.chars)
        assert all(m.shape == (h, w) for m in out["maps"]["gradcam_chars"].values())
    assert count_hooks(recognizer.model) == 0


# ---------------------------------------------------------------- occlusion, gradients


def test_occlusion_maps_and_progress(recognizer, short_line):
    line, result, prep = short_line
    seen: list[float] = []
    maps = occlusion_maps(recognizer.model, prep, char_targets(result.chars), patch=16, stride=8,
                          batch_size=32, progress=seen.append)
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    assert len(maps) == len(result.chars)
    for m in maps:
        _check_map(m, prep)
    assert sum(_peak_in_box(m, prep, box, tol=10) for m, box in zip(maps, line.char_boxes)) >= 3


def test_occlusion_of_a_long_line_costs_width_once_and_reports_progress_often():
    """A 330-character line kept an explanation busy for minutes (found by a black-box pass): the line's own
    scores took one forward per target, and a long line ran 32 full-width copies between progress reports.
    Now: one forward for the scores, at most ``MAX_X_POSITIONS`` patch positions per row, and batches of at
    most ``BATCH_COLUMNS`` input columns."""
    import torch
    from torch import nn

    from explain.occlusion import BATCH_COLUMNS, MAX_X_POSITIONS, occlusion_drops

    class Counting(nn.Module):
        """Logits [B, W/8, 4] from column means: cheap, deterministic, counts what it is given."""

        def __init__(self, line: torch.Tensor) -> None:
            super().__init__()
            self.line, self.batches, self.clean = line, [], 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.batches.append(x.shape[0])
            self.clean += sum(bool(torch.equal(copy, self.line[0])) for copy in x)
            cols = x.mean(dim=(1, 2)).reshape(x.shape[0], -1, 8).mean(-1)  # [B, T]
            return torch.stack([cols, -cols, cols * 2, cols.abs()], dim=-1)

    width = 3200
    line = torch.rand(1, 3, 48, width)
    targets = [CharScore(1 + k % 3, t, t) for k, t in enumerate(range(0, width // 8, 4))]  # 100 characters
    model, seen = Counting(line), []
    drops = occlusion_drops(model, line, targets, progress=seen.append)
    assert drops.shape == (len(targets), 48, width)
    assert model.clean == 1  # the line's own scores: one forward for all 100 targets (was 100)
    copies = sum(model.batches[1:])
    assert copies <= 5 * (MAX_X_POSITIONS + 1)  # 5 rows of patches, not 5 x 400
    assert max(model.batches[1:]) * width <= max(BATCH_COLUMNS, width)
    assert len(seen) == len(model.batches) - 1 and seen[-1] == pytest.approx(1.0)


def test_integrated_gradients_saliency_and_reach(recognizer, short_line):
    _, result, prep = short_line
    target = CharScore.from_span(result.chars[2])
    seen: list[float] = []
    (ig,) = ig_maps(recognizer.model, prep, [target], steps=8, batch_size=4, progress=seen.append)
    assert seen[-1] == pytest.approx(1.0) and len(seen) == 2
    _check_map(ig, prep)
    assert ig.max() > 0
    (sal,) = saliency_maps(recognizer.model, prep, [target])
    _check_map(sal, prep)
    spans = [(c.t_start, c.t_end) for c in result.chars]
    extent = gradient_extent(recognizer.model, prep, target, spans=spans)
    assert 0 <= extent.x_start < extent.x_end <= prep.width
    assert extent.width_px == extent.x_end - extent.x_start and extent.width_chars > 0
    assert 1 <= extent.chars_covered <= len(result.chars)
    assert extent.reach_left is not None and extent.reach_right is not None


# ---------------------------------------------------------------- alignment, rendering


def test_alignment_rows_match_recognition(recognizer, long_line):
    line, result, prep = long_line
    al = align_line(recognizer, line.image, k=5)
    assert al.decoding.text == result.text
    assert [r["char"] for r in al.rows] == [c.char for c in result.chars]
    for i, (row, c) in enumerate(zip(al.rows, result.chars)):
        assert row["index"] == i and row["class_index"] == c.index
        assert (row["t_start"], row["t_end"]) == (c.t_start, c.t_end)
        assert row["confidence"] == pytest.approx(c.confidence, abs=1e-3)
        assert row["x_start"] == pytest.approx(c.x_start, abs=0.1) and row["x_end"] == pytest.approx(c.x_end, abs=0.1)
        assert [ch for ch, _ in row["candidates"]] == [ch for ch, _ in c.candidates]
    t = prep.steps
    assert al.topk.probs.shape == (t, 5) and al.topk.classes.shape == (t, 5)
    assert (np.diff(al.topk.probs, axis=1) <= 1e-7).all()
    assert any(BLANK_LABEL in labels for labels in al.topk.labels)
    assert al.matrix.labels[0] == BLANK_LABEL and al.matrix.matrix.shape[1] == t
    assert al.frame_columns.shape == (t, 2)
    assert al.frame_columns[-1, 1] <= line.image.shape[1]


def test_render_functions_return_uint8_rgb(recognizer, short_line):
    line, result, prep = short_line
    al = align_line(recognizer, line.image)
    m = np.linspace(0, 1, 48 * prep.width, dtype=np.float32).reshape(48, prep.width)
    images = [
        render.colorize(m),
        render.overlay(line.image, m),
        render.draw_char_boxes(line.image, result.chars, highlight=1),
        render.alignment_image(al.topk, title=result.text),
        render.alignment_matrix_image(al.matrix, title=result.text),
        render.confidence_strip(result.text, [c.confidence for c in result.chars]),
        render.stack_vertical([line.image, line.image]),
    ]
    for img in images:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.size > 0
    assert images[1].shape == line.image.shape
    assert render.find_cjk_font() is not None


# ---------------------------------------------------------------- API, CLI


def test_api_single_char_and_bad_requests(recognizer, short_line):
    line, result, _ = short_line
    seen: list[float] = []
    out = explain_line(recognizer, line.image, methods=("alignment", "gradcam", "saliency"), char_index=1,
                       progress=seen.append)
    assert seen[-1] == pytest.approx(1.0)
    assert out["selected_chars"] == [1] and list(out["images"]["gradcam_chars"]) == [1]
    assert len(out["chars"]) == len(result.chars) and 1 in out["tables"]["reach"]
    assert out["images"]["alignment"].dtype == np.uint8
    with pytest.raises(ExplainRequestError, match="does not exist"):
        explain_line(recognizer, line.image, char_index=len(result.chars))
    with pytest.raises(ExplainRequestError, match="^character out of range does not exist"):  # not 4000 digits
        explain_line(recognizer, line.image, char_index=10**4000)
    with pytest.raises(ExplainRequestError, match="unknown method"):
        explain_line(recognizer, line.image, methods=("nope",))
    with pytest.raises(ExplainRequestError, match="unknown layer"):
        explain_line(recognizer, line.image, layer="backbone.nope")


def test_cli_writes_pngs_and_summary(tmp_path, short_line):
    from explain.__main__ import run

    line, result, _ = short_line
    img = tmp_path / "line.png"
    Image.fromarray(line.image).save(img)
    out = tmp_path / "out"
    assert run([str(img), "--method", "gradcam", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["text"] == result.text
    assert [r["char"] for r in summary["chars"]] == list(result.text)
    assert {"gradcam_line.png", "gradcam_chars.png", "confidence.png", "summary.json"} <= set(summary["files"])
    for name in summary["files"]:
        assert (out / name).is_file()
    assert Image.open(out / "gradcam_chars.png").mode == "RGB"


def test_cli_rejects_non_image_in_one_line(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("definitely not an image")
    proc = subprocess.run([sys.executable, "-m", "explain", str(bad), "--out", str(tmp_path / "o")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in proc.stderr
    assert not (tmp_path / "o" / "summary.json").exists()


def test_explain_never_imports_gradio():
    code = ("import sys, explain.registry, explain.__main__, explain.render, explain.gradcam, explain.occlusion, "
            "explain.saliency; assert 'gradio' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    for path in (ROOT / "explain").glob("*.py"):
        assert "import gradio" not in path.read_text(encoding="utf-8"), path.name


def test_decoder_choices_name_the_characters_chosen_against_their_frames():
    """A character whose first runner-up is more probable on its own frames was the decoder's choice (language
    model, word list, plate rules); a character its frames prefer is not listed."""
    from ocr.decode import CharSpan
    from explain.alignment import decoder_choices

    chars = [CharSpan("H", 3, 0.9, 0, 1, 0.0, 8.0, [("h", 0.05)]),
             CharSpan("O", 5, 0.35, 2, 3, 8.0, 16.0, [("5", 0.6), ("S", 0.02)]),
             CharSpan("K", 7, 0.5, 4, 4, 16.0, 20.0, [])]
    assert decoder_choices(chars) == [{"index": 1, "char": "O", "confidence": 0.35, "image_prefers": "5",
                                       "image_probability": 0.6}]
    # with the frames: a character on frames where blank wins was inserted by the decoder ("SOLD" read "SOLID")
    probs = np.zeros((5, 10), np.float32)
    probs[0:2, 3], probs[0:2, 0] = 0.9, 0.1
    probs[2:4, 5], probs[2:4, 0] = 0.35, 0.05
    probs[4, 7], probs[4, 0] = 0.4, 0.6
    inserted = decoder_choices(chars, probs)
    assert [c["index"] for c in inserted] == [1, 2]
    assert inserted[1] == {"index": 2, "char": "K", "confidence": 0.5, "image_prefers": "", "image_probability": 0.6}


def test_an_explanation_lists_decoder_choices(recognizer, latin_font):
    """Every explanation says which characters the decoder chose against their frames (none on a clean line)."""
    from training.synth import render_text

    image = render_text("Receipt total", latin_font, 36).image
    result = explain_line(recognizer, image, methods=["alignment"])
    assert result["decoder_choices"] == []
