"""Every path and environment variable of the project, in one table, validated in one place.

Paths (fixed, relative to the repository):

| name | path |
|---|---|
| ``ROOT`` | the repository |
| ``WEIGHTS_DIR`` | ``weights/``: recogniser, detectors, charset, ``SHA256SUMS`` |
| ``FONTS_DIR`` | ``weights/fonts/``: extra fonts for samples and explanation plots |
| ``EXAMPLES_DIR`` | ``examples/``: the demo's sample images |
| ``EVAL_ROOT`` | ``../shared/eval``: third-party evaluation sets (measure only, never copied in) |

Environment (``Settings.from_env()``; a bad value is a :class:`SettingsError`, one line, no traceback):

| variable | default | meaning |
|---|---|---|
| ``HOST`` | 0.0.0.0 | address the app listens on |
| ``PORT`` | 7860 | port of the app, 1..65535 (UI at /, REST API at /api/v1) |
| ``OCR_THREADS`` | (library default) | intra-op threads of onnxruntime / torch |
| ``OCR_MODEL`` | auto | recogniser of a request that names none: ``auto``, ``fast`` or ``accurate`` (README, "Fast, Auto or Accurate") |
| ``OCR_ENGINE`` | auto | what runs the networks (``ocr.engines.ENGINES``): auto (int8 where the model card says it is within bounds, float elsewhere), onnx (float), onnx-int8, torch |
| ``OCR_CACHE_MB`` | 256 | memory of the page-result cache |
| ``OCR_WARM_EXAMPLES`` | 1 | 0: do not pre-read the examples after start-up |
| ``OCR_UI_CONCURRENCY`` | 1 | UI events run at once |
| ``OCR_UI_QUEUE`` | 64 | UI events waiting (each sees its place); beyond it Gradio answers "Queue is full" |
| ``OCR_UI_SESSIONS`` | 1000 | Gradio sessions whose UI state is kept in memory |
| ``OCR_GRADIO_CACHE_TTL`` | 3600 | seconds Gradio's uploads and output pictures are kept (0: for ever) |
| ``OCR_API_WORKERS`` | 1 | REST model calls at once |
| ``OCR_API_QUEUE`` | 32 | REST requests waiting at most; beyond workers + queue: 503 busy |
| ``OCR_API_MAX_WAIT`` | 10 | seconds a REST request may expect to wait for a worker (calls ahead x mean call time); longer: 503 busy with ``Retry-After`` |
| ``OCR_API_TIMEOUT`` | 120 | seconds a REST request may take before 504 (0: no limit) |
| ``OCR_ALLOW_URLS`` | 0 | 1: ``image_url`` (REST) and URL arguments (CLI) are fetched, public addresses only (``ocr/url_fetch.py``) |
| ``OCR_URL_ALLOW_HOSTS`` | (any public host) | only these hosts are fetched: names separated by commas, ``*.example.com`` for subdomains |
| ``OCR_PDF_MAX_PAGES`` | 20 | pages a PDF or a multi-page TIFF may have (more: ``pdf_too_many_pages`` / ``tiff_too_many_pages``, nothing rendered or decoded) |
| ``OCR_PDF_MAX_SIDE`` | 2000 | longer side, in pixels, a PDF page is rendered at (at most) |
| ``OCR_PDF_MAX_DPI`` | 200 | resolution a born-digital PDF page is rendered at (at most); a scanned page keeps its image's own |
| ``OCR_PDF_TIMEOUT`` | 60 | seconds of rendering one PDF may take (0: no limit) |
| ``LOG_LEVEL`` | INFO | the app's log level |
| ``UVICORN_LOG_LEVEL`` | warning | uvicorn's log level |
| ``MALLOC_ARENA_MAX`` | (2, set by app.py) | glibc arenas; when set, ``app.py`` leaves it to glibc |
| ``MALLOC_MMAP_THRESHOLD_`` | (1 MB, set by app.py) | glibc mmap threshold; likewise |

Nothing else in the project reads ``os.environ`` for its own settings (the benchmarks set
thread variables for the child processes they start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from ocr.engines import ENGINES
from ocr.errors import OCRError
from ocr.recognize.models import MODELS

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = ROOT / "weights"
FONTS_DIR = WEIGHTS_DIR / "fonts"
EXAMPLES_DIR = ROOT / "examples"
EVAL_ROOT = ROOT.parent / "shared" / "eval"

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
#: how a setting, a REST field, a preprocessing option or a command-line switch says yes / no (one list for all)
SWITCH_WORDS: dict[str, bool] = {"1": True, "true": True, "yes": True, "on": True,
                                 "0": False, "false": False, "no": False, "off": False}


def switch_word(text: str) -> bool | None:
    """``text`` (any case) as yes / no, or None when it is neither."""
    return SWITCH_WORDS.get(text.lower())


class SettingsError(OCRError):
    """An environment variable with a value the app cannot use."""

    code = "bad_setting"
    default_message = "a setting is not valid"


def _var(env: str, default: Any, *, minimum: float | None = None, maximum: float | None = None,
         choices: tuple[str, ...] | None = None) -> Any:
    """A settings field read from ``env``; ``minimum`` / ``maximum`` / ``choices`` bound its value."""
    return field(default=default, metadata={"env": env, "minimum": minimum, "maximum": maximum, "choices": choices})


@dataclass(frozen=True)
class Settings:
    """The environment, parsed once; pass this object down instead of reading ``os.environ``."""

    host: str = _var("HOST", "0.0.0.0")
    port: int = _var("PORT", 7860, minimum=1, maximum=65535)
    threads: int | None = _var("OCR_THREADS", None, minimum=1)
    model: str = _var("OCR_MODEL", "auto", choices=MODELS)
    engine: str = _var("OCR_ENGINE", "auto", choices=ENGINES)
    cache_mb: float = _var("OCR_CACHE_MB", 256.0, minimum=0)
    warm_examples: bool = _var("OCR_WARM_EXAMPLES", True)
    ui_concurrency: int = _var("OCR_UI_CONCURRENCY", 1, minimum=1)
    ui_queue: int = _var("OCR_UI_QUEUE", 64, minimum=0)
    ui_sessions: int = _var("OCR_UI_SESSIONS", 1000, minimum=1)
    gradio_cache_ttl: int = _var("OCR_GRADIO_CACHE_TTL", 3600, minimum=0)
    api_workers: int = _var("OCR_API_WORKERS", 1, minimum=1)
    api_queue: int = _var("OCR_API_QUEUE", 32, minimum=0)
    api_max_wait: float = _var("OCR_API_MAX_WAIT", 10.0, minimum=0)
    api_timeout: float = _var("OCR_API_TIMEOUT", 120.0, minimum=0)
    allow_urls: bool = _var("OCR_ALLOW_URLS", False)
    url_allow_hosts: str = _var("OCR_URL_ALLOW_HOSTS", "")
    pdf_max_pages: int = _var("OCR_PDF_MAX_PAGES", 20, minimum=1)
    pdf_max_side: int = _var("OCR_PDF_MAX_SIDE", 2000, minimum=16)
    pdf_max_dpi: float = _var("OCR_PDF_MAX_DPI", 200.0, minimum=1)
    pdf_timeout: float = _var("OCR_PDF_TIMEOUT", 60.0, minimum=0)
    log_level: str = _var("LOG_LEVEL", "INFO", choices=LOG_LEVELS)
    uvicorn_log_level: str = _var("UVICORN_LOG_LEVEL", "warning", choices=tuple(v.lower() for v in LOG_LEVELS))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Parse every variable of the table; the first bad one raises :class:`SettingsError`."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"], "").strip()
            if raw:
                values[f.name] = _parse(f.metadata, f.default, f.type, raw)
        settings = cls(**values)
        if settings.url_allow_hosts:
            settings.url_policy()  # a bad host name fails at start, not at the first URL
        return settings

    @property
    def cache_bytes(self) -> int:
        return int(self.cache_mb * 2**20)

    def url_policy(self) -> Any:
        """The :class:`ocr.url_fetch.UrlPolicy` of ``OCR_ALLOW_URLS`` / ``OCR_URL_ALLOW_HOSTS``."""
        from ocr.url_fetch import UrlPolicy  # httpx: imported only by whoever fetches

        try:
            return UrlPolicy.from_settings(self.allow_urls, self.url_allow_hosts)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def pdf_limits(self) -> Any:
        """The :class:`ocr.pdf.PdfLimits` of the ``OCR_PDF_*`` variables (its page and byte limits bound a
        multi-page TIFF too: ``ocr.document``)."""
        from ocr.pdf import PdfLimits

        return PdfLimits(max_pages=self.pdf_max_pages, max_side=self.pdf_max_side, max_dpi=self.pdf_max_dpi,
                         timeout_s=self.pdf_timeout or None)


def _parse(meta: Mapping[str, Any], default: Any, kind: Any, raw: str) -> Any:
    """``raw`` as the field's type, or a one-line :class:`SettingsError` naming the variable."""
    name, minimum, maximum, choices = meta["env"], meta["minimum"], meta["maximum"], meta["choices"]
    kind = str(kind)
    try:
        if kind == "bool":
            switch = switch_word(raw)
            if switch is None:
                raise ValueError
            return switch
        if kind.startswith("int"):
            value: Any = int(raw)
        elif kind == "float":
            value = float(raw)
        else:
            value = raw
    except ValueError:
        want = "0 or 1" if kind == "bool" else ("a whole number" if kind.startswith("int") else "a number")
        raise SettingsError(f"{name}={raw!r} is not valid: give {want}") from None
    if minimum is not None and not value >= minimum:
        raise SettingsError(f"{name}={raw!r} is not valid: it must be at least {minimum:g}")
    if maximum is not None and not value <= maximum:
        raise SettingsError(f"{name}={raw!r} is not valid: it must be at most {maximum:g}")
    if choices is not None:
        value = value.upper() if choices == LOG_LEVELS else value.lower()
        if value not in choices:
            raise SettingsError(f"{name}={raw!r} is not valid: choose one of {', '.join(choices)}")
    return value
