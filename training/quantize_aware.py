"""Quantisation-aware fine-tuning of the fast recogniser: an int8 network that reads like the float one (issue 17).

    OMP_NUM_THREADS=1 python -m training.quantize_aware --out runs/qat [--max-steps 1500] [--val-every 250]
    python -m training.quantize_aware --ship runs/qat/step1000.pt   # -> weights/crnn.int8.onnx + SHA256SUMS

Post-training int8 (``training.quantize``) loses 0.9 (recipe ``static-stem-float``) to 5.8 (the earlier recipe) char
points on held-out-font synthetic lines or IC15 words (``training.quantize_sensitivity``): per-tensor uint8
activations cannot hold both the few large channels and the many small ones. Here a copy of ``crnn.pt`` learns to read *through* that rounding: every tensor onnxruntime
will quantise (inputs and outputs of the dense convolutions, inputs of the three matrix products; ``RECIPE``)
is fake-quantised in the forward pass with the range onnxruntime's calibration would give it, the weights
per channel likewise, and the copy is trained to give the float network's frame posteriors (KL, no labels) on
the training lines of ``../shared/train`` and synthetic lines. Its float weights are then quantised by
onnxruntime with the same recipe; checkpoints are judged on the validation slice and held-out-font synthetic
lines (``training.quantize_sensitivity.reading_sets``), never on the eval sets.

Measured 2026-12-07 (model card, "Int8"): no checkpoint beat plain post-training quantisation of the float weights
(worst set -0.91 at step 0, -1.21 to -1.34 after 250-1,000 steps), so nothing shipped from it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ocr.imageio import load_image
from ocr.recognize.charset import Charset
from ocr.recognize.lineprep import batch_tensor, prepare_line
from ocr.recognize.network import CRNN
from ocr.recognize.recognizer import default_files, load_crnn
from training import quantize as q
from training.real_cache import synthetic_lines
from training.real_data import read_all
from training.train_real import save

#: the onnxruntime recipe the fine-tuned network is made for (``training.quantize.RECIPES``)
RECIPE = "static-stem-float"
#: onnxruntime's percentile calibration keeps this share of |activation| (the recipe's ``CalibPercentile``)
PERCENTILE = 99.99
#: the dense convolutions whose weights and activations stay float in ``RECIPE``: the stem (quantised, its wide
#: range cost IC15 words 4.7 points); depthwise and squeeze-excite convolutions stay float too (``quantised_modules``)
FLOAT_MODULES = ("backbone.stem1", "backbone.stem2")


def quantised_modules(model: CRNN) -> dict[str, nn.Module]:
    """name -> the dense convolutions and linear layers onnxruntime quantises under ``RECIPE``."""
    out: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            if module.groups > 1 or ".se." in name or name in FLOAT_MODULES:
                continue
            out[name] = module
        elif isinstance(module, nn.Linear):
            out[name] = module
    return out


def output_module(model: CRNN, name: str) -> nn.Module | None:
    """Where a quantised conv's output is rounded (after its folded BatchNorm); None: output stays float
    (the matrix products: ``OpTypesToExcludeOutputQuantization``)."""
    if name == "neck.pw":
        return model.neck.bn2
    module = model.get_submodule(name)
    return None if isinstance(module, nn.Linear) else module


def uint8_range(samples: np.ndarray) -> tuple[float, int]:
    """(scale, zero point) of onnxruntime's percentile calibration for one tensor: |x| cut at ``PERCENTILE``,
    clamped to the values seen, the range stretched to include 0."""
    thr = float(np.percentile(np.abs(samples), PERCENTILE))
    lo, hi = min(max(float(samples.min()), -thr), 0.0), max(min(float(samples.max()), thr), 0.0)
    scale = max((hi - lo) / 255.0, 1e-8)
    return scale, int(round(-lo / scale))


def calibrate(model: CRNN, batches: Sequence[torch.Tensor]) -> dict[str, tuple[float, int]]:
    """"in:NAME" / "out:NAME" -> (scale, zero point), from the float model on ``batches``."""
    seen: dict[str, list[np.ndarray]] = {}
    handles = []

    def keep(key: str):
        def hook(_m: nn.Module, args: Any, out: Any = None) -> None:
            t = args[0] if out is None else out
            seen.setdefault(key, []).append(t.detach().reshape(-1).numpy().copy())
        return hook

    try:
        for name, module in quantised_modules(model).items():
            handles.append(module.register_forward_pre_hook(keep(f"in:{name}")))
            out_at = output_module(model, name)
            if out_at is not None:
                handles.append(out_at.register_forward_hook(keep(f"out:{name}")))
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
    return {key: uint8_range(np.concatenate(values)) for key, values in seen.items()}


class _PerChannelInt8(nn.Module):
    """Weight fake-quantised as onnxruntime stores it: int8, symmetric, one scale per output channel."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = (w.detach().abs().reshape(w.shape[0], -1).amax(1) / 127.0).clamp_min(1e-8)
        zero = torch.zeros(w.shape[0], dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -128, 127)


