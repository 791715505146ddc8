"""The one way this project opens an onnxruntime session (recogniser and detector alike)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cpu_session(path: Path, threads: int | None = None) -> Any:
    """A CPU ``InferenceSession`` with ``threads`` intra-op threads that never spin-wait.

    onnxruntime's workers spin after each run by default. A page alternates the detector,
    the recogniser and OpenCV, and this machine's second core is often someone else's: spinning
    threads took the cores the next step needed (paired on 30 busy-machine MTWI pages at 2
    threads, RapidOCR / pipeline time went from 1.8x to 2.7x without it; recogniser calls at 2
    threads beside another process: 6.2-6.5 ms at 0.75 cores instead of 4.1-9.7 ms at 1.0-1.4).
    The memory arena stays on (see ``ocr.detect.OnnxDetEngine`` for that measured trade).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
