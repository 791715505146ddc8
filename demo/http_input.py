"""What an HTTP request may carry, checked before anything is decoded, and HTTP's own errors.

Input is checked in this order, and nothing is decoded before the size check:
body size (413) -> JSON / multipart syntax (400) -> ``image_url`` refused (400: nothing is
ever fetched, so no SSRF) -> missing image (422) -> base64 (400) -> decoded size (413) ->
file signature (415 for a known non-allowed type such as GIF or PDF, 400 for bytes that are
no image at all) -> decode (400, including decompression bombs, which are refused from the
header's declared size). HTTP error types live here, in ``demo/``, and nowhere in ``ocr/``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from fastapi import Request

from ocr.errors import ModelLoadError, OCRError, UnsupportedImageError
from ocr.service import ExplainUnavailableError

#: per image, checked on the encoded bytes before anything is decoded
MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: JSON / multipart fields besides the image (options) never need more than this
_BODY_OVERHEAD = 256 * 1024
ALLOWED_TYPES = ("jpeg", "png", "bmp", "webp", "tiff")


class APIError(Exception):
    """An answer other than 200: status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message}}


def ocr_error_to_api(exc: OCRError) -> APIError:
    """The HTTP answer for a refusal of the service (an :class:`OCRError`)."""
    if isinstance(exc, ModelLoadError):
        return APIError(503, exc.code, exc.message)
    if isinstance(exc, UnsupportedImageError):
        return APIError(415, exc.code, exc.message)
    if isinstance(exc, ExplainUnavailableError):
        return APIError(501, exc.code, exc.message)
    # ImageTooLargeError from decoding is a decompression bomb / too many pixels: the bytes
    # themselves were within the limit (that case is 413, answered before decoding).
    return APIError(400, exc.code, exc.message)


# ---------------------------------------------------------------- byte sniffing

