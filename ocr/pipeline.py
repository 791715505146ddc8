"""Whole-page OCR: preprocess → detect lines → rectify → recognise, one call.

    pipeline = OCRPipeline.load()
    page = pipeline.run("invoice.jpg")
    page.text, [(line.text, line.confidence, line.box) for line in page.lines]

Results are cached by image content (an LRU bounded in entries and in bytes), so
repeated examples in the demo come back instantly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from ocr.detect import (
    VARIANT_WEIGHTS,
    ClassicalDetector,
    LazyArray,
    TextBox,
    TextDetector,
    crop_line,
    rotate,
    sort_reading_order,
)
from ocr.imageio import load_image
from ocr.preprocess import PreprocessConfig, Preprocessor, PreprocessResult
from ocr.recognizer import LineResult, Recognizer

log = logging.getLogger(__name__)

#: lines recognised at 0° and 180° to decide whether a page is upside down
ORIENTATION_PROBE_LINES = 6
#: names ``OCRPipeline.load(detector=...)`` takes
DETECTORS = ("db", *VARIANT_WEIGHTS, "classical")
#: a 180° reading must beat the upright one by this much mean confidence to win
ORIENTATION_MARGIN = 0.1
#: memory the result cache may hold (env ``OCR_CACHE_MB``): a cached page keeps its image, every
#: line crop and the preprocessing steps' pictures, ~8 MB for a 1000x700 invoice and hundreds of
#: MB for a large photo, so 64 entries alone could take gigabytes
DEFAULT_CACHE_MB = 256


@dataclass
class PageChar:
    char: str
    confidence: float
    box: list[float]  # x1,y1,...,x4,y4 in page coordinates
    candidates: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class PageLine:
    box: list[float]  # x1,y1,x2,y2,x3,y3,x4,y4 clockwise from top-left, page coordinates
    text: str
    confidence: float
    chars: list[PageChar]
    crop: np.ndarray | None = None  # the rectified line image the recogniser read
    line_result: LineResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box],
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "chars": [{"char": c.char, "confidence": round(c.confidence, 4), "box": [round(v, 1) for v in c.box],
                       "candidates": [[ch, round(p, 4)] for ch, p in c.candidates]} for c in self.chars],
        }


@dataclass
class PageResult:
    lines: list[PageLine]
    width: int
    height: int
    rotation: int = 0  # degrees the input was rotated (counter-clockwise) before reading
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    preprocess: PreprocessResult | None = None
    #: detector probability map over the input page, in [0, 1]; made on first read (``ocr.detect.LazyArray``)
    prob_map: np.ndarray | Callable[[], np.ndarray] | None = LazyArray()  # type: ignore[assignment]
    image: np.ndarray | None = None  # the input page (RGB); every box is in its coordinates
    processed: np.ndarray | None = None  # the page as the detector saw it (preprocessed, rotated)

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines if line.text)

    @property
    def confidence(self) -> float:
        chars = sum(len(ln.text) for ln in self.lines)
        if not chars:
            return 0.0
        return sum(ln.confidence * len(ln.text) for ln in self.lines) / chars

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(self.confidence, 4), "width": self.width,
                "height": self.height, "rotation": self.rotation,
                "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
                "lines": [line.to_dict() for line in self.lines]}


def _quad_point(quad: np.ndarray, u: float, v: float) -> tuple[float, float]:
    """Bilinear point in a quadrilateral (tl, tr, br, bl) at relative (u, v) in [0,1]²."""
    tl, tr, br, bl = quad
    top = tl + (tr - tl) * u
    bottom = bl + (br - bl) * u
    p = top + (bottom - top) * v
    return float(p[0]), float(p[1])


def _rot90_matrix(angle: int, width: int, height: int) -> np.ndarray:
    """3x3 map from a page to the same page turned counter-clockwise by ``angle`` (``detect.rotate``)."""
    angle %= 360
    if angle == 90:
        return np.array([[0, 1, 0], [-1, 0, width - 1], [0, 0, 1]], np.float64)
    if angle == 180:
        return np.array([[-1, 0, width - 1], [0, -1, height - 1], [0, 0, 1]], np.float64)
    if angle == 270:
        return np.array([[0, -1, height - 1], [1, 0, 0], [0, 0, 1]], np.float64)
    return np.eye(3)


def _map_points(flat: list[float], matrix: np.ndarray) -> list[float]:
    pts = np.asarray(flat, np.float64).reshape(-1, 2)
    pts = np.hstack([pts, np.ones((len(pts), 1))]) @ matrix.T
    return [float(v) for v in pts[:, :2].reshape(-1)]


def _reorder_quad(flat: list[float]) -> list[float]:
    """Clockwise from the top-left again after a rotation moved the corners."""
    pts = np.asarray(flat, np.float64).reshape(4, 2)
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return [float(v) for v in np.roll(pts, -start, axis=0).reshape(-1)]


def char_quads(quad: np.ndarray, crop_width: int, line: LineResult) -> list[list[float]]:
    """Each character's x-range in the crop, mapped back onto the page quadrilateral."""
    out = []
    for span in line.chars:
        u1, u2 = span.x_start / max(crop_width, 1), span.x_end / max(crop_width, 1)
        pts = [_quad_point(quad, u1, 0), _quad_point(quad, u2, 0), _quad_point(quad, u2, 1), _quad_point(quad, u1, 1)]
        out.append([c for p in pts for c in p])
    return out


