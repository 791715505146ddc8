"""The one service both web faces call: the Gradio UI and the REST API read and explain through it.

    service = OCRService.load(settings)        # model loaded once
    page = service.ocr(image)                  # a PageResult (kind="line": the image is one line)
    view = service.line_view(image, line=2)    # the crop of detected line 2, as read
    service.explain_line(view.crop, methods=("gradcam", "alignment"))

Explanations are wired in by whoever builds the service (``OCRService.load(settings,
explainer=explain)``): ``explain`` builds on ``ocr``, so ``ocr`` never imports it (no cycle).
Every refusal is an :class:`~ocr.errors.OCRError` subclass with a stable ``code``; turning
those into HTTP answers or UI messages is the web faces' business (``demo/``), never this one's.
Thread-safe: the pipeline, the recogniser and the explanations each guard their shared state.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ocr.errors import InvalidImageError, OCRError
from ocr.imageio import load_image
from ocr.pipeline import OCRPipeline
from ocr.preprocess import PreprocessConfig, config_from_dict
from ocr.results import LineResult, PageChar, PageLine, PageResult
from ocr.settings import WEIGHTS_DIR, Settings

#: what an explanation request runs unless it names methods
DEFAULT_METHODS = ("gradcam", "alignment")
#: the files whose digests make the weights' fingerprint (health answers, cache keys)
FINGERPRINT_FILES = ("crnn.pt", "det.pt", "det_small.pt", "charset.txt")


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


@dataclass
class LineView:
    """One line ready to be explained: the crop the recogniser read, and what it read there."""

    index: int
    crop: np.ndarray
    text: str
    confidence: float
    chars: list[PageChar] = field(default_factory=list)
    line_result: LineResult | None = None


class OCRService:
    """The model, loaded once, and what the API and the demo do with it. Thread-safe."""

    def __init__(self, pipeline: Any, *, weights_sha256: str | None = None,
                 explainer: Explainer | None = None) -> None:
        self.pipeline = pipeline
        self.explainer = explainer
        self.recognizer = pipeline.recognizer
        self.weights_sha256 = weights_sha256
        self.loaded_at = time.time()

    @classmethod
    def load(cls, settings: Settings | None = None, *, threads: int | None = None,
             explainer: Explainer | None = None) -> "OCRService":
        """Load the recogniser and the detector; a :class:`ModelLoadError` if the weights are unusable.

        ``threads`` wins over ``settings.threads`` (``OCR_THREADS``)."""
        settings = settings or Settings.from_env()
        pipeline = OCRPipeline.load(threads=threads or settings.threads, cache_bytes=settings.cache_bytes,
                                    engine=settings.engine)
        return cls(pipeline, weights_sha256=weights_fingerprint(), explainer=explainer)

    # ------------------------------------------------------------ reading

    @staticmethod
    def preprocess_config(options: dict | None) -> PreprocessConfig | None:
        """The pipeline's preprocessing settings from a (partial) dict; ``ValueError`` if invalid."""
        return config_from_dict(options) if options else None

    def ocr(self, image: Any, *, preprocess: PreprocessConfig | None = None, kind: str = "page") -> PageResult:
        """A :class:`~ocr.results.PageResult`; ``kind="line"`` reads the whole image as one line."""
        if kind == "line":
            return self.read_line(image)
        return self.pipeline.run(image, preprocess=preprocess)

    def read_line(self, image: Any) -> PageResult:
        """The whole image read as one text line (no detection), shaped like a page of one line."""
        from ocr.detect.geometry import char_quads

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

    def line_view(self, image: Any, *, kind: str = "page", line: int = 0,
                  preprocess: PreprocessConfig | None = None) -> LineView:
        """Line ``line`` of the page as read (``kind="line"``: the whole image, not read yet).

        The same choice for the UI and the REST API: no line -> :class:`NoTextLineError`, an index
        outside the page's lines -> :class:`InvalidLineError`; never a silent fallback to line 0.
        """
        if kind == "line":
            return LineView(0, load_image(image), "", 0.0)
        page = self.pipeline.run(image, preprocess=preprocess)
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
        return LineView(line, crop, ln.text, ln.confidence, ln.chars, ln.line_result)

    # ------------------------------------------------------------ explaining

    def _explainer(self) -> Explainer:
        if self.explainer is None:
            raise ExplainUnavailableError()
        return self.explainer

    def explain_line(self, crop: np.ndarray, *, methods: Sequence[str] = DEFAULT_METHODS,
                     char_index: int | None = None, progress: Callable | None = None,
                     reading: LineResult | None = None) -> dict:
        """The explanation of one line image (see ``explain.explain_line`` for the answer's shape).

        ``reading``: what the page read there (``LineView.line_result``), so the explanation explains
        exactly those characters; otherwise the crop is read again."""
        extra = {"reading": reading} if reading is not None else {}
        return self._explainer().explain_line(self.recognizer, crop, methods=tuple(methods), char_index=char_index,
                                              progress=progress, **extra)

    def attribute_errors(self, view: LineView, truth: str) -> Any:
        """Which characters of the line were misread against ``truth``, and where the evidence was."""
        return self._explainer().attribute_errors(self.recognizer, view.crop, truth, result=view.line_result)

    def attribute_preprocessing(self, view: LineView) -> Any:
        """The line re-read with each preprocessing step toggled: which step helps or hurts."""
        return self._explainer().attribute_preprocessing(self.recognizer, view.crop)

    def methods(self) -> tuple[str, ...]:
        """The explanation methods a request may name."""
        return tuple(self._explainer().METHODS)

    def model_hooks(self) -> int:
        """Hooks on the recogniser's torch model: 0 unless an explanation is running right now."""
        if self.explainer is None or not getattr(self.recognizer, "model_built", True):
            return 0  # the torch model is built by the first explanation: nothing can hook it yet
        return self.explainer.count_hooks(self.recognizer.model)


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
