"""Line recognition: a text-line image -> characters, each with its confidence and image range.

``charset`` (the vocabulary), ``lineprep`` (line image -> model input, the input geometry),
``network`` / ``network_accurate`` (the fast and the accurate torch CRNN), ``models`` (the choice:
fast, accurate, auto), ``recognizer`` (batched inference on onnxruntime or torch), ``cascade`` (auto:
fast, then the unsure lines accurately), ``choice`` (the recognisers of a process, by name).
Names are imported on first use: ``ocr.decode`` needs the charset, and the recogniser needs
``ocr.decode``.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"BLANK": "ocr.recognize.charset", "Charset": "ocr.recognize.charset",
         "DEFAULT_CHARSET": "ocr.recognize.recognizer", "DEFAULT_WEIGHTS": "ocr.recognize.recognizer",
         "Recognizer": "ocr.recognize.recognizer", "is_blank": "ocr.recognize.recognizer",
         "load_crnn": "ocr.recognize.recognizer", "CascadeRecognizer": "ocr.recognize.cascade",
         "MODELS": "ocr.recognize.models", "Recognizers": "ocr.recognize.choice"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ocr.recognize' has no attribute {name!r}")
