"""The one service both web faces call: the Gradio UI and the REST API read and explain through it.

    service = OCRService.load(settings)        # model loaded once (the default: OCR_MODEL)
    page = service.ocr(image)                  # a PageResult (kind="line": the image is one line)
    page = service.ocr(image, model="auto")    # "fast" | "accurate" | "auto" for this request
    view = service.line_view(image, line=2)    # the crop of detected line 2, as read (view.model: by which network)
    service.explain_line(view.crop, methods=("gradcam", "alignment"), model=view.model)
    service.upload_answer(data)                # the REST answer: one image, or every page of a document
    service.load_pages(data)                   # an upload that may be a document -> its page images (RGB)
    service.document(data)                     # a PDF or a multi-page TIFF (ocr.document), or None: an image
    service.fields(page)                       # key fields of a page read (ocr.fields.FieldSet)

Explanations are wired in by whoever builds the service (``OCRService.load(settings,
explainer=explain)``): ``explain`` builds on ``ocr``, so ``ocr`` never imports it (no cycle).
Every refusal is an :class:`~ocr.errors.OCRError` subclass with a stable ``code``; turning
those into HTTP answers or UI messages is the web faces' business (``demo/``), never this one's.
Thread-safe: the pipeline, the recogniser and the explanations each guard their shared state.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np

from ocr.document import Document, document_of
from ocr.errors import InvalidImageError, OCRError
from ocr.fields import FieldSet, extract_fields
from ocr.imageio import load_image
from ocr.pipeline import OCRPipeline
from ocr.preprocess import PreprocessConfig, config_from_dict
from ocr.recognize.language import default_language_model
from ocr.recognize.lexicon import default_lexicon
from ocr.recognize.models import check_model, describe_models
from ocr.results import LineResult, PageChar, PageLine, PageResult
from ocr.settings import WEIGHTS_DIR, Settings

#: what an explanation request runs unless it names methods
DEFAULT_METHODS = ("gradcam", "alignment")
#: the files whose digests make the weights' fingerprint (health answers, cache keys)
FINGERPRINT_FILES = ("crnn.pt", "det.pt", "det_small.pt", "charset.txt", "crnn_accurate.pt", "charset_accurate.txt",
                     "lm_char.txt.gz", "lexicon_en.txt.gz")


class Explainer(Protocol):
    """What the service needs of the explanations (the ``explain`` package provides exactly this)."""

    METHODS: Sequence[str]

    def explain_line(self, recognizer: Any, image: Any, methods: Sequence[str] = ..., char_index: int | None = ...,
                     progress: Callable | None = ..., reading: Any = ...) -> dict: ...

    def attribute_errors(self, recognizer: Any, image: Any, truth: str, *, result: Any = ...) -> Any: ...

    def attribute_preprocessing(self, recognizer: Any, image: Any) -> Any: ...

    def count_hooks(self, model: Any) -> int: ...


class ExplainUnavailableError(OCRError):
    """The service was built without explanations (``explainer=None``)."""

    code = "not_available"
    default_message = "this service was started without explanations"


class NoTextLineError(InvalidImageError):
    """The page holds no text line to pick (an explanation needs one)."""

    default_message = "no text line was found in this image"


class InvalidLineError(OCRError):
    """A line index outside the page's detected lines."""

    code = "invalid_line"
    default_message = "no such line"


class InvalidPageError(OCRError):
    """A page index outside the document (an image has one page, 0)."""

    code = "invalid_page"
    default_message = "no such page"


@dataclass
class LineView:
    """One line ready to be explained: the crop the recogniser read, and what it read there."""

    index: int
    crop: np.ndarray
    text: str
    confidence: float
    chars: list[PageChar] = field(default_factory=list)
    line_result: LineResult | None = None
    #: the network that read the line ("fast" / "accurate"); before reading, the model asked for
    model: str | None = None


