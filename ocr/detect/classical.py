"""A plain-OpenCV text-line detector, for clean scans and for telling a line crop from a page."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from ocr.detect.detector import DetectionResult, as_rgb
from ocr.detect.geometry import TextBox
from ocr.detect.postprocess import DEFAULT_BOX_THRESH, DEFAULT_LIMIT_SIDE, DEFAULT_THRESH, DEFAULT_UNCLIP_RATIO, MIN_SIZE


class ClassicalDetector:
    """Plain-OpenCV line finder for clean scans (dark text on a light, even background,
    or the reverse): no network, no training, predictable.

    Otsu (or adaptive) binarisation -> horizontal closing about 1.2 character
    heights wide, which smears the characters of a line (and the words, whose
    gaps are narrower) into one blob without joining lines or distant columns
    -> connected components -> axis-aligned boxes; fragments much flatter than
    a line (i dots, accents, split strokes of 三) are merged into the line
    they touch. ``prob_map`` is the closed line mask (0/1). ``score`` is the
    fraction of the box the mask covers. The keyword arguments of ``detect``
    exist for interface compatibility with ``TextDetector``; only
    ``limit_side`` is used (very large pages are processed at about twice that).
    """

    def __init__(self, *, adaptive: bool = False, min_contrast: int = 24) -> None:
        self.adaptive = adaptive
        self.min_contrast = min_contrast

    @classmethod
    def load(cls, weights: Path | str | None = None, threads: int | None = None) -> "ClassicalDetector":
        return cls()

    def binarize(self, gray: np.ndarray) -> np.ndarray:
        """Text pixels = 255."""
        if self.adaptive:
            block = max(15, (min(gray.shape) // 20) | 1)
            ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY_INV, block, 10)
        else:
            _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
        if np.count_nonzero(ink) > ink.size // 2:  # light text on a dark background
            ink = 255 - ink
        return ink

    def detect(self, rgb: np.ndarray, *, limit_side: int | None = DEFAULT_LIMIT_SIDE,
               box_thresh: float | None = DEFAULT_BOX_THRESH, thresh: float = DEFAULT_THRESH,
               unclip_ratio: float = DEFAULT_UNCLIP_RATIO) -> DetectionResult:
        started = time.perf_counter()
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        limit_side = limit_side or DEFAULT_LIMIT_SIDE
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, 2.0 * limit_side / max(h, w))
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        empty = DetectionResult([], np.zeros((h, w), np.float32), 0.0)
        if int(gray.max()) - int(gray.min()) < self.min_contrast:
            empty.seconds = time.perf_counter() - started
            return empty
        ink = self.binarize(gray)
        n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        heights = stats[1:, cv2.CC_STAT_HEIGHT][stats[1:, cv2.CC_STAT_AREA] >= 4]
        heights = heights[heights >= 3]
        if heights.size == 0:
            empty.seconds = time.perf_counter() - started
            return empty
        char_h = float(np.median(heights))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(round(1.2 * char_h))), 1))
        # pad before closing so lines touching the border are not eroded away
        k = kernel.shape[1]
        padded = cv2.copyMakeBorder(ink, 0, 0, k, k, cv2.BORDER_CONSTANT, value=0)
        mask = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[:, k:-k]
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        rects = [list(map(int, stats[i, :4])) for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 4]
        rects = _merge_fragments(rects)
        boxes = []
        sx, sy = w / gray.shape[1], h / gray.shape[0]
        for x, y, bw, bh in rects:
            if bw < MIN_SIZE or bh < MIN_SIZE:
                continue
            score = float(np.count_nonzero(mask[y:y + bh, x:x + bw])) / float(bw * bh)
            pad = max(1.0, 0.15 * bh)
            x1, y1 = max(0.0, (x - pad) * sx), max(0.0, (y - pad) * sy)
            x2, y2 = min(w - 1.0, (x + bw + pad) * sx), min(h - 1.0, (y + bh + pad) * sy)
            pts = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
            boxes.append(TextBox(pts, score))
        prob = mask.astype(np.float32) / 255.0
        if prob.shape != (h, w):
            prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_NEAREST)
        return DetectionResult(boxes, prob, time.perf_counter() - started)


def _merge_fragments(rects: list[list[int]]) -> list[list[int]]:
    """Merge boxes much flatter than the median line into an overlapping-in-x line box
    that is vertically close (within half the median line height)."""
    if len(rects) < 2:
        return rects
    line_h = float(np.median([r[3] for r in rects]))
    rects = sorted(rects, key=lambda r: -r[3])  # tallest first: lines absorb fragments
    merged = True
    while merged:
        merged = False
        for i, small in enumerate(rects):
            if small[3] >= 0.6 * line_h:
                continue
            sx1, sy1, sx2, sy2 = small[0], small[1], small[0] + small[2], small[1] + small[3]
            for j, big in enumerate(rects):
                if j == i:
                    continue
                bx1, by1, bx2, by2 = big[0], big[1], big[0] + big[2], big[1] + big[3]
                overlap_x = min(sx2, bx2) - max(sx1, bx1)
                gap_y = max(by1 - sy2, sy1 - by2, 0)
                if overlap_x > 0 and gap_y <= 0.5 * line_h:
                    x1, y1, x2, y2 = min(sx1, bx1), min(sy1, by1), max(sx2, bx2), max(sy2, by2)
                    rects[j] = [x1, y1, x2 - x1, y2 - y1]
                    del rects[i]
                    merged = True
                    break
            if merged:
                break
    return rects

