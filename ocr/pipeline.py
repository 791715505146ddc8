"""Whole-page OCR: preprocess → detect lines → (turn the page) → crop → recognise, one call.

    pipeline = OCRPipeline.load()                # model="fast" | "accurate" | "auto"
    page = pipeline.run("invoice.jpg")           # or run(..., model="accurate") for this page only
    page.text, [(line.text, line.confidence, line.box) for line in page.lines]

This module only orders the stages; each lives in its own place (``ocr.preprocess``,
``ocr.detect``, ``ocr.orientation``, ``ocr.recognize``). Results are cached by image content
(``ocr.cache``), so repeated examples in the demo come back instantly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from ocr.cache import DEFAULT_CACHE_MB, ResultCache, page_keys
from ocr.detect import (VARIANT_WEIGHTS, ClassicalDetector, DetectionResult, TextBox, TextDetector, crop_line,
                        rotate)
from ocr.detect.geometry import map_points, page_char_quads, reorder_quad, rot90_matrix
from ocr.detect.ruling import reading_order
from ocr.imageio import load_image
from ocr.orientation import lies_sideways, upside_down
from ocr.preprocess import PreprocessConfig, Preprocessor, PreprocessResult
from ocr.recognize.choice import Recognizers
from ocr.results import LineResult, PageChar, PageLine, PageResult

log = logging.getLogger(__name__)

#: names ``OCRPipeline.load(detector=...)`` takes
DETECTORS = ("db", *VARIANT_WEIGHTS, "classical")
#: bounds of the preprocessing-step cache: six steps of a few recent pages (a 1000x700 RGB step is 2 MB)
STEP_CACHE_ENTRIES = 36
STEP_CACHE_BYTES = 96 * 2**20


@dataclass
class _Page:
    """The page as the detector sees it, and the map from input coordinates to it."""

    image: np.ndarray
    to_page: np.ndarray  # 3x3: input-page coordinates -> coordinates of ``image``
    detection: DetectionResult
    boxes: list[TextBox]
    rotation: int = 0


class OCRPipeline:
    """One pipeline for invoices, receipts and photos; thread-safe, results cached."""

    def __init__(self, recognizer: Any, detector: TextDetector | ClassicalDetector,
                 preprocess: PreprocessConfig | None = None, cache_size: int = 64,
                 cache_bytes: int | None = None) -> None:
        """``recognizer``: a recogniser (its model the default; the others are loaded when a run
        asks for them) or :class:`~ocr.recognize.choice.Recognizers`. ``cache_bytes``: memory the
        result cache may hold (default ``OCR_CACHE_MB``, 256 MB)."""
        self.models = recognizer if isinstance(recognizer, Recognizers) else Recognizers.of(recognizer)
        self.recognizer = self.models.get()
        self.detector = detector
        self.preprocess = preprocess or PreprocessConfig()
        if cache_bytes is None:
            from ocr.settings import Settings

            cache_bytes = Settings.from_env().cache_bytes
        self.cache = ResultCache(cache_size, cache_bytes)
        #: each preprocessing step's output, so a settings change recomputes from the changed step on
        self.step_cache = ResultCache(STEP_CACHE_ENTRIES, STEP_CACHE_BYTES, size_of=lambda step: step.image.nbytes)

    @classmethod
    def load(cls, *, threads: int | None = None, detector: str = "db", model: str = "fast", engine: str = "auto",
             lm: bool | None = None, **kwargs: Any) -> "OCRPipeline":
        """``detector``: "tiny" or "small" (PP-OCRv6 DB releases), "db" (the default release,
        ``ocr.detect.DEFAULT_VARIANT``) or "classical" (plain OpenCV, no network). ``model``: the
        default recogniser, "fast", "accurate" or "auto" (``ocr.recognize.models``). ``engine``: what
        runs the networks (``ocr.engines.ENGINES``; "auto": int8 where the model card says it is within
        bounds, float elsewhere). ``lm``: decode with the character language model by default (None:
        per model, as chosen on the validation slice; ``run(..., lm=)`` decides per page)."""
        if detector not in DETECTORS:
            raise ValueError(f"unknown detector {detector!r} (choose from {', '.join(DETECTORS)})")
        # the default recogniser is loaded now: bad weights fail at start
        recognizer = Recognizers(model, threads=threads, engine=engine, lm=lm)
        if detector == "classical":
            det: TextDetector | ClassicalDetector = ClassicalDetector()
        else:
            det = TextDetector.load(threads=threads, variant=None if detector == "db" else detector, engine=engine)
        return cls(recognizer, det, **kwargs)

    def clear_cache(self) -> None:
        self.cache.clear()
        self.step_cache.clear()

    # ------------------------------------------------------------ stages

    @staticmethod
    def _read_lines(recognizer: Any, page: np.ndarray, boxes: list[TextBox],
                    lm: bool | None = None) -> tuple[list[np.ndarray], list[LineResult]]:
        crops = [crop_line(page, box) for box in boxes]
        keep = [i for i, c in enumerate(crops) if c.size and min(c.shape[:2]) >= 2]
        results = recognizer.recognize([crops[i] for i in keep], lm=lm) if keep else []
        by_index = dict(zip(keep, results))
        empty = LineResult("", 0.0, [], 0, 0)
        return crops, [by_index.get(i, empty) for i in range(len(boxes))]

    def _detect(self, image: np.ndarray, to_page: np.ndarray, auto_rotate: bool) -> _Page:
        """Detect lines; a page lying on its side is turned 90° when that finds enough lines."""
        detection = self.detector.detect(image)
        page = _Page(image, to_page, detection, [])
        if auto_rotate and detection.boxes and lies_sideways(detection.boxes):
            rotated = rotate(image, 90)
            alt = self.detector.detect(rotated)
            if len(alt.boxes) >= len(detection.boxes) // 2:
                page = _Page(rotated, rot90_matrix(90, image.shape[1], image.shape[0]) @ to_page, alt, [], 90)
        page.boxes = reading_order(page.image, page.detection.boxes)
        return page

    def _recognize(self, page: _Page, auto_rotate: bool, recognizer: Any,
                   lm: bool | None = None) -> tuple[list[np.ndarray], list[LineResult]]:
        """Read every line; an upside-down page is turned 180°, detected and read again.

        A cascade reads with its first stage, decides the orientation on those readings, then
        re-reads only the unsure lines of the page the right way up (``refine``)."""
        first = recognizer.first_stage
        crops, results = self._read_lines(first, page.image, page.boxes, lm)
        if auto_rotate and upside_down(first, crops, results):
            page.to_page = rot90_matrix(180, page.image.shape[1], page.image.shape[0]) @ page.to_page
            page.image = rotate(page.image, 180)
            page.rotation = (page.rotation + 180) % 360
            page.detection = self.detector.detect(page.image)
            page.boxes = reading_order(page.image, page.detection.boxes)
            crops, results = self._read_lines(first, page.image, page.boxes, lm)
        return crops, recognizer.refine(crops, results, lm=lm)

    @staticmethod
    def _lines(page: _Page, crops: list[np.ndarray], results: list[LineResult],
               size: tuple[int, int]) -> list[PageLine]:
        """Non-empty readings as page lines, boxes mapped back to the input's coordinates (``size``: its width and
        height; a corner a deskew turned past the edge is held on it)."""
        to_input = np.linalg.inv(page.to_page)
        moved = not np.allclose(page.to_page, np.eye(3))
        bounds = np.array(size * 4, np.float64)

        def back(flat: list[float]) -> list[float]:
            if not moved:
                return flat
            return [float(v) for v in np.clip(reorder_quad(map_points(flat, to_input)), 0.0, bounds)]

        lines = []
        for box, crop, res in zip(page.boxes, crops, results):
            if not res.text.strip():
                continue
            seen = rotate(crop, res.turned)  # the crop as read (explanations explain this image)
            quads = page_char_quads(box.points, res.turned, seen.shape[1], res)
            chars = [PageChar(span.char, span.confidence, back(q), list(span.candidates))
                     for span, q in zip(res.chars, quads)]
            lines.append(PageLine(back(box.as_list()), res.text, res.confidence, chars, seen, res))
        return lines

    @staticmethod
    def _prob_map(page: _Page, size: tuple[int, int]) -> Any:
        """The detector's probability map in input coordinates, made on demand (only the UI reads it)."""
        to_input = np.linalg.inv(page.to_page)
        moved = not np.allclose(page.to_page, np.eye(3))
        detection = page.detection

        def prob_map() -> np.ndarray | None:
            prob = detection.prob_map
            if moved and prob is not None:
                prob = cv2.warpAffine(prob.astype(np.float32), to_input[:2], size, flags=cv2.INTER_LINEAR,
                                      borderValue=0.0)
            return prob

        return prob_map

    @staticmethod
    def _deskew_matrix(prep: PreprocessResult) -> np.ndarray:
        """Input-page coordinates -> the preprocessed page's (deskew may have rotated it)."""
        deskew = next((s for s in prep.steps if s.name == "deskew" and s.applied), None)
        if deskew is not None and "matrix" in deskew.params:
            return np.vstack([np.asarray(deskew.params["matrix"], np.float64), [0, 0, 1]])
        return np.eye(3)

    def run(self, image: Any, *, preprocess: PreprocessConfig | None = None, auto_rotate: bool = True,
            use_cache: bool = True, model: str | None = None, lm: bool | None = None) -> PageResult:
        """``model``: "fast", "accurate" or "auto" for this page (None: the pipeline's default);
        ``lm``: decode with the character language model (None: the recogniser's default)."""
        started = time.perf_counter()
        recognizer = self.models.get(model)
        rgb = load_image(image)
        config = preprocess or self.preprocess
        image_key, key = page_keys(rgb, config, {"auto_rotate": auto_rotate, "model": recognizer.model_name,
                                                 "lm": recognizer.uses_lm(lm)})
        cached = self.cache.get(key) if use_cache else None
        if cached is not None:
            return cached
        timings: dict[str, float] = {"load": time.perf_counter() - started}

        t = time.perf_counter()
        # ``rgb`` is this call's own copy (load_image), so an untouched page need not be copied again
        prep = Preprocessor(config).run(rgb, copy=False, steps_cache=self.step_cache if use_cache else None,
                                        image_key=image_key)
        timings["preprocess"] = time.perf_counter() - t

        t = time.perf_counter()
        page = self._detect(prep.image, self._deskew_matrix(prep), auto_rotate)
        timings["detect"] = time.perf_counter() - t

        t = time.perf_counter()
        crops, results = self._recognize(page, auto_rotate, recognizer, lm)
        timings["recognize"] = time.perf_counter() - t

        size = (rgb.shape[1], rgb.shape[0])
        lines = self._lines(page, crops, results, size)
        timings["total"] = time.perf_counter() - started
        result = PageResult(lines, rgb.shape[1], rgb.shape[0], page.rotation, timings, prep,
                            self._prob_map(page, size), rgb, page.image)
        if use_cache:
            self.cache.put(key, result)
        return result

    def run_batch(self, images: Sequence[Any], **kwargs: Any) -> list[PageResult]:
        return [self.run(image, **kwargs) for image in images]


__all__ = ["DEFAULT_CACHE_MB", "DETECTORS", "OCRPipeline"]