class OCRService:
    """The model, loaded once, and what the API and the demo do with it. Thread-safe."""

    def __init__(self, pipeline: Any, *, weights_sha256: str | None = None,
                 explainer: Explainer | None = None, settings: Settings | None = None) -> None:
        self.pipeline = pipeline
        self.explainer = explainer
        self.recognizer = pipeline.recognizer
        self.weights_sha256 = weights_sha256
        self.loaded_at = time.time()
        self.settings = settings or Settings()
        self.pdf_limits = self.settings.pdf_limits()  # OCR_PDF_*; its page and byte limits bound TIFFs too

    @functools.cached_property
    def url_policy(self) -> Any:
        """``OCR_ALLOW_URLS`` / ``OCR_URL_ALLOW_HOSTS`` (built on first use: httpx only for those who fetch)."""
        return self.settings.url_policy()

    @classmethod
    def load(cls, settings: Settings | None = None, *, threads: int | None = None,
             explainer: Explainer | None = None, model: str | None = None) -> "OCRService":
        """Load the recogniser and the detector; a :class:`ModelLoadError` if the weights are unusable.

        ``threads`` wins over ``settings.threads`` (``OCR_THREADS``), ``model`` over ``settings.model``
        (``OCR_MODEL``): the model a request that names none is read with."""
        settings = settings or Settings.from_env()
        pipeline = OCRPipeline.load(threads=threads or settings.threads, cache_bytes=settings.cache_bytes,
                                    model=model or settings.model, engine=settings.engine)
        if pipeline.recognizer.uses_lm():
            # read now (0.8-1.3 s), not on the first request: a user's first click used to pay it
            default_language_model()
            default_lexicon()
        return cls(pipeline, weights_sha256=weights_fingerprint(), explainer=explainer, settings=settings)

    # ------------------------------------------------------------ reading

    @staticmethod
    def preprocess_config(options: dict | None) -> PreprocessConfig | None:
        """The pipeline's preprocessing settings from a (partial) dict; ``ValueError`` if invalid."""
        return config_from_dict(options) if options else None

    # ------------------------------------------------------------ answers

    def page_answer(self, image: Any, *, preprocess: PreprocessConfig | None = None, kind: str = "page",
                    use_cache: bool = True, model: str | None = None, lm: bool | None = None) -> dict[str, Any]:
        """The REST answer for one image, as a dict: the one builder of ``/api/v1/ocr``'s body and
        of a batch record (``ocr.batch``), so the two are the same by construction."""
        started = time.perf_counter()
        page = self.ocr(image, preprocess=preprocess, kind=kind, use_cache=use_cache, model=model, lm=lm)
        return {"success": True, **page_payload(page), "model": model or self.default_model,
                "lm": self.reader(model).uses_lm(lm),
                "processing_time_ms": round((time.perf_counter() - started) * 1000, 1)}

    def upload_answer(self, source: Any, *, preprocess: PreprocessConfig | None = None,
                      kind: str = "page", model: str | None = None, lm: bool | None = None) -> dict[str, Any]:
        """:meth:`page_answer` for an image; for a document (a PDF, a multi-page TIFF) every page is read,
        one at a time: ``{"success": True, "pages": [page answer, ...], "page_count": n}``. A page that
        cannot be read is ``{"success": False, "error": {"code", "message"}}`` in its place, and the others
        are still read; if no page can be read, the first page's error is raised."""
        doc = self.document(source)
        if doc is None:
            return self.page_answer(source, preprocess=preprocess, kind=kind, model=model, lm=lm)
        pages, failed = [], []
        for page in doc.pages(keep_going=True):
            if isinstance(page, OCRError):
                failed.append(page)
                pages.append({"success": False, "error": page.to_dict()})
            else:
                pages.append(self.page_answer(page, preprocess=preprocess, kind=kind, model=model, lm=lm))
        if len(failed) == len(pages):
            raise failed[0]
        return {"success": True, "pages": pages, "page_count": len(pages)}

    # ------------------------------------------------------------ inputs: documents and URLs

    def document(self, source: Any) -> Document | None:
        """``source`` (bytes or a file path) as a document of pages, a PDF or a TIFF of two pages or
        more (``ocr.document``, under ``OCR_PDF_*``), else ``None``: one image."""
        return document_of(source, self.pdf_limits)

    def page_count(self, source: Any) -> int:
        """Pages of an upload: 1 for an image, a document's page count (checked, nothing rendered)."""
        doc = self.document(source)
        return 1 if doc is None else doc.page_count()

    def iter_pages(self, source: Any) -> Iterator[np.ndarray]:
        """Each page of an upload as HxWx3 RGB: the image itself, or a document's pages one at a time."""
        doc = self.document(source)
        if doc is None:
            yield load_image(source)
        else:
            yield from doc.pages()

    def load_pages(self, source: Any) -> list[np.ndarray]:
        """An upload that may be a document -> the list of its page images (RGB); an image -> ``[image]``."""
        return list(self.iter_pages(source))

    def load_page(self, source: Any, index: int = 0) -> Any:
        """Page ``index`` (0-based) of an upload; an image is its own page 0 (returned as given)."""
        doc = self.document(source)
        count = 1 if doc is None else doc.page_count()
        if not 0 <= index < count:
            raise InvalidPageError(f"page must be between 0 and {count - 1}" if count > 1 else
                                   "this upload has one page: page must be 0")
        return source if doc is None else doc.page(index)

    def fetch_url(self, url: Any) -> bytes:
        """The image bytes at ``url``, under ``OCR_ALLOW_URLS`` / ``OCR_URL_ALLOW_HOSTS`` (``url_*`` errors;
        ``url_disabled`` when off). Blocks up to the policy's total time limit (20 s)."""
        from ocr.url_fetch import fetch_image_bytes

        return fetch_image_bytes(url, self.url_policy)

    # ------------------------------------------------------------ the model choice

    @property
    def default_model(self) -> str:
        """What a request naming no model is read with (``OCR_MODEL``)."""
        return getattr(self.recognizer, "model_name", "fast")

    @staticmethod
    def model_choices() -> dict[str, str]:
        """Every model name with its measured trade-off in one sentence (for a Fast / Auto / Accurate switch)."""
        return describe_models()

    def reader(self, model: str | None = None) -> Any:
        """The recogniser of ``model`` ("fast", "accurate", "auto"; None: the default), loaded on first use."""
        if model is None:
            return self.recognizer
        check_model(model)
        return self.pipeline.models.get(model)

    def _run(self, image: Any, preprocess: PreprocessConfig | None, model: str | None,
             use_cache: bool = True, lm: bool | None = None) -> PageResult:
        return self.pipeline.run(image, preprocess=preprocess, use_cache=use_cache, model=model, lm=lm)

    # ------------------------------------------------------------ reading

    def ocr(self, image: Any, *, preprocess: PreprocessConfig | None = None, kind: str = "page",
            model: str | None = None, use_cache: bool = True, lm: bool | None = None) -> PageResult:
        """A :class:`~ocr.results.PageResult`; ``kind="line"`` reads the whole image as one line.
        ``model``: "fast", "accurate" or "auto" (None: :attr:`default_model`). ``use_cache=False``:
        a batch reads each page once, so caching it would only hold memory. ``lm``: decode with the
        character language model (None: the model's default, chosen on the validation slice)."""
        if kind == "line":
            return self.read_line(image, model=model, lm=lm)
        return self._run(image, preprocess, model, use_cache, lm)

    def read_line(self, image: Any, *, model: str | None = None, lm: bool | None = None) -> PageResult:
        """The whole image read as one text line (no detection), shaped like a page of one line."""
        from ocr.detect.geometry import page_char_quads, rotate

        started = time.perf_counter()
        rgb = load_image(image)
        res = self.reader(model).recognize([rgb], lm=lm)[0]
        h, w = rgb.shape[:2]
        quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        lines = []
        if res.text.strip():
            seen = rotate(rgb, res.turned)  # the image as read (a vertical line: turned)
            quads = page_char_quads(quad, res.turned, seen.shape[1], res)
            chars = [PageChar(s.char, s.confidence, q, list(s.candidates)) for s, q in zip(res.chars, quads)]
            lines.append(PageLine([float(v) for v in quad.ravel()], res.text, res.confidence, chars, seen, res))
        elapsed = time.perf_counter() - started
        return PageResult(lines, w, h, 0, {"recognize": elapsed, "total": elapsed}, None, None, rgb)

    def line_view(self, image: Any, *, kind: str = "page", line: int = 0,
                  preprocess: PreprocessConfig | None = None, model: str | None = None,
                  lm: bool | None = None) -> LineView:
        """Line ``line`` of the page as read (``kind="line"``: the whole image, read as one line).

        The same choice for the UI and the REST API: no line -> :class:`NoTextLineError`, an index
        outside the page's lines -> :class:`InvalidLineError`; never a silent fallback to line 0.
        A line image is read here with ``model`` and ``lm`` as asked, so its explanation explains that
        reading (read again inside the explainer, it took the default ``lm``); one that reads as blank is
        explained as the whole image, by the model asked for.
        """
        if kind == "line":
            page = self.read_line(image, model=model, lm=lm)
            if page.lines:
                return self.pick_line(page, 0)
            return LineView(0, load_image(image), "", 0.0, model=check_model(model) if model else None)
        page = self._run(image, preprocess, model, lm=lm)
        return self.pick_line(page, line)

    @staticmethod
    def pick_line(page: PageResult, line: int) -> LineView:
        """Line ``line`` of a page already read (see :meth:`line_view`)."""
        if not page.lines:
            raise NoTextLineError()
        if not 0 <= line < len(page.lines):
            raise InvalidLineError(f"line must be between 0 and {len(page.lines) - 1}")
        ln = page.lines[line]
        crop = ln.crop if ln.crop is not None else page.image
        return LineView(line, crop, ln.text, ln.confidence, ln.chars, ln.line_result,
                        ln.line_result.model if ln.line_result else None)

    # ------------------------------------------------------------ fields

    @staticmethod
    def fields(page: PageResult, *, kind: str | None = None) -> FieldSet:
        """The key fields of a page already read (an ``ocr.fields.FieldSet``: total, date, seller …).

        Separate from :meth:`ocr` so a caller that shows or returns the page decides whether to pay
        for them (10-30 ms a page on one core, BENCHMARKS.md), and the page is never read twice for them.
        ``kind`` forces ``"receipt"`` or ``"zh_vat_invoice"``; by default it is recognised.
        """
        return extract_fields(page, kind)

    # ------------------------------------------------------------ explaining

    def _explainer(self) -> Explainer:
        if self.explainer is None:
            raise ExplainUnavailableError()
        return self.explainer

    def explaining(self, crop: np.ndarray, model: str | None = None) -> Any:
        """The single-network recogniser that produced (or, asked for ``model``, produces) the line.

        ``model``: the line's ``model`` ("fast" / "accurate"), or a model name for a line not read
        yet; "auto" (or a default cascade) reads the line first to learn which network it ends with.
        """
        reader = self.reader(model)
        if getattr(reader, "model_name", None) == "auto":
            return reader.for_model(reader.recognize_one(crop).model)
        return reader

    def explain_line(self, crop: np.ndarray, *, methods: Sequence[str] = DEFAULT_METHODS,
                     char_index: int | None = None, progress: Callable | None = None,
                     model: str | None = None, reading: LineResult | None = None) -> dict:
        """The explanation of one line image (see ``explain.explain_line`` for the answer's shape), of
        the network that read it: pass the line's ``model`` (:attr:`LineView.model`).

        ``reading``: what the page read there (``LineView.line_result``), so the explanation explains
        exactly those characters (an int8 engine may read a few differently from the float torch model
        that explains); otherwise the crop is read again."""
        recognizer = self.explaining(crop, reading.model if reading is not None else model)
        extra = {"reading": reading} if reading is not None else {}
        out = self._explainer().explain_line(recognizer, crop, methods=tuple(methods), char_index=char_index,
                                             progress=progress, **extra)
        return {**out, "model": getattr(recognizer, "model_name", "fast")}

    def attribute_errors(self, view: LineView, truth: str) -> Any:
        """Which characters of the line were misread against ``truth``, and where the evidence was."""
        recognizer = self.explaining(view.crop, view.model)
        same = view.line_result is not None and view.line_result.model == getattr(recognizer, "model_name", "fast")
        return self._explainer().attribute_errors(recognizer, view.crop, truth,
                                                  result=view.line_result if same else None)

    def attribute_preprocessing(self, view: LineView) -> Any:
        """The line re-read with each preprocessing step toggled: which step helps or hurts."""
        return self._explainer().attribute_preprocessing(self.explaining(view.crop, view.model), view.crop)

    def methods(self) -> tuple[str, ...]:
        """The explanation methods a request may name."""
        return tuple(self._explainer().METHODS)

    def model_hooks(self) -> int:
        """Hooks on the recognisers' torch models: 0 unless an explanation is running right now."""
        if self.explainer is None:
            return 0
        models = getattr(self.pipeline, "models", None)
        if models is not None:  # the torch models are built by the first explanation: none, none hooked
            return sum(self.explainer.count_hooks(m) for m in models.torch_models())
        if not getattr(self.recognizer, "model_built", True):
            return 0
        return self.explainer.count_hooks(self.recognizer.model)


def page_payload(page: PageResult) -> dict[str, Any]:
    """The REST answer's fields for one read page (text, confidence, lines with characters, size, timings)."""
    data = page.to_dict()
    return {"text": data["text"], "confidence": data["confidence"], "lines": data["lines"],
            "width": data.get("width"), "height": data.get("height"), "rotation": data.get("rotation", 0),
            "timings_ms": data.get("timings_ms", {})}


def weights_fingerprint() -> str:
    """SHA-256 over the recogniser's and the detectors' weights and the charset (cache keys, health)."""
    from ocr.engines import sha256_of

    digest = hashlib.sha256()
    for name in FINGERPRINT_FILES:
        try:
            part = sha256_of(WEIGHTS_DIR / name)
        except OSError:
            part = "missing"
        digest.update(part.encode())
    return digest.hexdigest()
