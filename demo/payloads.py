"""The REST API's request options (typed, 422 when wrong) and its answers (JSON, images as base64 PNG)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from demo.http_input import APIError
from ocr.errors import OCRError
from ocr.imageio import encode_png, load_image
from ocr.recognize.models import MODELS
from ocr.service import DEFAULT_METHODS, OCRService, page_payload  # noqa: F401 - page_payload: its home is ocr
from ocr.settings import switch_word


#: the options each route reads (besides the image); any other name is a 422, so a typo is not read as the default
OCR_FIELDS = frozenset({"image_base64", "image_url", "kind", "model", "lm", "preprocess", "fields"})
EXPLAIN_FIELDS = OCR_FIELDS - {"fields"} | {"line", "methods", "char_index", "include_maps", "page"}


def check_known_fields(fields: dict, known: frozenset[str]) -> None:
    """422 ``unknown_field`` for an option the route does not read (``"modle": "accurate"`` was read as auto)."""
    unknown = sorted(str(k) for k in fields if k not in known)
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise APIError(422, "unknown_field", f"unknown field(s) {shown}; this route reads: {', '.join(sorted(known))} "
                       "(the image as multipart field 'image', 'image_base64' or 'image_url')")


def kind_field(fields: dict) -> str:
    """``kind``: \"page\" (detect lines) or \"line\" (the image is one line)."""
    kind = str(fields.get("kind") or "page").lower()
    if kind not in ("page", "line"):
        raise APIError(422, "invalid_field", "kind must be 'page' or 'line'")
    return kind


def model_field(fields: dict) -> str | None:
    """``model``: "fast", "accurate" or "auto" (None when not given: the service's default)."""
    value = fields.get("model")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().lower() not in MODELS:
        raise APIError(422, "invalid_field", f"model must be one of {', '.join(MODELS)}")
    return value.strip().lower()


def lm_field(fields: dict) -> bool | None:
    """``lm``: decode with the character language model (true / false; None when not given: the
    model's default, chosen on the validation slice)."""
    return bool_field(fields, "lm")


def bool_field(fields: dict, name: str) -> bool | None:
    """A yes / no option (JSON boolean or a form word); None when not given. Anything else is 422, so a
    typo such as ``"fields": "ture"`` is not silently read as no."""
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    switch = switch_word(str(value).strip())  # JSON 1 / 0 read as the form words "1" / "0"
    if switch is None:
        raise APIError(422, "invalid_field", f"{name} must be true or false")
    return switch


