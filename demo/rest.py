"""The REST API: ``/api/v1/ocr``, ``/api/v1/explain``, ``/api/v1/health`` (OpenAPI docs at ``/docs``).

    app = create_api(service)             # FastAPI; the Gradio UI is mounted on it at "/" (demo/app.py)

* ``POST /api/v1/ocr``: JSON ``{"image_base64": "..."}`` (a ``data:`` URL prefix is tolerated)
  or ``{"image_url": "https://..."}`` (only with ``OCR_ALLOW_URLS=1``), multipart with the file in
  field ``image``, or a raw body (``Content-Type: image/...`` or ``application/pdf``).
  Optional: ``"kind": "page"|"line"``, ``"model": "fast"|"accurate"|"auto"``, ``"lm": true|false``
  (422 otherwise; each line answers ``"model"`` and ``"reread"``) and ``"preprocess": {...}`` (``ocr.preprocess.config_from_dict``).
  A document, a PDF or a TIFF of two pages or more (``ocr.document``), has every page read:
  ``{"success": true, "pages": [page answer, ...], "page_count": n}``; a single-page TIFF is an image.
  A page that cannot be read is ``{"success": false, "error": {...}}`` in its place (the others are read).
  Optional ``"fields": true``: the key fields (``ocr.fields``), an object ``fields`` in each page's answer.
* ``POST /api/v1/explain``: the same image fields plus ``"line"`` (index of a detected line,
  default 0) or ``"kind": "line"``, ``"methods"``, ``"char_index"`` and, for a document, ``"page"``
  (0-based, default 0). Images come back as base64 PNG.
* ``GET /api/v1/health``: also ``in_flight`` (admitted requests) and ``model_hooks``.

Answers are JSON (``demo.http_input.JSONAnswer``); errors ``{"success": false, "error": {"code", "message"}}``,
also for any other method (405, with ``Allow``) or path (404) under ``/api/v1``. The work runs
behind ``demo.limiter.WorkLimiter`` (503 busy, 504 timeout). Reading and line choice are the
service's (``ocr.service``), the same the UI calls.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.routing import Match

from demo.http_input import (ALLOWED_TYPES, MAX_IMAGE_BYTES, APIError, JSONAnswer, ParsedRequest, check_image_bytes,
                             error_body, ocr_error_to_api, parse_image_request)
from demo.limiter import WorkLimiter, stop_if_abandoned
from demo.payloads import (ERROR_RESPONSES, EXPLAIN_BODY, EXPLAIN_FIELDS, IMAGE_BODY, OCR_FIELDS, bool_field,
                           check_known_fields, int_field, jsonable, kind_field, lm_field, methods_field, model_field,
                           preprocess_field)
from ocr.errors import OCRError
from ocr.fields import fields_for_answer
from ocr.imageio import MAX_PIXELS
from ocr.service import OCRService
from ocr.settings import Settings

log = logging.getLogger("demo.rest")

API_VERSION = "v1"
API_PREFIX = f"/api/{API_VERSION}"
#: the methods answered 405 / 404 under API_PREFIX (a route without methods would take GET only)
HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def create_api(service: OCRService, *, max_image_bytes: int = MAX_IMAGE_BYTES, workers: int | None = None,
               queue: int | None = None, wait_seconds: float = 60.0, timeout_seconds: float | None = None,
               settings: Settings | None = None, title: str = "Explainable CRNN OCR") -> FastAPI:
    """The FastAPI app with the REST routes (mount the Gradio UI on it afterwards, at "/").

    ``workers`` / ``queue`` / ``timeout_seconds`` default to ``settings`` (``OCR_API_WORKERS``,
    ``OCR_API_QUEUE``, ``OCR_API_TIMEOUT``; 0 = no timeout); the longest expected wait a request is
    queued for is ``OCR_API_MAX_WAIT``.
    """
    settings = settings or Settings.from_env()
    limiter = WorkLimiter(settings.api_workers if workers is None else workers,
                          settings.api_queue if queue is None else queue, wait_seconds,
                          settings.api_timeout if timeout_seconds is None else timeout_seconds, settings.api_max_wait)
    app = FastAPI(title=title, version=API_VERSION, redoc_url=None,  # ReDoc loads from a CDN; /docs is served locally
                  description="CRNN (CNN → BiLSTM → CTC) OCR for Chinese and English, with explanations. "
                              "Errors are `{\"success\": false, \"error\": {\"code\", \"message\"}}`.")
    app.state.limiter = limiter
    app.state.service = service
    app.state.max_image_bytes = max_image_bytes
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.post("/api/v1/ocr", tags=["ocr"], summary="Read the text of an image", responses=ERROR_RESPONSES,
             openapi_extra={"requestBody": IMAGE_BODY})(ocr_route)
    app.post("/api/v1/explain", tags=["ocr"], summary="Explain how one line was read",
             responses={**ERROR_RESPONSES, 501: {"description": "not_available: started without explanations"}},
             openapi_extra={"requestBody": EXPLAIN_BODY})(explain_route)
    app.get("/api/v1/health", tags=["meta"], summary="Is the model loaded?")(health_route)
    for path in (API_PREFIX, API_PREFIX + "/{rest:path}"):  # after the routes above, before the UI mount at "/"
        app.add_route(path, no_such_route, methods=HTTP_METHODS, include_in_schema=False)
    return app


async def ocr_route(request: Request) -> JSONAnswer:
    return await _answer(request, read)


async def explain_route(request: Request) -> JSONAnswer:
    return await _answer(request, explain)


async def health_route(request: Request) -> JSONAnswer:
    state = request.app.state
    return JSONAnswer(health(state.service, state.limiter, state.max_image_bytes))


async def no_such_route(request: Request) -> JSONAnswer:
    """Any other method or path under /api/v1: the documented JSON error, not the UI mount's
    ``{"detail": "Not Found"}``; 405 with ``Allow`` when the path exists for another method."""
    routes = [r for r in request.app.router.routes if isinstance(r, APIRoute) and r.path.startswith(API_PREFIX)]
    allowed = sorted({m for r in routes if r.matches(request.scope)[0] is Match.PARTIAL for m in r.methods})
    if allowed:
        return JSONAnswer(error_body("method_not_allowed", f"{request.method} is not allowed here; use "
                                     f"{', '.join(allowed)}"), status_code=405, headers={"Allow": ", ".join(allowed)})
    endpoints = ", ".join(f"{m} {r.path}" for r in routes for m in sorted(r.methods))
    return JSONAnswer(error_body("not_found", f"no such endpoint; the API has {endpoints} (docs at /docs)"),
                      status_code=404)


def source_bytes(service: OCRService, parsed: ParsedRequest) -> bytes:
    """The upload, or the image fetched from ``image_url`` (in the worker slot: a fetch may take
    seconds) and then checked exactly like an upload."""
    if parsed.url is None:
        return parsed.image
    data = service.fetch_url(parsed.url)
    check_image_bytes(data)
    return data


def read(service: OCRService, parsed: ParsedRequest) -> dict:
    """``/api/v1/ocr``: the page (or the line; or every page of a document) as text, lines, characters and
    boxes; each page's key fields if asked (opt-in: the everyday answer stays as small as before)."""
    fields = parsed.fields
    check_known_fields(fields, OCR_FIELDS)
    with_fields = bool_field(fields, "fields")  # checked before the work, as every option is
    out = service.upload_answer(source_bytes(service, parsed), preprocess=preprocess_field(service, fields),
                                kind=kind_field(fields), model=model_field(fields), lm=lm_field(fields))
    if with_fields:
        for page in out.get("pages", [out]):
            if page["success"]:  # a document's page that could not be read has no fields
                page["fields"] = fields_for_answer(page)
    return out


