"""The REST API: a FastAPI app factory, and the one service object the API and the demo share.

    service = OCRService.load()            # model loaded once
    app = create_api(service)              # FastAPI: /api/v1/ocr, /api/v1/explain, /api/v1/health, /docs
    uvicorn.run(app)

Routes (all answers JSON; errors are ``{"success": false, "error": {"code", "message"}}``):

* ``POST /api/v1/ocr``: JSON ``{"image_base64": "..."}`` (a ``data:`` URL prefix is
  tolerated), or multipart with the file in field ``image``, or a raw image body
  (``Content-Type: image/...``). Optional: ``"kind": "page"|"line"`` (``line`` reads the
  whole image as one text line, no detection) and ``"preprocess": {...}`` (see
  ``ocr.preprocess.config_from_dict``).
* ``POST /api/v1/explain``: the same image fields plus ``"line"`` (index of a detected
  line of the page, default 0) or ``"kind": "line"``, ``"methods"`` and ``"char_index"``.
  Images come back as base64 PNG.
* ``GET /api/v1/health``: also ``in_flight`` (admitted requests) and ``model_hooks`` (hooks on
  the shared model: 0 unless an explanation is running), for load and soak checks.

Input is checked in this order, and nothing is decoded before the size check:
body size (413) -> JSON / multipart syntax (400) -> ``image_url`` refused (400: nothing is
ever fetched, so no SSRF) -> missing image (422) -> base64 (400) -> decoded size (413) ->
file signature (415 for a known non-allowed type such as GIF or PDF, 400 for bytes that are
no image at all) -> decode (400, including decompression bombs, which are refused from the
header's declared size).

Model work runs in the thread pool behind a bounded semaphore; when every worker is busy and
the short wait queue is full, the answer is 503 ``busy`` instead of a hanging request; an
admitted request that runs past ``OCR_API_TIMEOUT`` seconds (120) is answered 504 ``timeout``.

This module must never import gradio: the demo builds on it, not the other way round.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ocr.errors import InvalidImageError, ModelLoadError, OCRError, UnsupportedImageError
from ocr.imageio import MAX_PIXELS, encode_png, load_image

log = logging.getLogger("ocr.api")

API_VERSION = "v1"
#: per image, checked on the encoded bytes before anything is decoded
MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: JSON / multipart fields besides the image (options) never need more than this
_BODY_OVERHEAD = 256 * 1024
ALLOWED_TYPES = ("jpeg", "png", "bmp", "webp", "tiff")
DEFAULT_METHODS = ("gradcam", "alignment")
ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = ROOT / "weights"


# ---------------------------------------------------------------- errors


class APIError(Exception):
    """An answer other than 200: status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message}}


def ocr_error_to_api(exc: OCRError) -> APIError:
    if isinstance(exc, ModelLoadError):
        return APIError(503, exc.code, exc.message)
    if isinstance(exc, UnsupportedImageError):
        return APIError(415, exc.code, exc.message)
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


# ---------------------------------------------------------------- the shared service