def int_field(fields: dict, name: str, default: int | None) -> int | None:
    value = fields.get(name, default)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise APIError(422, "invalid_field", f"{name} must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity, -Infinity, 1e400
        raise APIError(422, "invalid_field", f"{name} must be an integer") from None
    if isinstance(value, float) and value != number:
        raise APIError(422, "invalid_field", f"{name} must be an integer")
    return number


def methods_field(fields: dict, known_methods: tuple[str, ...]) -> tuple[str, ...]:
    """``methods``: a list or a comma-separated string of names the explainer knows; ``all`` (alone, or in the
    list) stands for every one, as ``python -m explain --method all`` does."""
    value = fields.get("methods")
    if value is None or value == "":
        return DEFAULT_METHODS
    if isinstance(value, str):
        value = [m.strip() for m in value.split(",") if m.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise APIError(422, "invalid_field", "methods must be a list of method names")
    known = known_methods
    if "all" in value:
        value = [m for m in value if m != "all"] + list(known)
    unknown = [m for m in value if m not in known]
    if unknown:
        raise APIError(422, "invalid_field", f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(dict.fromkeys(value))


def preprocess_field(service: OCRService, fields: dict) -> Any:
    """``preprocess``: an object of ``ocr.preprocess`` settings, or a mode name."""
    options = fields.get("preprocess")
    if options in (None, "", {}):
        return None
    if isinstance(options, str):
        options = {"mode": options}
    if not isinstance(options, dict):
        raise APIError(422, "invalid_field", "preprocess must be an object, e.g. {\"mode\": \"auto\"}")
    try:
        return service.preprocess_config(options)
    except OCRError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise APIError(422, "invalid_field", f"bad preprocess options: {exc}") from None


def png_base64(image: np.ndarray) -> str:
    return base64.b64encode(encode_png(image)).decode("ascii")


def jsonable(value: Any) -> Any:
    """Explanation output -> JSON: image arrays become base64 PNG, other arrays lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8 and (value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (3, 4))) \
                and min(value.shape[:2]) > 1:
            if value.ndim == 3 and value.shape[2] == 4:
                value = load_image(value, max_pixels=None)
            return {"png_base64": png_base64(value), "width": int(value.shape[1]), "height": int(value.shape[0])}
        return jsonable(value.tolist())
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    try:  # pandas DataFrame and the like
        return jsonable(value.to_dict(orient="records"))  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001
        return str(value)


# ---------------------------------------------------------------- OpenAPI request bodies

IMAGE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["image_base64"],
            "properties": {
                "image_base64": {"type": "string", "description": "base64 image (jpg/png/bmp/webp/tiff) or PDF; "
                                 "a PDF or a multi-page TIFF has every page read; max 10 MB; a data: URL "
                                 "prefix is accepted"},
                "image_url": {"type": "string", "description": "an http(s) link to the image instead (only "
                              "when the server runs with OCR_ALLOW_URLS=1; public addresses only)"},
                "kind": {"type": "string", "enum": ["page", "line"], "default": "page"},
                "model": {"type": "string", "enum": list(MODELS), "description": "recogniser (default: the "
                          "server's OCR_MODEL); auto re-reads the unsure lines with the accurate model"},
                "lm": {"type": "boolean", "description": "decode with the character language model (beam search) "
                       "and the English word list; default: per model, as measured on the validation slice"},
                "preprocess": {"type": "object", "description": "e.g. {\"mode\": \"auto\"|\"manual\"|\"off\"}"},
            }}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["image"],
            "properties": {"image": {"type": "string", "format": "binary"},
                           "kind": {"type": "string", "enum": ["page", "line"]},
                           "model": {"type": "string", "enum": list(MODELS)},
                           "lm": {"type": "boolean"},
                           "preprocess": {"type": "string", "description": "a mode: auto, manual or off"}}}},
        **{raw: {"schema": {"type": "string", "format": "binary",
                            "description": "the file itself; options go in the query string, e.g. ?model=fast&lm=false"}}
           for raw in ("image/*", "application/pdf")},
    },
}
EXPLAIN_BODY: dict[str, Any] = json.loads(json.dumps(IMAGE_BODY))
EXPLAIN_BODY["content"]["application/json"]["schema"]["properties"].update({
    "line": {"type": "integer", "default": 0, "description": "index of the detected line (kind=page)"},
    "methods": {"type": "array", "items": {"type": "string"}, "default": list(DEFAULT_METHODS),
                "description": "any of alignment, gradcam, saliency, occlusion, ig (or all)"},
    "char_index": {"type": "integer", "description": "explain this character (0-based) of the line"},
    "page": {"type": "integer", "default": 0, "description": "for a PDF or a multi-page TIFF: the page (0-based) "
             "to explain"},
    "include_maps": {"type": "boolean", "default": False, "description": "also return the raw float maps"},
})
EXPLAIN_BODY["content"]["multipart/form-data"]["schema"]["properties"].update({
    "line": {"type": "integer"}, "methods": {"type": "string", "description": "comma-separated, or all"},
    "char_index": {"type": "integer"}, "page": {"type": "integer"}, "include_maps": {"type": "boolean"}})

#: the error answer every failure gets, and when (README, "REST API")
ERROR_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "success": {"type": "boolean", "enum": [False]},
    "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}
_ERRORS = {
    400: "bad JSON, multipart or base64; not an image; a decompression bomb; pdf_invalid / tiff_invalid; "
         "invalid_page / invalid_line; bad_explain_request; url_disabled",
    403: "url_not_allowed (an image_url to a private address or a host not allowed)",
    413: "over the 10 MB limit; pdf_too_many_pages / tiff_too_many_pages; url_too_large",
    415: "a type that is not read (PSD, SVG, ...), or a body of another content type; pdf_encrypted; url_not_image",
    422: "a missing field, two images (conflicting_fields), a bad option (invalid_field), a field the route does not read (unknown_field); no_text (explain)",
    503: "busy: the expected wait is too long (Retry-After says how long)",
    504: "timeout (OCR_API_TIMEOUT); pdf_timeout; url_timeout",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, what in _ERRORS.items()}

#: ``/api/v1/ocr`` only (added after the explain body was copied from it)
FIELDS_OPTION: dict[str, Any] = {
    "type": "boolean", "default": False,
    "description": "also return \"fields\": the key fields (receipts: company, date, address, total; Chinese VAT "
                   "invoices: 发票代码, 发票号码, 开票日期, parties, 金额, 税额, 价税合计), each with value, "
                   "confidence, low_confidence, lines, boxes and explanation (ocr.fields.FieldSet.to_dict)"}
for _content in IMAGE_BODY["content"].values():
    if "properties" in _content["schema"]:  # JSON and form fields; a raw body's options are query parameters
        _content["schema"]["properties"]["fields"] = FIELDS_OPTION