def explain(service: OCRService, parsed: ParsedRequest) -> dict:
    """``/api/v1/explain``: one line's explanation; the line is chosen by the service, as in the UI."""
    fields = parsed.fields
    check_known_fields(fields, EXPLAIN_FIELDS)
    kind = kind_field(fields)
    methods = methods_field(fields, service.methods())
    line = int_field(fields, "line", 0) or 0
    char_index = int_field(fields, "char_index", None)
    model = model_field(fields)
    include_maps = bool_field(fields, "include_maps")
    source = source_bytes(service, parsed)
    page = int_field(fields, "page", 0) or 0
    image = service.load_page(source, page)
    lm = lm_field(fields)
    view = service.line_view(image, kind=kind, line=line, preprocess=preprocess_field(service, fields), model=model,
                             lm=lm)
    result = service.explain_line(view.crop, methods=methods, char_index=char_index, model=view.model,
                                  reading=view.line_result, progress=stop_if_abandoned)
    if not include_maps:
        result = {k: v for k, v in result.items() if k != "maps"}  # float maps: large; images carry them
    out = jsonable(result)
    out.setdefault("line", view.index)
    out.setdefault("lm", service.reader(view.model).uses_lm(lm))  # how the explained reading was decoded
    out.setdefault("methods", list(methods))
    if image is not source:  # a document: say which page was explained
        out.setdefault("page", page)
    return out