def result_nbytes(result: PageResult) -> int:
    """Bytes of the arrays a cached result keeps alive, each buffer once, plus its full-size
    probability map (float32, made when the UI shows it): the cache's memory estimate."""
    buffers: dict[int, int] = {}

    def add(array: Any) -> None:
        if isinstance(array, np.ndarray):
            owner = array
            while isinstance(owner.base, np.ndarray):
                owner = owner.base
            buffers[id(owner)] = owner.nbytes

    add(result.image)
    add(result.processed)
    if result.preprocess is not None:
        add(result.preprocess.image)
        for step in result.preprocess.steps:
            add(step.image)
    for line in result.lines:
        add(line.crop)
    return sum(buffers.values()) + 4 * result.width * result.height


class OCRPipeline:
    """One pipeline for invoices, receipts and photos; thread-safe, results cached."""

    def __init__(self, recognizer: Recognizer, detector: TextDetector | ClassicalDetector,
                 preprocess: PreprocessConfig | None = None, cache_size: int = 64,
                 cache_bytes: int | None = None) -> None:
        self.recognizer = recognizer
        self.detector = detector
        self.preprocess = preprocess or PreprocessConfig()
        self.cache_size = cache_size
        self.cache_bytes = cache_bytes if cache_bytes is not None else \
            int(float(os.environ.get("OCR_CACHE_MB", DEFAULT_CACHE_MB)) * 2**20)
        self._cache: OrderedDict[str, PageResult] = OrderedDict()
        self._cache_sizes: dict[str, int] = {}
        self._cache_total = 0
        self._cache_lock = threading.Lock()

    @classmethod
    def load(cls, *, threads: int | None = None, detector: str = "db", **kwargs: Any) -> "OCRPipeline":
        """``detector``: "tiny" or "small" (PP-OCRv6 DB releases), "db" (the default release,
        ``ocr.detect.DEFAULT_VARIANT``) or "classical" (plain OpenCV, no network)."""
        if detector not in DETECTORS:
            raise ValueError(f"unknown detector {detector!r} (choose from {', '.join(DETECTORS)})")
        recognizer = Recognizer.load(threads=threads)
        if detector == "classical":
            det: TextDetector | ClassicalDetector = ClassicalDetector()
        else:
            det = TextDetector.load(threads=threads, variant=None if detector == "db" else detector)
        return cls(recognizer, det, **kwargs)

    # ------------------------------------------------------------ cache

    def _key(self, rgb: np.ndarray, config: PreprocessConfig, options: dict) -> str:
        # the array's own buffer, not ``tobytes()``: same digest without a copy of the page (100 MB at 35 MP)
        digest = hashlib.sha256(np.ascontiguousarray(rgb).data)
        digest.update(repr(rgb.shape).encode())
        digest.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
        digest.update(json.dumps(options, sort_keys=True).encode())
        return digest.hexdigest()

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._cache_sizes.clear()
            self._cache_total = 0

    @property
    def cache_nbytes(self) -> int:
        """Estimated bytes the cached results hold."""
        return self._cache_total

    def _remember(self, key: str, result: PageResult) -> None:
        """Cache ``result``; evict the oldest until both bounds hold. Too big for the budget: not kept."""
        size = result_nbytes(result)
        if size > self.cache_bytes:
            return
        with self._cache_lock:
            if key in self._cache:
                self._cache_total -= self._cache_sizes[key]
            self._cache[key] = result
            self._cache.move_to_end(key)
            self._cache_sizes[key] = size
            self._cache_total += size
            while len(self._cache) > self.cache_size or self._cache_total > self.cache_bytes:
                old, _ = self._cache.popitem(last=False)
                self._cache_total -= self._cache_sizes.pop(old)

    # ------------------------------------------------------------ stages

    def _read_lines(self, page: np.ndarray, boxes: list[TextBox]) -> tuple[list[np.ndarray], list[LineResult]]:
        crops = [crop_line(page, box) for box in boxes]
        keep = [i for i, c in enumerate(crops) if c.size and min(c.shape[:2]) >= 2]
        results = self.recognizer.recognize([crops[i] for i in keep]) if keep else []
        by_index = dict(zip(keep, results))
        empty = LineResult("", 0.0, [], 0, 0)
        return crops, [by_index.get(i, empty) for i in range(len(boxes))]

    def _upside_down(self, crops: list[np.ndarray], results: list[LineResult]) -> bool:
        """Read the longest lines rotated 180°; a clearly more confident reading means the page is upside down.

        The flipped reading can win only if the upright one is below ``1 - ORIENTATION_MARGIN``
        (no mean confidence exceeds 1), so above that the probe is skipped: same answer, and the
        probe re-reads the page's widest lines (about 40% of recognition time on web images).
        """
        order = sorted(range(len(crops)), key=lambda i: -crops[i].shape[1])[:ORIENTATION_PROBE_LINES]
        if not order:
            return False
        upright = float(np.mean([results[i].confidence for i in order]))
        if upright + ORIENTATION_MARGIN >= 1.0:
            return False
        flipped = self.recognizer.recognize([np.ascontiguousarray(crops[i][::-1, ::-1]) for i in order])
        return float(np.mean([r.confidence for r in flipped])) > upright + ORIENTATION_MARGIN

    def _detect(self, page: np.ndarray):
        return self.detector.detect(page)

    def run(self, image: Any, *, preprocess: PreprocessConfig | None = None, auto_rotate: bool = True,
            use_cache: bool = True) -> PageResult:
        started = time.perf_counter()
        rgb = load_image(image)
        config = preprocess or self.preprocess
        options = {"auto_rotate": auto_rotate}
        key = self._key(rgb, config, options)
        if use_cache:
            with self._cache_lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
        timings: dict[str, float] = {"load": time.perf_counter() - started}

        t = time.perf_counter()
        # ``rgb`` is this call's own copy (load_image), so an untouched page need not be copied again
        prep = Preprocessor(config).run(rgb, copy=False)
        page = prep.image
        to_page = np.eye(3)  # input-page coordinates -> coordinates of ``page``
        deskew = next((s for s in prep.steps if s.name == "deskew" and s.applied), None)
        if deskew is not None and "matrix" in deskew.params:
            to_page = np.vstack([np.asarray(deskew.params["matrix"], np.float64), [0, 0, 1]])
        timings["preprocess"] = time.perf_counter() - t

        t = time.perf_counter()
        detection = self._detect(page)
        rotation = 0
        if auto_rotate and detection.boxes:
            tall = sum(1 for b in detection.boxes if b.height > 1.5 * b.width)
            if tall > len(detection.boxes) / 2:  # text runs vertically: the page lies on its side
                rotated = rotate(page, 90)
                alt = self._detect(rotated)
                if len(alt.boxes) >= len(detection.boxes) // 2:
                    to_page = _rot90_matrix(90, page.shape[1], page.shape[0]) @ to_page
                    page, detection, rotation = rotated, alt, 90
        boxes = sort_reading_order(detection.boxes)
        timings["detect"] = time.perf_counter() - t

        t = time.perf_counter()
        crops, results = self._read_lines(page, boxes)
        if auto_rotate and self._upside_down(crops, results):
            to_page = _rot90_matrix(180, page.shape[1], page.shape[0]) @ to_page
            page = rotate(page, 180)
            rotation = (rotation + 180) % 360
            detection = self._detect(page)
            boxes = sort_reading_order(detection.boxes)
            crops, results = self._read_lines(page, boxes)
        timings["recognize"] = time.perf_counter() - t

        to_input = np.linalg.inv(to_page)
        moved = not np.allclose(to_page, np.eye(3))

        def back(flat: list[float]) -> list[float]:
            return _reorder_quad(_map_points(flat, to_input)) if moved else flat

        lines = []
        for box, crop, res in zip(boxes, crops, results):
            if not res.text.strip():
                continue
            quads = char_quads(box.points.astype(np.float64), crop.shape[1], res)
            chars = [PageChar(span.char, span.confidence, back(q), list(span.candidates))
                     for span, q in zip(res.chars, quads)]
            lines.append(PageLine(back(box.as_list()), res.text, res.confidence, chars, crop, res))
        size = (rgb.shape[1], rgb.shape[0])

        def prob_map() -> np.ndarray | None:  # only the UI reads it: built on demand
            prob = detection.prob_map
            if moved and prob is not None:
                prob = cv2.warpAffine(prob.astype(np.float32), to_input[:2], size, flags=cv2.INTER_LINEAR,
                                      borderValue=0.0)
            return prob

        timings["total"] = time.perf_counter() - started
        result = PageResult(lines, rgb.shape[1], rgb.shape[0], rotation, timings, prep, prob_map, rgb, page)
        if use_cache:
            self._remember(key, result)
        return result

    def run_batch(self, images: Sequence[Any], **kwargs: Any) -> list[PageResult]:
        return [self.run(image, **kwargs) for image in images]
