"""Explainable CRNN OCR, the runtime: image in, text with per-character evidence out.

    from ocr import OCRPipeline, Recognizer, load_image
    page = OCRPipeline.load().run("invoice.png")       # whole pages
    line = Recognizer.load().recognize_one("line.png")  # one text line
    Recognizer.load(model="auto")                        # "fast" (default) | "accurate" | "auto" (MODELS)

The data flow, one module or package a stage: ``imageio`` (upload) -> ``preprocess`` ->
``detect`` -> ``recognize`` -> ``decode``; ``pipeline`` orders them, ``service`` is what the
web faces call. This package knows nothing of the web, training or benchmarks.
Names are imported on first use, so ``import ocr.errors`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from ocr.errors import (ImageTooLargeError, InvalidImageError, ModelLoadError, OCRError,
                        UnsupportedImageError)

_LAZY = {"OCRPipeline": "ocr.pipeline", "Recognizer": "ocr.recognize.recognizer", "load_image": "ocr.imageio",
         "OCRService": "ocr.service", "Settings": "ocr.settings", "MODELS": "ocr.recognize.models"}

__all__ = ["OCRPipeline", "Recognizer", "MODELS", "load_image", "OCRService", "Settings", "OCRError", "InvalidImageError",
           "ImageTooLargeError", "UnsupportedImageError", "ModelLoadError"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ocr' has no attribute {name!r}")
