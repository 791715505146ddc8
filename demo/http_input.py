"""What an HTTP request may carry, checked before anything is decoded, and HTTP's own errors.

Input is checked in this order, and nothing is decoded before the size check:
body size (413) -> JSON / multipart syntax (400; 415 for a non-JSON body of another content type)
-> missing image, two images, or both an image and ``image_url`` (422) -> base64 (400) -> decoded
size (413) -> file signature (415 for a known non-allowed type such as PSD, 400 for bytes that are
no image at all; PDF is accepted, and a TIFF of several pages is a document like it) -> decode (400,
including decompression bombs, which are refused from the header's declared size).
``image_url`` is fetched later, inside a worker slot, by ``OCRService.fetch_url``: only when
``OCR_ALLOW_URLS`` is on (else 400 ``url_disabled``, nothing looked up) and only from public
addresses (``ocr/url_fetch.py``); its bytes then pass :func:`check_image_bytes` like an upload.
HTTP error types live here, in ``demo/``, and nowhere in ``ocr/``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ocr.errors import ModelLoadError, OCRError, UnsupportedImageError, UrlDisabledError
from ocr.imageio import SNIFF_ALLOWED_TYPES, sniff_image_type
from ocr.service import ExplainUnavailableError, NoTextLineError

#: per image, checked on the encoded bytes before anything is decoded
MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: JSON / multipart fields besides the image (options) never need more than this
_BODY_OVERHEAD = 256 * 1024
ALLOWED_TYPES = SNIFF_ALLOWED_TYPES


class APIError(Exception):
    """An answer other than 200: status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message}}


