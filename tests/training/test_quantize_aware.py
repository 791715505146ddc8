"""Quantisation-aware fine-tuning (``training.quantize_aware``): the rounding is in the forward pass while the
context is open, gradients pass through it, and nothing of it stays behind."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
import torch

from ocr.engines import QUANTIZATION_KEY, QUANTIZED_FROM_KEY, SOURCE_KEY, sha256_of
from ocr.recognize.network import CRNN, CRNNConfig
from ocr.settings import WEIGHTS_DIR
from training import quantize as q
from training import quantize_aware as qa


def live_crnn() -> CRNN:
    """A small CRNN with a live BiLSTM, as shipped (an inert one is skipped at inference)."""
    net = CRNN(CRNNConfig(num_classes=40)).eval()
    torch.nn.init.normal_(net.context_proj.weight, std=0.05)
    return net


@pytest.fixture(scope="module")
def model() -> CRNN:
    torch.manual_seed(0)
    return live_crnn()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 48, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1


def hook_count(net: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


def test_quantised_modules_follow_the_recipe(model: CRNN) -> None:
    names = set(qa.quantised_modules(model))
    assert {"backbone.blocks.0.ffn_in", "neck.pw", "classifier", "feature_proj", "context_proj"} <= names
    # the recipe's float layers: stem, depthwise, squeeze-excite
    assert not names & {"backbone.stem1", "backbone.stem2", "backbone.blocks.0.dw", "neck.dw"}
    assert not any(".se." in n for n in names)
    assert qa.output_module(model, "classifier") is None and qa.output_module(model, "neck.pw") is model.neck.bn2


def test_uint8_range_cuts_outliers_and_keeps_zero() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0.5, 2.0, 100_000), [500.0]]).astype(np.float32)
    scale, zero = qa.uint8_range(x)
    assert zero == 0  # no negative values: the whole range above zero
    assert 2.0 / 255 * 0.99 < scale < 2.0 / 255 * 1.01  # the one outlier is cut, not stretched to
    signed = np.concatenate([x, -x[:10]])
    s2, z2 = qa.uint8_range(signed)
    assert 0 < z2 < 255 and s2 > 0


def test_rounding_only_inside_the_context(model: CRNN, images: torch.Tensor) -> None:
    ranges = qa.calibrate(model, [images])
    assert set(ranges) == {f"in:{n}" for n in qa.quantised_modules(model)} | {
        f"out:{n}" for n in qa.quantised_modules(model) if qa.output_module(model, n) is not None}
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        plain = model(images)
        with qa.fake_quantised(model, ranges):
            rounded = model(images)
        after = model(images)
    assert not torch.equal(plain, rounded)
    assert torch.equal(plain, after)
    assert hook_count(model) == 0
    state = model.state_dict()
    assert state.keys() == before_state.keys() and all(torch.equal(state[k], before_state[k]) for k in state)


def test_hooks_removed_when_the_body_raises(model: CRNN, images: torch.Tensor) -> None:
    ranges = qa.calibrate(model, [images])
    with pytest.raises(RuntimeError):
        with qa.fake_quantised(model, ranges):
            raise RuntimeError("boom")
    assert hook_count(model) == 0 and not any(hasattr(m, "parametrizations") for m in model.modules())


def test_gradients_pass_the_rounding(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    student, teacher = live_crnn(), live_crnn()
    ranges = qa.calibrate(teacher, [images])
    with qa.fake_quantised(student, ranges):
        loss = qa.distillation_loss(student, teacher, images)
        loss.backward()
    assert float(loss) > 0
    grads = [m.weight.grad for m in qa.quantised_modules(student).values()]
    assert all(g is not None and bool(g.abs().sum() > 0) for g in grads)


def test_fine_tuned_int8_file_stands_for_the_shipped_export(tmp_path) -> None:
    """An int8 file quantised from fine-tuned weights keeps the shipped export's identity (the runtime's
    staleness check) and records which export it really came from."""
    source = tmp_path / "tuned.onnx"
    shutil.copy(WEIGHTS_DIR / "crnn.onnx", source)
    out = q.quantize("crnn", "dynamic", tmp_path / "crnn.int8.onnx", source=source)
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    shipped = {p.key: p.value for p in onnx.load(str(WEIGHTS_DIR / "crnn.onnx"), load_external_data=False).metadata_props}
    assert meta[QUANTIZED_FROM_KEY] == sha256_of(WEIGHTS_DIR / "crnn.onnx")
    assert meta[SOURCE_KEY] == shipped[SOURCE_KEY] and meta[QUANTIZATION_KEY] == "dynamic"
    assert meta[q.FINE_TUNED_KEY] == sha256_of(source)