def file_sha256(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


@dataclass
class LineView:
    """One line ready to be explained: the crop the recogniser read, and where it came from."""

    index: int
    crop: np.ndarray
    text: str
    confidence: float


class OCRService:
    """The model, loaded once, and what the API and the demo do with it. Thread-safe."""

    def __init__(self, pipeline: Any, *, weights_sha256: str | None = None) -> None:
        self.pipeline = pipeline
        self.recognizer = pipeline.recognizer
        self.weights_sha256 = weights_sha256
        self.loaded_at = time.time()

    @classmethod
    def load(cls, *, threads: int | None = None) -> "OCRService":
        """Load the recogniser and the detector; a :class:`ModelLoadError` if the weights are unusable."""
        try:
            from ocr.pipeline import OCRPipeline
        except ImportError as exc:  # a module of the pipeline is missing: a broken install
            raise ModelLoadError(f"the OCR pipeline is not available ({exc})") from exc
        pipeline = OCRPipeline.load(threads=threads)
        return cls(pipeline, weights_sha256=weights_fingerprint())

    # ------------------------------------------------------------ reading

    def preprocess_config(self, options: dict | None) -> Any:
        if not options:
            return None
        from ocr.preprocess import config_from_dict

        return config_from_dict(options)

    def ocr(self, image: Any, *, preprocess: Any = None, kind: str = "page") -> Any:
        """A :class:`~ocr.pipeline.PageResult`; ``kind="line"`` reads the whole image as one line."""
        if kind == "line":
            return self.read_line(image)
        return self.pipeline.run(image, preprocess=preprocess)

    def read_line(self, image: Any) -> Any:
        from ocr.pipeline import PageChar, PageLine, PageResult, char_quads

        started = time.perf_counter()
        rgb = load_image(image)
        res = self.recognizer.recognize_one(rgb)
        h, w = rgb.shape[:2]
        quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        lines = []
        if res.text.strip():
            quads = char_quads(quad, w, res)
            chars = [PageChar(s.char, s.confidence, q, list(s.candidates)) for s, q in zip(res.chars, quads)]
            lines.append(PageLine([float(v) for v in quad.ravel()], res.text, res.confidence, chars, rgb, res))
        elapsed = time.perf_counter() - started
        return PageResult(lines, w, h, 0, {"recognize": elapsed, "total": elapsed}, None, None, rgb)

    def line_view(self, image: Any, *, kind: str = "page", line: int = 0, preprocess: Any = None) -> LineView:
        if kind == "line":
            rgb = load_image(image)
            return LineView(0, rgb, "", 0.0)
        page = self.pipeline.run(image, preprocess=preprocess)
        if not page.lines:
            raise InvalidImageError("no text line was found in this image")
        if not 0 <= line < len(page.lines):
            raise APIError(400, "invalid_line", f"line must be between 0 and {len(page.lines) - 1}")
        ln = page.lines[line]
        crop = ln.crop if ln.crop is not None else page.image
        return LineView(line, crop, ln.text, ln.confidence)

    # ------------------------------------------------------------ explaining

    @staticmethod
    def explain_available() -> str | None:
        """None if explanations work, else why not."""
        try:
            import explain.api  # noqa: F401
        except ImportError as exc:
            return f"explanations are not available in this build ({exc})"
        return None

    def explain_line(self, crop: np.ndarray, *, methods: Sequence[str] = DEFAULT_METHODS,
                     char_index: int | None = None, progress: Callable | None = None) -> dict:
        reason = self.explain_available()
        if reason:
            raise APIError(501, "not_available", reason)
        from explain.api import explain_line

        return explain_line(self.recognizer, crop, methods=tuple(methods), char_index=char_index, progress=progress)


def weights_fingerprint() -> str:
    """SHA-256 over the recogniser's and the detector's weights and the charset (cache keys)."""
    digest = hashlib.sha256()
    for name in ("crnn.pt", "det.pt", "det_small.pt", "charset.txt"):
        digest.update((file_sha256(WEIGHTS_DIR / name) or "missing").encode())
    return digest.hexdigest()


# ---------------------------------------------------------------- limiting


class BusyError(APIError):
    def __init__(self) -> None:
        super().__init__(503, "busy", "the server is busy with other requests; try again in a few seconds")


class RequestTimeoutError(APIError):
    def __init__(self, seconds: float) -> None:
        super().__init__(504, "timeout", f"the request took longer than {seconds:g} s and was abandoned; "
                                         "try a smaller image or fewer explanation methods")


class WorkLimiter:
    """At most ``workers`` model calls at once and ``workers + queue`` admitted; the rest get 503.

    ``timeout_seconds`` bounds each admitted request (queue wait + work): past it the client
    gets 504 at once. A thread cannot be killed, so a timed-out call keeps its admission slot
    until it really ends; otherwise abandoned work would pile up beyond ``workers + queue``.
    """

    def __init__(self, workers: int = 1, queue: int = 4, wait_seconds: float = 60.0,
                 timeout_seconds: float | None = None) -> None:
        self.workers = max(1, workers)
        self.max_admitted = self.workers + max(0, queue)
        self.wait_seconds = wait_seconds
        self.timeout_seconds = timeout_seconds if timeout_seconds and timeout_seconds > 0 else None
        self._running = threading.BoundedSemaphore(self.workers)
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        return self._admitted

    async def run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._admitted >= self.max_admitted:
                raise BusyError()
            self._admitted += 1
        deadline = time.monotonic() + self.timeout_seconds if self.timeout_seconds else None
        task = asyncio.ensure_future(run_in_threadpool(self._call, fn, args, kwargs, deadline))
        task.add_done_callback(self._release)
        try:  # shield: a timeout or a client that went away must not detach the slot from the thread
            return await asyncio.wait_for(asyncio.shield(task), self.timeout_seconds)
        except asyncio.TimeoutError:
            log.warning("request abandoned after %.1f s; its worker slot stays held until the call ends",
                        self.timeout_seconds)
            raise RequestTimeoutError(self.timeout_seconds or 0) from None

    def _release(self, task: asyncio.Future) -> None:
        with self._lock:
            self._admitted -= 1
        if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), APIError):
            log.debug("an abandoned or failed call ended: %r", task.exception())

    def _call(self, fn: Callable, args: tuple, kwargs: dict, deadline: float | None = None) -> Any:
        wait = self.wait_seconds if deadline is None else min(self.wait_seconds, deadline - time.monotonic())
        if not self._running.acquire(timeout=max(0.0, wait)):
            raise BusyError()
        try:
            if deadline is not None and time.monotonic() >= deadline:
                raise BusyError()  # the client was already answered 504: do not start work nobody awaits
            return fn(*args, **kwargs)
        finally:
            self._running.release()


