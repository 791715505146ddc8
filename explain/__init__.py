"""Why the recogniser read a line the way it did: explanation methods behind one registry.

    import explain
    out = explain.explain_line(recognizer, line_image, methods=("gradcam", "alignment"))
    explain.METHODS                      # every method a request may name (``explain.registry``)

Builds on ``ocr`` (never the other way round) and knows nothing of the web faces. This
package is what ``ocr.service.OCRService`` takes as its ``explainer``. Names are imported on
first use: ``import explain`` costs nothing, so the app can wire it in before torch is needed.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"METHODS": "explain.registry", "REGISTRY": "explain.registry", "ExplainRequestError": "explain.registry",
         "explain_line": "explain.registry", "resolve_methods": "explain.registry",
         "attribute_errors": "explain.errors", "attribute_preprocessing": "explain.preprocess_attribution",
         "count_hooks": "explain.hooks"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'explain' has no attribute {name!r}")