def health(service: OCRService, limiter: WorkLimiter, max_image_bytes: int) -> dict[str, Any]:
    """``/api/v1/health``: loaded, busy, limits, and the hooks left on the shared model (0)."""
    return {"success": True, "status": "ok", "model_loaded": True, "api_version": API_VERSION,
            "busy": limiter.refuses(), "in_flight": limiter.admitted,
            "explain_available": service.explainer is not None, "default_model": service.default_model,
            "max_image_bytes": max_image_bytes, "max_pixels": MAX_PIXELS, "allowed_types": [*ALLOWED_TYPES, "pdf"],
            "max_pdf_pages": service.pdf_limits.max_pages, "image_url_enabled": service.url_policy.enabled,
            "weights_sha256": service.weights_sha256, "charset_size": len(service.recognizer.charset.chars),
            "model_hooks": service.model_hooks()}


async def _answer(request: Request, work: Callable[[OCRService, ParsedRequest], dict]) -> JSONAnswer:
    """Parse, run ``work`` behind the limiter, answer; every failure is a JSON error and one log line."""
    state = request.app.state
    started = time.perf_counter()
    size = int(request.headers.get("content-length") or 0)
    status, outcome = 500, "internal_error"
    try:
        parsed = await parse_image_request(request, state.max_image_bytes)
        size = parsed.size
        body = await state.limiter.run(work, state.service, parsed, kind=_call_kind(work, state.service, parsed))
        body["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 1)
        status, outcome = 200, "ok"
        return JSONAnswer({"success": True, **body})
    except APIError as exc:
        status, outcome = exc.status, exc.code
        return JSONAnswer(error_body(exc.code, exc.message), status_code=exc.status,
                            headers={"Retry-After": str(getattr(exc, "retry_after", 2))} if exc.status == 503 else None)
    except OCRError as exc:
        err = ocr_error_to_api(exc)
        status, outcome = err.status, err.code
        return JSONAnswer(error_body(err.code, err.message), status_code=err.status)
    except Exception:  # noqa: BLE001 - never a traceback to the client; the log has it
        log.exception("unexpected error in %s", request.url.path)
        return JSONAnswer(error_body("internal_error", "internal error; the server log has the details"),
                          status_code=500)
    finally:
        client = request.client.host if request.client else "-"
        log.info("%s %s client=%s bytes=%d status=%d outcome=%s latency_ms=%.0f", request.method,
                 request.url.path, client, size, status, outcome, (time.perf_counter() - started) * 1000)


def _call_kind(work: Callable, service: OCRService, parsed: ParsedRequest) -> str:
    """What the limiter learns a call's time by: the route, and for /explain the methods it will run
    (occlusion and integrated gradients take seconds, the alignment alone a fraction of one)."""
    if work is not explain:
        return work.__name__
    return "explain:" + ",".join(sorted(methods_field(parsed.fields, service.methods())))


async def _api_error(request: Request, exc: Exception) -> JSONAnswer:
    assert isinstance(exc, APIError)
    return JSONAnswer(error_body(exc.code, exc.message), status_code=exc.status)


async def _validation_error(request: Request, exc: Exception) -> JSONAnswer:
    return JSONAnswer(error_body("invalid_request", "the request is not valid"), status_code=422)