def model_hook_count(service: "OCRService") -> int | None:
    """Hooks attached to the recogniser's torch model (0 when no explanation is running), if countable."""
    try:
        from explain.hooks import count_hooks

        if not getattr(service.recognizer, "model_built", True):
            return 0  # the torch model is built by the first explanation: nothing can hook it yet
        return count_hooks(service.recognizer.model)
    except Exception:  # noqa: BLE001 - a health check must never fail on this
        return None


# ---------------------------------------------------------------- request parsing


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


def _kind(fields: dict) -> str:
    kind = str(fields.get("kind") or "page").lower()
    if kind not in ("page", "line"):
        raise APIError(422, "invalid_field", "kind must be 'page' or 'line'")
    return kind


def _int_field(fields: dict, name: str, default: int | None) -> int | None:
    value = fields.get(name, default)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise APIError(422, "invalid_field", f"{name} must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise APIError(422, "invalid_field", f"{name} must be an integer") from None
    if isinstance(value, float) and value != number:
        raise APIError(422, "invalid_field", f"{name} must be an integer")
    return number


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"))


def _methods(fields: dict) -> tuple[str, ...]:
    value = fields.get("methods")
    if value is None or value == "":
        return DEFAULT_METHODS
    if isinstance(value, str):
        value = [m.strip() for m in value.split(",") if m.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise APIError(422, "invalid_field", "methods must be a list of method names")
    known = known_methods()
    unknown = [m for m in value if known and m not in known]
    if unknown:
        raise APIError(422, "invalid_field", f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(dict.fromkeys(value))


def known_methods() -> tuple[str, ...]:
    try:
        import explain.api as explain_api
    except ImportError:
        return ()
    methods = getattr(explain_api, "METHODS", None) or getattr(explain_api, "AVAILABLE_METHODS", None)
    if isinstance(methods, dict):
        return tuple(methods)
    return tuple(methods) if methods else ()


def _preprocess(service: OCRService, fields: dict) -> Any:
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


# ---------------------------------------------------------------- the app


def page_payload(page: Any) -> dict[str, Any]:
    data = page.to_dict()
    return {"text": data["text"], "confidence": data["confidence"], "lines": data["lines"],
            "width": data.get("width"), "height": data.get("height"), "rotation": data.get("rotation", 0),
            "timings_ms": data.get("timings_ms", {})}


def create_api(service: OCRService | None = None, *, loader: Callable[[], OCRService] | None = None,
               max_image_bytes: int = MAX_IMAGE_BYTES, workers: int | None = None, queue: int | None = None,
               wait_seconds: float = 60.0, timeout_seconds: float | None = None,
               title: str = "Explainable CRNN OCR") -> FastAPI:
    """The FastAPI app with the REST routes (mount the Gradio UI on it afterwards, at "/").

    ``service`` is the loaded model; ``loader`` builds one on first use instead (tests).
    ``workers``/``queue``: concurrent model calls / requests allowed to wait (env
    ``OCR_API_WORKERS`` / ``OCR_API_QUEUE``, default 1 and 4). ``timeout_seconds``: the most one
    request may take, queue wait included, before it is answered 504 (env ``OCR_API_TIMEOUT``,
    default 120; 0 = none).
    """
    workers = workers if workers is not None else int(os.environ.get("OCR_API_WORKERS", "1"))
    queue = queue if queue is not None else int(os.environ.get("OCR_API_QUEUE", "4"))
    if timeout_seconds is None:
        timeout_seconds = float(os.environ.get("OCR_API_TIMEOUT", "120"))
    app = FastAPI(title=title, version=API_VERSION,
                  description="CRNN (CNN → BiLSTM → CTC) OCR for Chinese and English, with explanations. "
                              "Errors are `{\"success\": false, \"error\": {\"code\", \"message\"}}`.")
    limiter = WorkLimiter(workers, queue, wait_seconds, timeout_seconds)
    state: dict[str, Any] = {"service": service}
    state_lock = threading.Lock()
    app.state.limiter = limiter

    def get_service() -> OCRService:
        if state["service"] is None:
            with state_lock:
                if state["service"] is None:
                    if loader is None:
                        raise APIError(503, "model_unavailable", "the model is not loaded")
                    state["service"] = loader()
        return state["service"]

    app.state.get_service = get_service

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(_error_body(exc.code, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_error_body("invalid_request", "the request is not valid"), status_code=422)

    async def handle(request: Request, work: Callable[[ParsedRequest], Any]) -> JSONResponse:
        started = time.perf_counter()
        size = int(request.headers.get("content-length") or 0)
        status, outcome = 500, "internal_error"
        try:
            parsed = await parse_image_request(request, max_image_bytes)
            size = parsed.size
            body = await limiter.run(work, parsed)
            body["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 1)
            status, outcome = 200, "ok"
            return JSONResponse({"success": True, **body})
        except APIError as exc:
            status, outcome = exc.status, exc.code
            return JSONResponse(_error_body(exc.code, exc.message), status_code=exc.status,
                                headers={"Retry-After": "2"} if exc.status == 503 else None)
        except OCRError as exc:
            err = ocr_error_to_api(exc)
            status, outcome = err.status, err.code
            return JSONResponse(_error_body(err.code, err.message), status_code=err.status)
        except Exception:  # noqa: BLE001 - never a traceback to the client; the log has it
            log.exception("unexpected error in %s", request.url.path)
            return JSONResponse(_error_body("internal_error", "internal error; the server log has the details"),
                                status_code=500)
        finally:
            client = request.client.host if request.client else "-"
            log.info("%s %s client=%s bytes=%d status=%d outcome=%s latency_ms=%.0f", request.method,
                     request.url.path, client, size, status, outcome, (time.perf_counter() - started) * 1000)

    image_body = {
        "required": True,
        "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["image_base64"],
                "properties": {
                    "image_base64": {"type": "string", "description": "base64 image (jpg/png/bmp/webp/tiff, "
                                     "max 10 MB); a data: URL prefix is accepted"},
                    "kind": {"type": "string", "enum": ["page", "line"], "default": "page"},
                    "preprocess": {"type": "object", "description": "e.g. {\"mode\": \"auto\"|\"manual\"|\"off\"}"},
                }}},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {"image": {"type": "string", "format": "binary"},
                               "kind": {"type": "string", "enum": ["page", "line"]}}}},
        },
    }
    explain_body = json.loads(json.dumps(image_body))
    explain_body["content"]["application/json"]["schema"]["properties"].update({
        "line": {"type": "integer", "default": 0, "description": "index of the detected line (kind=page)"},
        "methods": {"type": "array", "items": {"type": "string"}, "default": list(DEFAULT_METHODS),
                    "description": "any of alignment, gradcam, saliency, occlusion, ig (or all)"},
        "char_index": {"type": "integer", "description": "explain this character (0-based) of the line"},
        "include_maps": {"type": "boolean", "default": False, "description": "also return the raw float maps"},
    })
    explain_body["content"]["multipart/form-data"]["schema"]["properties"].update({
        "line": {"type": "integer"}, "methods": {"type": "string", "description": "comma-separated"},
        "char_index": {"type": "integer"}})

    @app.post("/api/v1/ocr", tags=["ocr"], summary="Read the text of an image",
              openapi_extra={"requestBody": image_body})
    async def ocr_route(request: Request) -> JSONResponse:
        def work(parsed: ParsedRequest) -> dict:
            svc = get_service()
            kind = _kind(parsed.fields)
            page = svc.ocr(parsed.image, preprocess=_preprocess(svc, parsed.fields), kind=kind)
            return page_payload(page)

        return await handle(request, work)

    @app.post("/api/v1/explain", tags=["ocr"], summary="Explain how one line was read",
              openapi_extra={"requestBody": explain_body})
    async def explain_route(request: Request) -> JSONResponse:
        def work(parsed: ParsedRequest) -> dict:
            svc = get_service()
            fields = parsed.fields
            kind = _kind(fields)
            methods = _methods(fields)
            line = _int_field(fields, "line", 0) or 0
            char_index = _int_field(fields, "char_index", None)
            view = svc.line_view(parsed.image, kind=kind, line=line, preprocess=_preprocess(svc, fields))
            result = svc.explain_line(view.crop, methods=methods, char_index=char_index)
            if isinstance(result, dict) and not _flag(fields.get("include_maps")):
                result = {k: v for k, v in result.items() if k != "maps"}  # float maps: large; images carry them
            out = jsonable(result)
            if not isinstance(out, dict):
                out = {"explanation": out}
            out.setdefault("line", view.index)
            out.setdefault("methods", list(methods))
            return out

        return await handle(request, work)

    @app.get("/api/v1/health", tags=["meta"], summary="Is the model loaded?")
    async def health() -> JSONResponse:
        svc = state["service"]
        body = {"success": True, "status": "ok" if svc is not None or loader is not None else "loading",
                "model_loaded": svc is not None, "api_version": API_VERSION,
                "busy": limiter.admitted >= limiter.max_admitted, "in_flight": limiter.admitted,
                "explain_available": OCRService.explain_available() is None,
                "max_image_bytes": max_image_bytes, "max_pixels": MAX_PIXELS,
                "allowed_types": list(ALLOWED_TYPES)}
        if svc is not None:
            body["weights_sha256"] = svc.weights_sha256
            body["charset_size"] = len(getattr(svc.recognizer.charset, "chars", []) or []) or None
            body["model_hooks"] = model_hook_count(svc)  # explanation hooks left on the shared model: 0
        return JSONResponse(body)

    return app


__all__ = ["APIError", "OCRService", "WorkLimiter", "create_api", "check_image_bytes", "decode_base64_image",
           "sniff_image_type", "jsonable", "weights_fingerprint", "MAX_IMAGE_BYTES"]