_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONAnswer(JSONResponse):
    """Every REST answer: JSON whose encoding cannot fail. A lone surrogate (``"\\ud800"`` is a valid JSON
    escape but not UTF-8) that a message repeats from the request becomes U+FFFD, not a plain-text 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def too_large(max_bytes: int, size: int | None = None) -> APIError:
    """413 stating the documented image limit (10 MB), whichever check caught it: the body, a multipart
    part, the base64 text or the bytes (the body's own limit adds room for base64 and the other fields)."""
    size_text = f"{size / 2**20:.1f} MB, " if size is not None else ""
    return APIError(413, "payload_too_large", f"the image is {size_text}over the {max_bytes / 2**20:g} MB limit")


#: refusals answered with something other than their base class's status (by stable code)
STATUS_BY_CODE = {"url_not_allowed": 403, "url_too_large": 413, "url_not_image": 415, "url_timeout": 504,
                  "pdf_too_large": 413, "pdf_too_many_pages": 413, "pdf_timeout": 504,
                  "tiff_too_many_pages": 413}


def ocr_error_to_api(exc: OCRError) -> APIError:
    """The HTTP answer for a refusal of the service (an :class:`OCRError`)."""
    if exc.code in STATUS_BY_CODE:
        return APIError(STATUS_BY_CODE[exc.code], exc.code, exc.message)
    if isinstance(exc, UrlDisabledError):  # as before URLs could be fetched: the request asks for what is off
        return APIError(400, exc.code, exc.message)
    if isinstance(exc, ModelLoadError):
        return APIError(503, exc.code, exc.message)
    if isinstance(exc, UnsupportedImageError):
        return APIError(415, exc.code, exc.message)
    if isinstance(exc, ExplainUnavailableError):
        return APIError(501, exc.code, exc.message)
    if isinstance(exc, NoTextLineError):  # a valid image with nothing to explain: not invalid_image
        return APIError(422, "no_text", exc.message)
    # ImageTooLargeError from decoding is a decompression bomb / too many pixels: the bytes
    # themselves were within the limit (that case is 413, answered before decoding).
    # url_fetch_failed (the link answered 404, refused the connection, ...) is the request's link: 400.
    return APIError(400, exc.code, exc.message)


def check_image_bytes(data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> str:
    """Refuse empty / too large / wrong-type bytes without decoding them; return the type."""
    if not data:
        raise APIError(400, "invalid_image", "the image is empty")
    if len(data) > max_bytes:
        raise too_large(max_bytes, len(data))
    kind, allowed = sniff_image_type(data)
    if kind == "pdf":
        return kind  # every page is read (ocr/pdf.py: page, size and time limits)
    if kind is not None and not allowed:
        raise APIError(415, "unsupported_media_type",
                       f"{kind} is not supported; send one of: jpg, png, bmp, webp, tiff, gif, pdf")
    if kind is None:
        raise APIError(400, "invalid_image", "the data is not an image (allowed: jpg, png, bmp, webp, tiff, gif, pdf)")
    return kind


_DATA_URL = re.compile(r"^\s*data:([\w.+/-]*)((?:;[\w=.+-]+)*)?,", re.IGNORECASE)
_B64_CHARS = re.compile(rb"^[A-Za-z0-9+/_-]*={0,2}$")


def decode_base64_image(value: Any, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """``image_base64`` -> bytes; the decoded size is estimated and refused before decoding."""
    if not isinstance(value, str):
        raise APIError(400, "invalid_base64", "image_base64 must be a string")
    m = _DATA_URL.match(value)
    if m:
        if ";base64" not in (m.group(2) or "").lower():
            raise APIError(400, "invalid_base64", "only base64 data URLs are supported (data:image/...;base64,...)")
        value = value[m.end():]
    compact = "".join(value.split()).encode("ascii", "replace")
    if not compact:
        raise APIError(400, "invalid_image", "image_base64 is empty")
    if len(compact.rstrip(b"=")) * 3 // 4 > max_bytes:
        raise too_large(max_bytes, len(compact.rstrip(b"=")) * 3 // 4)
    if not _B64_CHARS.match(compact):
        raise APIError(400, "invalid_base64", "image_base64 is not valid base64")
    compact = compact.rstrip(b"=")
    compact += b"=" * (-len(compact) % 4)
    try:
        if b"-" in compact or b"_" in compact:
            data = base64.urlsafe_b64decode(compact)
        else:
            data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, "invalid_base64", "image_base64 is not valid base64") from None
    return data


@dataclass
class ParsedRequest:
    image: bytes
    fields: dict[str, Any]
    size: int  # bytes of the request body
    url: str | None = None  # image_url, to be fetched in the worker (then ``image`` is empty)


async def _read_body(request: Request, limit: int, max_bytes: int) -> bytes:
    """The body, refused past ``limit`` bytes (the image's ``max_bytes`` plus room for its encoding)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(max_bytes)
        except ValueError:
            raise APIError(400, "invalid_request", "bad Content-Length header") from None
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(text: bytes | str, what: str) -> Any:
    """``json.loads``; JSON the parser refuses although it is well formed (nested deeper than its recursion,
    an integer over Python's 4300-digit limit) is a 400 like any bad JSON, never a 500."""
    try:
        return json.loads(text)
    except RecursionError:
        raise APIError(400, "invalid_json", f"{what} is nested too deeply") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise APIError(400, "invalid_json", f"{what} is not valid JSON") from None
    except ValueError:  # int() past sys.get_int_max_str_digits()
        raise APIError(400, "invalid_json", f"{what} holds a number with too many digits") from None


def _image_url(fields: dict[str, Any], has_image: bool) -> str | None:
    """``image_url`` (fetched later, in the worker), or ``None``; never together with an image."""
    url = fields.pop("image_url", None)
    if url in (None, ""):
        return None
    if has_image:
        raise APIError(422, "conflicting_fields", "send the image or image_url, not both")
    return url


def _refuse_repeated(fields: dict[str, Any], key: str) -> None:
    """422 for an option given twice (``?kind=line&kind=page`` was read as the last one, silently)."""
    if key in fields:
        raise APIError(422, "invalid_field", f"field {key[:40]!r} is given more than once; give it once")


async def parse_image_request(request: Request, max_bytes: int) -> ParsedRequest:
    """The image bytes (checked: size, type) and the other fields of a JSON, multipart or raw body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        body = await _read_body(request, max_bytes + _BODY_OVERHEAD, max_bytes)

        async def replay() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=4, max_fields=64)
        except Exception as exc:  # noqa: BLE001 - malformed multipart fails in many ways
            raise APIError(400, "invalid_multipart", f"the multipart body could not be parsed ({exc})") from None
        fields: dict[str, Any] = {}
        uploads = []
        for key, value in form.multi_items():
            if hasattr(value, "read"):  # UploadFile
                if key == "image":
                    uploads.append(value)
                continue
            _refuse_repeated(fields, key)
            fields[key] = value
        if len(uploads) + bool(fields.get("image_base64")) > 1:
            raise APIError(422, "conflicting_fields",
                           "send exactly one image (one multipart field 'image', or 'image_base64')")
        upload = uploads[0] if uploads else None
        url = _image_url(fields, upload is not None or bool(fields.get("image_base64")))
        if url is not None:
            return ParsedRequest(b"", fields, len(body), url)
        if upload is not None:
            if upload.size is not None and upload.size > max_bytes:
                raise too_large(max_bytes, upload.size)
            data = await upload.read()
        elif fields.get("image_base64"):
            data = decode_base64_image(fields["image_base64"], max_bytes)
        else:
            raise APIError(422, "missing_field", "send the image as multipart field 'image' (or 'image_base64')")
        for name in ("preprocess", "methods"):
            if isinstance(fields.get(name), str) and fields[name].strip().startswith(("{", "[")):
                fields[name] = _parse_json(fields[name], f"field {name}")
        check_image_bytes(data, max_bytes)
        return ParsedRequest(data, fields, len(body))

    if ctype.startswith("image/") or ctype in ("application/octet-stream", "application/pdf"):
        body = await _read_body(request, max_bytes, max_bytes)
        check_image_bytes(body, max_bytes)
        options: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            _refuse_repeated(options, key)
            options[key] = value
        return ParsedRequest(body, options, len(body))

    # JSON (also when the client sent no or another content type, e.g. text/plain: try to read it as JSON)
    body = await _read_body(request, (max_bytes + 2) // 3 * 4 + _BODY_OVERHEAD, max_bytes)
    if not body.strip():
        raise APIError(400, "invalid_json", "the request body is empty; send JSON {\"image_base64\": ...}")
    try:
        payload = _parse_json(body, "the request body")
    except APIError:
        if ctype and ctype != "application/json":  # not JSON after all: say what is read
            raise APIError(415, "unsupported_media_type",
                           f"content type {ctype} is not supported; send application/json, multipart/form-data, "
                           "or the file itself as image/* or application/pdf") from None
        raise
    if not isinstance(payload, dict):
        raise APIError(400, "invalid_json", "the request body must be a JSON object")
    url = _image_url(payload, payload.get("image_base64") is not None)
    if url is not None:
        return ParsedRequest(b"", payload, len(body), url)
    if "image_base64" not in payload or payload["image_base64"] is None:
        raise APIError(422, "missing_field",
                       "missing field image_base64 (or image_url, or send multipart field 'image')")
    data = decode_base64_image(payload["image_base64"], max_bytes)
    check_image_bytes(data, max_bytes)
    fields = {k: v for k, v in payload.items() if k != "image_base64"}
    return ParsedRequest(data, fields, len(body))

