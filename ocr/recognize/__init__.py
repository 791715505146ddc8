"""Line recognition: a text-line image -> characters, each with its confidence and image range.

``charset`` (the vocabulary), ``lineprep`` (line image -> model input, the input geometry),
``network`` (the torch CRNN), ``recognizer`` (batched inference on onnxruntime or torch).
Names are imported on first use: ``ocr.decode`` needs the charset, and the recogniser needs
``ocr.decode``.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"BLANK": "ocr.recognize.charset", "Charset": "ocr.recognize.charset",
         "DEFAULT_CHARSET": "ocr.recognize.recognizer", "DEFAULT_WEIGHTS": "ocr.recognize.recognizer",
         "Recognizer": "ocr.recognize.recognizer", "is_blank": "ocr.recognize.recognizer",
         "load_crnn": "ocr.recognize.recognizer"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ocr.recognize' has no attribute {name!r}")