_ALLOWED_SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    ("png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    ("bmp", lambda b: b.startswith(b"BM") and len(b) >= 26),
    ("webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("tiff", lambda b: b[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
)

_OTHER_SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("gif", lambda b: b[:6] in (b"GIF87a", b"GIF89a")),
    ("pdf", lambda b: b.lstrip()[:5] == b"%PDF-"),
    ("svg", lambda b: b.lstrip()[:5].lower() in (b"<?xml", b"<svg ", b"<svg>")),
    ("ico", lambda b: b[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")),
    ("jpeg2000", lambda b: b[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or b[:4] == b"\xff\x4f\xff\x51"),
    ("heif/avif", lambda b: b[4:8] == b"ftyp" and b[8:12] in (b"heic", b"heix", b"avif", b"mif1", b"msf1", b"hevc")),
    ("psd", lambda b: b[:4] == b"8BPS"),
    ("eps/postscript", lambda b: b[:4] in (b"%!PS", b"\xc5\xd0\xd3\xc6")),
    ("ppm/pgm/pbm", lambda b: len(b) > 2 and b[:1] == b"P" and b[1:2] in b"123456" and b[2:3] in b" \t\r\n"),
    ("zip", lambda b: b[:4] == b"PK\x03\x04"),
    ("jxl", lambda b: b[:2] == b"\xff\x0a" or b[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n"),
    ("mp4/video", lambda b: b[4:8] == b"ftyp"),
)


def sniff_image_type(data: bytes) -> tuple[str | None, bool]:
    """(detected type, allowed?) from the first bytes. ``(None, False)``: not an image we know."""
    head = data[:64]
    for name, test in _ALLOWED_SIGNATURES:
        if test(head):
            return name, True
    for name, test in _OTHER_SIGNATURES:
        if test(head):
            return name, False
    return None, False


def check_image_bytes(data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> str:
    """Refuse empty / too large / wrong-type bytes without decoding them; return the type."""
    if not data:
        raise APIError(400, "invalid_image", "the image is empty")
    if len(data) > max_bytes:
        raise APIError(413, "payload_too_large",
                       f"the image is {len(data) / 2**20:.1f} MB, over the {max_bytes / 2**20:g} MB limit")
    kind, allowed = sniff_image_type(data)
    if kind is not None and not allowed:
        raise APIError(415, "unsupported_media_type",
                       f"{kind} is not supported; send one of: jpg, png, bmp, webp, tiff")
    if kind is None:
        raise APIError(400, "invalid_image", "the data is not an image (allowed: jpg, png, bmp, webp, tiff)")
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
        raise APIError(413, "payload_too_large",
                       f"the image is over the {max_bytes / 2**20:g} MB limit (base64 of "
                       f"{len(compact) * 3 / 4 / 2**20:.1f} MB)")
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


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise APIError(413, "payload_too_large", f"the request is over the {limit / 2**20:.1f} MB limit")
        except ValueError:
            raise APIError(400, "invalid_request", "bad Content-Length header") from None
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise APIError(413, "payload_too_large", f"the request is over the {limit / 2**20:.1f} MB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_url(fields: dict[str, Any]) -> None:
    if fields.get("image_url") not in (None, ""):
        raise APIError(400, "image_url_not_supported",
                       "image_url is not supported; send image_base64 or multipart image")


async def parse_image_request(request: Request, max_bytes: int) -> ParsedRequest:
    """The image bytes (checked: size, type) and the other fields of a JSON, multipart or raw body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        body = await _read_body(request, max_bytes + _BODY_OVERHEAD)

        async def replay() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=4, max_fields=64)
        except Exception as exc:  # noqa: BLE001 - malformed multipart fails in many ways
            raise APIError(400, "invalid_multipart", f"the multipart body could not be parsed ({exc})") from None
        fields: dict[str, Any] = {}
        upload = None
        for key, value in form.multi_items():
            if hasattr(value, "read"):  # UploadFile
                if key == "image":
                    upload = value
                continue
            fields[key] = value
        _refuse_url(fields)
        if upload is not None:
            if upload.size is not None and upload.size > max_bytes:
                raise APIError(413, "payload_too_large", f"the image is over the {max_bytes / 2**20:g} MB limit")
            data = await upload.read()
        elif fields.get("image_base64"):
            data = decode_base64_image(fields["image_base64"], max_bytes)
        else:
            raise APIError(422, "missing_field", "send the image as multipart field 'image' (or 'image_base64')")
        for name in ("preprocess", "methods"):
            if isinstance(fields.get(name), str) and fields[name].strip().startswith(("{", "[")):
                try:
                    fields[name] = json.loads(fields[name])
                except json.JSONDecodeError:
                    raise APIError(400, "invalid_json", f"field {name} is not valid JSON") from None
        check_image_bytes(data, max_bytes)
        return ParsedRequest(data, fields, len(body))

    if ctype.startswith("image/") or ctype == "application/octet-stream":
        body = await _read_body(request, max_bytes)
        check_image_bytes(body, max_bytes)
        return ParsedRequest(body, dict(request.query_params), len(body))

    # JSON (also when the client sent no or a wrong content type: try to read it as JSON)
    body = await _read_body(request, (max_bytes + 2) // 3 * 4 + _BODY_OVERHEAD)
    if not body.strip():
        raise APIError(400, "invalid_json", "the request body is empty; send JSON {\"image_base64\": ...}")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        if ctype and ctype not in ("application/json", "text/plain"):
            raise APIError(415, "unsupported_media_type",
                           f"content type {ctype} is not supported; send application/json or multipart/form-data") from None
        raise APIError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise APIError(400, "invalid_json", "the request body must be a JSON object")
    _refuse_url(payload)
    if "image_base64" not in payload or payload["image_base64"] is None:
        raise APIError(422, "missing_field", "missing field image_base64 (or send multipart field 'image')")
    data = decode_base64_image(payload["image_base64"], max_bytes)
    check_image_bytes(data, max_bytes)
    fields = {k: v for k, v in payload.items() if k != "image_base64"}
    return ParsedRequest(data, fields, len(body))