@contextlib.contextmanager
def fake_quantised(model: CRNN, ranges: dict[str, tuple[float, int]]) -> Iterator[CRNN]:
    """``model`` with ``RECIPE``'s rounding in its forward pass (straight-through gradients); every hook and
    weight parametrisation is removed on exit, leaving plain float weights. A module the calibration never ran
    (an inert BiLSTM's projection) is left float."""
    handles, parametrised = [], []

    def round_input(key: str):
        scale, zero = ranges[key]
        return lambda _m, args: (torch.fake_quantize_per_tensor_affine(args[0], scale, zero, 0, 255), *args[1:])

    def round_output(key: str):
        scale, zero = ranges[key]
        return lambda _m, _args, out: torch.fake_quantize_per_tensor_affine(out, scale, zero, 0, 255)

    try:
        for name, module in quantised_modules(model).items():
            if f"in:{name}" not in ranges:
                continue
            handles.append(module.register_forward_pre_hook(round_input(f"in:{name}")))
            out_at = output_module(model, name)
            if out_at is not None:
                handles.append(out_at.register_forward_hook(round_output(f"out:{name}")))
            parametrize.register_parametrization(module, "weight", _PerChannelInt8())
            parametrised.append(module)
        yield model
    finally:
        for h in handles:
            h.remove()
        for module in parametrised:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


def training_images(n_synthetic: int, charset: Charset, seed: int) -> list[np.ndarray]:
    """The training lines of ``../shared/train`` (never the validation slice) and synthetic lines in the
    training fonts: images only, the float network's reading is the target."""
    train, _ = read_all()
    images = [load_image(line.image) for line in train]
    images += [np.asarray(s.image) for s in synthetic_lines(charset, n_synthetic, held_out=False, seed=seed)]
    return images


def batches_of(images: list[np.ndarray], size: int, max_width: int, rng: random.Random) -> Iterator[torch.Tensor]:
    """Endless shuffled batches of similar widths (little padding), each line at most ``max_width`` wide."""
    prepared = sorted((prepare_line(img, max_width=max_width) for img in images), key=lambda p: p.width)
    chunks = [prepared[i:i + size] for i in range(0, len(prepared), size)]
    while True:
        rng.shuffle(chunks)
        for chunk in chunks:
            yield batch_tensor(chunk)


def distillation_loss(student: CRNN, teacher: CRNN, x: torch.Tensor) -> torch.Tensor:
    """KL(float reading || fake-quantised reading), mean over frames."""
    with torch.no_grad():
        target = teacher(x).log_softmax(-1)
    pred = student(x).log_softmax(-1)
    return F.kl_div(pred, target, log_target=True, reduction="none").sum(-1).mean()


def quantised_copy(weights: Path, out: Path, scratch: Path) -> Path:
    """``weights`` (a checkpoint of this run) exported to float ONNX in ``scratch`` and quantised by ``RECIPE``
    into ``out``, which still stands for the shipped ``crnn.onnx`` (``training.quantize.quantize``'s ``source``)."""
    from training.export import export_onnx

    float_onnx = export_onnx(weights, scratch / f"{weights.stem}.float.onnx")
    return q.quantize("crnn", RECIPE, out, source=float_onnx)


def int8_reading(weights: Path, charset: Charset, sets: Any) -> dict[str, float]:
    """``weights`` quantised by ``RECIPE`` (files beside it) and read on ``sets`` (char accuracy %)."""
    from training.quantize_sensitivity import char_accuracy

    int8 = quantised_copy(weights, weights.with_suffix(".int8.onnx"), weights.parent)
    return char_accuracy(int8, charset, sets, list(sets))


def ship(weights: Path) -> Path:
    """``weights`` quantised by ``RECIPE`` into the shipped ``crnn.int8.onnx`` + its ``SHA256SUMS`` line."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = quantised_copy(weights, q.WEIGHTS / q.int8_name("crnn"), Path(tmp))
    q.update_sums([out])
    return out


def train(args: argparse.Namespace) -> dict[str, Any]:
    from training.quantize_sensitivity import reading_sets

    torch.manual_seed(args.seed)
    weights, charset_path = default_files("fast")
    charset = Charset.load(charset_path)
    teacher = load_crnn(weights).eval()
    student = load_crnn(weights).eval()  # eval: the neck's BatchNorm keeps its statistics; no dropout anywhere
    ranges = calibrate(teacher, [torch.from_numpy(b) for b in q.rec_batches(q.calibration_lines())])
    sets = reading_sets(args.synthetic_val, charset)
    report: dict[str, Any] = {"rule": args.rule, "checks": []}
    start = args.out / "step0.pt"
    args.out.mkdir(parents=True, exist_ok=True)
    save(start, student, {"step": 0})
    report["start int8"] = int8_reading(start, charset, sets)
    print(json.dumps({"step": 0, "int8": report["start int8"]}), flush=True)
    images = training_images(args.synthetic, charset, args.seed)
    stream = batches_of(images, args.batch, args.max_width, random.Random(args.seed))
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    started = time.perf_counter()
    for step in range(1, args.max_steps + 1):
        with fake_quantised(student, ranges):
            loss = distillation_loss(student, teacher, next(stream))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
        if step % 50 == 0:
            print(json.dumps({"step": step, "loss": round(float(loss.detach()), 5),
                              "s": round(time.perf_counter() - started)}), flush=True)
        if step % args.val_every == 0:
            path = args.out / f"step{step}.pt"
            save(path, student, {"step": step})
            reading = int8_reading(path, charset, sets)
            report["checks"].append({"step": step, "int8": reading})
            print(json.dumps({"step": step, "int8": reading}), flush=True)
            (args.out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/qat"))
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--max-width", type=int, default=640, help="training lines are squeezed to this width")
    parser.add_argument("--lr", type=float, default=3e-6, help="3e-5 drifted (model card)")
    parser.add_argument("--synthetic", type=int, default=4000, help="synthetic training lines beside the real ones")
    parser.add_argument("--synthetic-val", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rule", default="", help="the shipping rule, fixed before the run (kept in the report)")
    parser.add_argument("--ship", type=Path, help="quantise this checkpoint into weights/ instead of training")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    if args.ship:
        print(json.dumps({"shipped": str(ship(args.ship))}))
    else:
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
