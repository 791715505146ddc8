"""A throw-away int8 recogniser for tests: ``crnn.pt`` and its exports copied into a directory
with a dynamic-quantised ``crnn.int8.onnx`` (seconds to make, no calibration; it reads quite
differently from float, which is what the explanation tests need)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ocr.engines import sha256_of
from ocr.settings import WEIGHTS_DIR


def int8_weights_dir(root: Path) -> Path:
    """``root`` holding crnn.pt, crnn.onnx, charset.txt, crnn.int8.onnx and their SHA256SUMS."""
    from training.quantize import quantize

    root.mkdir(parents=True, exist_ok=True)
    for name in ("crnn.pt", "crnn.onnx", "charset.txt"):
        shutil.copy(WEIGHTS_DIR / name, root / name)
    quantize("crnn", "dynamic", root / "crnn.int8.onnx")
    write_sums(root)
    return root


def write_sums(root: Path) -> None:
    names = ("crnn.pt", "crnn.onnx", "crnn.int8.onnx")
    (root / "SHA256SUMS").write_text("".join(f"{sha256_of(root / n)}  {n}\n" for n in names if (root / n).exists()))
