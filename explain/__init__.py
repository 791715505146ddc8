"""Why the recogniser read a line the way it did: explanation methods behind one registry.

    import explain
    out = explain.explain_line(recognizer, line_image, methods=("gradcam", "alignment"))
    explain.METHODS                      # every method a request may name (``explain.registry``)

Builds on ``ocr`` (never the other way round) and knows nothing of the web faces. This
package is what ``ocr.service.OCRService`` takes as its ``explainer``.
"""

from __future__ import annotations

from explain.errors import attribute_errors
from explain.hooks import count_hooks
from explain.preprocess_attribution import attribute_preprocessing
from explain.registry import METHODS, REGISTRY, ExplainRequestError, explain_line, resolve_methods

__all__ = ["METHODS", "REGISTRY", "ExplainRequestError", "attribute_errors", "attribute_preprocessing",
           "count_hooks", "explain_line", "resolve_methods"]
