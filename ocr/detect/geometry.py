"""Page geometry: text boxes, upright line crops, reading order, quarter turns, and mapping
character ranges of a crop back onto the page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:
    from ocr.results import LineResult


@dataclass
class TextBox:
    points: np.ndarray  # 4x2 float32, clockwise from top-left: TL, TR, BR, BL (image x, y)
    score: float

    @property
    def aabb(self) -> tuple[float, float, float, float]:
        """Axis-aligned bounds (x1, y1, x2, y2)."""
        x1, y1 = self.points.min(axis=0)
        x2, y2 = self.points.max(axis=0)
        return float(x1), float(y1), float(x2), float(y2)

    def as_list(self) -> list[float]:
        """[x1, y1, x2, y2, x3, y3, x4, y4]."""
        return [float(v) for v in self.points.reshape(-1)]

    @property
    def width(self) -> float:
        """Length of the longer of the top and bottom edges."""
        p = self.points
        return float(max(np.linalg.norm(p[1] - p[0]), np.linalg.norm(p[2] - p[3])))

    @property
    def height(self) -> float:
        """Length of the longer of the left and right edges."""
        p = self.points
        return float(max(np.linalg.norm(p[3] - p[0]), np.linalg.norm(p[2] - p[1])))

    @property
    def center(self) -> tuple[float, float]:
        cx, cy = self.points.mean(axis=0)
        return float(cx), float(cy)


# ---------------------------------------------------------------- crops and order

#: an image this much taller than wide may hold a vertical line (or a word on its side): the recogniser
#: reads it upright and, if unsure, turned (``Recognizer._turned_where_better``; PaddleOCR's networks
#: were trained on vertical lines turned 90 degrees counter-clockwise)
TALL_RATIO = 1.5


def is_tall(height: float, width: float) -> bool:
    return height >= TALL_RATIO * width


def turn_quad(quad: np.ndarray, angle: int) -> np.ndarray:
    """The corners [4, 2] (clockwise from the top-left) of the same region once its image is turned
    ``angle`` degrees counter-clockwise (0, 90, 180 or 270): the corner that becomes the top-left first."""
    return np.roll(np.asarray(quad), -((angle % 360) // 90), axis=0)


def crop_line(rgb: np.ndarray, box: TextBox) -> np.ndarray:
    """The quadrilateral rectified to an upright HxWx3 crop.

    Width = the longer of the top/bottom edges, height = the longer of the left/right edges. A tall
    crop stays as it stands: it may be a vertical line or a single tall character (a receipt's
    quantity ``1``), and only reading tells which (the recogniser turns it where that reads better:
    turning every tall box, as PaddleOCR does, read the single tall characters of ``../shared/train``
    at 17-59% instead of 93-94% char accuracy, model card "Vertical lines").
    """
    pts = np.asarray(box.points, np.float32).reshape(4, 2)
    width = max(1, int(round(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[3] - pts[2])))))
    height = max(1, int(round(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))))
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    try:
        if abs(cv2.contourArea(pts)) < 1.0:
            raise cv2.error("degenerate quadrilateral")
        matrix = cv2.getPerspectiveTransform(pts, dst)
        if not np.all(np.isfinite(matrix)):
            raise cv2.error("degenerate quadrilateral")
        crop = cv2.warpPerspective(rgb, matrix, (width, height), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REPLICATE)
    except cv2.error:  # collinear corners: fall back to the axis-aligned bounds
        x1, y1, x2, y2 = (int(round(v)) for v in box.aabb)
        crop = rgb[max(0, y1):max(y1 + 1, y2 + 1), max(0, x1):max(x1 + 1, x2 + 1)]
        crop = cv2.resize(crop, (width, height)) if crop.size else np.zeros((height, width, 3), rgb.dtype)
    return np.ascontiguousarray(crop)


def sort_reading_order(boxes: Sequence[TextBox]) -> list[TextBox]:
    """Top to bottom, then left to right within a row.

    Boxes are taken by vertical centre; a box joins the current row while its
    centre is within half the median box height of the row's mean centre.
    Rows are not split into columns: in a two-column page the two columns'
    lines at the same height interleave (left, right, left, right, ...);
    ``ocr.detect.ruling`` keeps a form's ruled cells whole on top of this, and ``ocr.detect.columns`` reads
    an unruled page's columns of running text one after another.
    """
    boxes = list(boxes)
    if len(boxes) < 2:
        return boxes
    tol = 0.5 * median_height(boxes)
    rows: list[list[TextBox]] = []
    row_cy: list[float] = []
    for box in sorted(boxes, key=lambda b: b.center[1]):
        cy = box.center[1]
        if rows and abs(cy - row_cy[-1]) <= tol:
            rows[-1].append(box)
            row_cy[-1] = float(np.mean([b.center[1] for b in rows[-1]]))
        else:
            rows.append([box])
            row_cy.append(cy)
    return [box for row in rows for box in sorted(row, key=lambda b: b.aabb[0])]


def median_height(boxes: Sequence[TextBox]) -> float:
    """The boxes' typical (axis-aligned) height: the page's line height, robust to a few tall titles."""
    return float(np.median([b.aabb[3] - b.aabb[1] for b in boxes]))


def rotate(rgb: np.ndarray, angle: int) -> np.ndarray:
    """``rgb`` turned counter-clockwise by ``angle`` degrees (0, 90, 180 or 270)."""
    angle %= 360
    if angle == 0:
        return rgb
    codes = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    if angle not in codes:
        raise ValueError(f"rotation must be a multiple of 90 degrees, not {angle}")
    return cv2.rotate(np.ascontiguousarray(rgb), codes[angle])


def rot90_matrix(angle: int, width: int, height: int) -> np.ndarray:
    """3x3 map from a page to the same page turned counter-clockwise by ``angle`` (``detect.rotate``)."""
    angle %= 360
    if angle == 90:
        return np.array([[0, 1, 0], [-1, 0, width - 1], [0, 0, 1]], np.float64)
    if angle == 180:
        return np.array([[-1, 0, width - 1], [0, -1, height - 1], [0, 0, 1]], np.float64)
    if angle == 270:
        return np.array([[0, -1, height - 1], [1, 0, 0], [0, 0, 1]], np.float64)
    return np.eye(3)


def map_points(flat: list[float], matrix: np.ndarray) -> list[float]:
    pts = np.asarray(flat, np.float64).reshape(-1, 2)
    pts = np.hstack([pts, np.ones((len(pts), 1))]) @ matrix.T
    return [float(v) for v in pts[:, :2].reshape(-1)]


def reorder_quad(flat: list[float]) -> list[float]:
    """Clockwise from the top-left again after a rotation moved the corners."""
    pts = np.asarray(flat, np.float64).reshape(4, 2)
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return [float(v) for v in np.roll(pts, -start, axis=0).reshape(-1)]


#: u (0: the character's start, 1: its end) and v (0: top, 1: bottom) of a character quad's 4 corners
_CORNER_U = [0, 1, 1, 0]
_CORNER_V = np.array([0.0, 0.0, 1.0, 1.0])[:, None]


def char_quads(quad: np.ndarray, crop_width: int, line: "LineResult") -> list[list[float]]:
    """Each character's x-range in the crop, mapped back onto the page quadrilateral: corners
    (u1, v=0), (u2, 0), (u2, 1), (u1, 1) of the bilinear map, for all characters at once."""
    if not line.chars:
        return []
    width = max(crop_width, 1)
    u = np.array([[c.x_start / width, c.x_end / width] for c in line.chars], np.float64)[..., None]  # [n, 2, 1]
    tl, tr, br, bl = (np.asarray(p, np.float64) for p in quad)
    top = (tl + (tr - tl) * u)[:, _CORNER_U]  # [n, 4, 2 (x, y)]
    bottom = (bl + (br - bl) * u)[:, _CORNER_U]
    pts = top + (bottom - top) * _CORNER_V  # the same arithmetic as one point at a time: the same numbers
    return pts.reshape(len(line.chars), 8).tolist()


def page_char_quads(quad: np.ndarray, turned: int, crop_width: int, line: "LineResult") -> list[list[float]]:
    """``char_quads`` of a line read from ``quad``'s region (clockwise from its top-left on the page) turned
    ``turned`` degrees counter-clockwise; each character's quad again clockwise from its top-left on the page."""
    quads = char_quads(turn_quad(np.asarray(quad, np.float64), turned), crop_width, line)
    return [reorder_quad(q) for q in quads] if turned % 360 else quads
