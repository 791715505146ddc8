"""Export the CRNN to ONNX for the onnxruntime inference engine.

    python -m training.export [--weights weights/crnn.pt] [--out weights/crnn.onnx]
    python -m training.export --weights weights/crnn_accurate.pt --out weights/crnn_accurate.onnx

The legacy TorchScript-based exporter (``dynamo=False``) handles the BiLSTM
with a dynamic batch and width. The graph ends in a softmax, so both engines
hand the decoder the same probabilities. Explanations always use the torch
model; this file only serves recognition.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ocr.engines import SOURCE_KEY, sha256_of
from ocr.recognize.recognizer import DEFAULT_WEIGHTS, load_crnn

log = logging.getLogger(__name__)

DEFAULT_ONNX = DEFAULT_WEIGHTS.with_suffix(".onnx")


class WithSoftmax(nn.Module):
    """The network with a softmax on top: both engines hand the decoder the same probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).softmax(-1)


def export_onnx(weights: Path, out: Path, opset: int = 17) -> Path:
    """``weights`` exported with their SHA-256 in the metadata. Not checked against ``SHA256SUMS``:
    exporting is a step of making weights (``make weights`` rewrites the checksums last)."""
    from ocr.recognize.network_accurate import PADDLE_PAD_WIDTH, AccurateCRNN

    model = load_crnn(weights, verify=False)
    trace_width = PADDLE_PAD_WIDTH if isinstance(model, AccurateCRNN) else 160  # each model's minimum batch width
    return export_tagged(WithSoftmax(model).eval(), weights, out, trace_width, opset)


def export_tagged(model: nn.Module, weights: Path, out: Path, trace_width: int, opset: int = 17) -> Path:
    """``model`` (ending in a softmax) exported with the legacy exporter (dynamic batch and width),
    tagged with ``weights``' SHA-256 under ``SOURCE_KEY``: the one export path of every recogniser."""
    import onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (torch.zeros(2, 3, 48, trace_width),), str(out), input_names=["x"],
                      output_names=["probs"],
                      dynamic_axes={"x": {0: "batch", 3: "width"}, "probs": {0: "batch", 1: "steps"}},
                      opset_version=opset, dynamo=False)
    graph = onnx.load(str(out))
    entry = graph.metadata_props.add()
    entry.key, entry.value = SOURCE_KEY, sha256_of(weights)
    onnx.save(graph, str(out))
    return out


def check_parity(weights: Path, onnx_path: Path, widths: tuple[int, ...] = (64, 320)) -> float:
    """Largest absolute probability difference between torch and onnxruntime."""
    import onnxruntime as ort

    model = WithSoftmax(load_crnn(weights, verify=False)).eval()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for width in widths:
        x = np.random.default_rng(width).uniform(-1, 1, (3, 3, 48, width)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        got = session.run(None, {"x": x})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--out", type=Path, default=DEFAULT_ONNX)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = export_onnx(args.weights, args.out)
    log.info("wrote %s; max |torch - onnxruntime| = %.2e", path, check_parity(args.weights, path))


if __name__ == "__main__":
    main()
