"""The evidence auto mode decides from: contrast, noise, illumination, skew (numpy + OpenCV only).

Public so the UI can show the numbers; every step records them in its ``params``.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

#: skew is measured on a copy at most this many pixels on its longer side
SKEW_WORK_SIDE = 1000
#: at most this many ink pixels enter the skew profile (evenly subsampled)
SKEW_MAX_POINTS = 40_000
#: illumination is measured on a copy at most this many pixels on its longer side
ILLUMINATION_WORK_SIDE = 256
#: the skew estimate is trusted only if its best row profile is this much sharper than the median
#: angle's: text lines give a clear peak (≈3 on clean synthetic pages, ≈1.4 under heavy noise),
#: random noise stays near 1.05 and smooth photos find no ink at all
DESKEW_MIN_PEAK = 1.15


def _as_image(img: Any) -> np.ndarray:
    """A contiguous uint8 ``HxW`` or ``HxWx3`` array; anything else goes through ``load_image`` (→ RGB)."""
    if isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.size:
        if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3):
            return np.ascontiguousarray(img)
        if img.ndim == 3 and img.shape[2] == 1:
            return np.ascontiguousarray(img[:, :, 0])
    from ocr.imageio import load_image  # RGBA → on white, 16-bit, float, PIL, paths, bytes ...

    return load_image(img, max_pixels=None)


def _gray(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _to_rgb(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img


def _like(gray: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``gray`` in ``ref``'s layout (3 equal channels if ``ref`` is RGB)."""
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB) if ref.ndim == 3 else gray


def _shrink(gray: np.ndarray, max_side: int) -> np.ndarray:
    h, w = gray.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _percentiles(gray: np.ndarray, qs: tuple[float, ...]) -> list[int]:
    """Gray-level percentiles from the histogram (exact for uint8, and fast)."""
    cdf = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    n = cdf[-1]
    return [int(np.searchsorted(cdf, max(q / 100.0 * n, 1), side="left")) for q in qs]


def _is_binary(img: np.ndarray) -> bool:
    return not np.any((img != 0) & (img != 255))


def _size(img: np.ndarray) -> str:
    return f"{img.shape[1]}x{img.shape[0]}"


def measure_contrast(img: Any) -> float:
    """Ink/paper spread in gray levels (0..255): 99th minus 1st percentile of the pixels near edges.

    Only pixels whose 5x5 neighbourhood spans at least :data:`_EDGE_LEVELS`
    count, so the text's surroundings are measured however little of the page
    it covers. With (almost) no such pixels it is the whole image's
    0.5–99.5 percentile range, which is small for a blank page.
    """
    gray = _gray(_as_image(img))
    if min(gray.shape) >= 5:
        local_range = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, _EDGE_KERNEL)
        near_edges = gray[local_range >= _EDGE_LEVELS]
        if near_edges.size >= max(25, gray.size // 5000):
            lo, hi = _percentiles(near_edges, (1, 99))
            return float(hi - lo)
    lo, hi = _percentiles(gray, (0.5, 99.5))
    return float(hi - lo)


#: a pixel is "near an edge" if its 5x5 neighbourhood spans this many gray levels (above mild noise)
_EDGE_LEVELS = 16
_EDGE_KERNEL = np.ones((5, 5), np.uint8)
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def estimate_noise(img: Any) -> float:
    """Noise sigma in gray levels (Immerkær's operator with a median, robust to text edges).

    The 3x3 operator cancels flat areas and linear ramps; on pure Gaussian noise its
    response has std 6σ and its median absolute value is 0.6745 × 6σ.
    """
    gray = _gray(_as_image(img))
    if min(gray.shape) < 3:
        return 0.0
    h, w = gray.shape
    n = (h - 2) * (w - 2)  # interior pixels: the operator's response is read there only
    if n <= NOISE_MAX_SAMPLES or h * w <= NOISE_FULL_FILTER_MAX:
        # filtering the whole page and reading the sampled positions gives the very values the
        # gather below computes (exact integer arithmetic in float32), faster up to this size:
        # 7.8 instead of 36.0 ms a page on the 8 examples/ pages (1 thread, busy machine, 2026-12-06)
        resp = cv2.filter2D(gray.astype(np.float32), -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
        a = np.abs(resp).ravel()
        if n > NOISE_MAX_SAMPLES:
            a = a[np.arange(0, n, n // NOISE_MAX_SAMPLES + 1)]
    else:
        a = np.abs(_noise_response_at(gray, np.arange(0, n, n // NOISE_MAX_SAMPLES + 1)))
    return float(np.median(a) / (0.6745 * 6.0))


#: pixels ``estimate_noise`` reads at most (evenly spaced in raster order)
NOISE_MAX_SAMPLES = 400_000
#: pages up to this many pixels are noise-filtered whole (a float32 copy of 32 MB at most); larger
#: scans read only the sampled positions (``_noise_response_at``: no page-sized float copies)
NOISE_FULL_FILTER_MAX = 8_000_000


def _noise_response_at(gray: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The 3x3 noise operator's response at interior pixels ``flat`` (raster indices over the
    (h-2)x(w-2) interior), float32.

    The same values as filtering the whole page (integer pixels times integer weights are exact
    in float32, whatever the order of the sums), without the page-sized float32 copies: filtering
    a 35 MP scan took three of them, 420 MB, to read 400k of its values.
    """
    rows, cols = np.divmod(flat, gray.shape[1] - 2)
    out = np.zeros(len(flat), np.float32)
    for dy in range(3):
        for dx in range(3):
            out += _NOISE_KERNEL[dy, dx] * gray[rows + dy, cols + dx].astype(np.float32)
    return out


def measure_illumination(img: Any) -> tuple[float, float]:
    """``(variation, ratio)``: how much the paper's brightness varies over the page.

    The background is the page with the (dark) ink removed by a max filter, then
    smoothed, on a copy at most 256 px wide; ``variation`` is its 10–90 percentile
    range in gray levels and ``ratio`` that range over the ink/paper spread.
    """
    gray = _gray(_as_image(img))
    if min(gray.shape) < 16:
        return 0.0, 0.0
    small = _shrink(gray, ILLUMINATION_WORK_SIDE)
    k = max(3, int(round(max(small.shape) * 0.06)) | 1)
    background = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    background = cv2.GaussianBlur(background, (0, 0), k / 2)
    lo, hi = _percentiles(background, (10, 90))
    variation = float(hi - lo)
    return variation, variation / max(measure_contrast(gray), 1.0)


def _skew_points(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    small = _shrink(gray, SKEW_WORK_SIDE)
    if min(small.shape) < 8:
        return np.empty(0, np.float32), np.empty(0, np.float32)
    block = int(min(31, (min(small.shape) // 2) * 2 - 1))
    block = max(block, 3)
    # ink: clearly darker than its neighbourhood (works under uneven light and on binarized pages)
    ink = cv2.adaptiveThreshold(small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)
    ys, xs = np.nonzero(ink)
    if len(xs) > SKEW_MAX_POINTS:
        keep = np.linspace(0, len(xs) - 1, SKEW_MAX_POINTS).astype(np.int64)
        ys, xs = ys[keep], xs[keep]
    xs = xs.astype(np.float32)
    ys = ys.astype(np.float32)
    return xs - xs.mean() if len(xs) else xs, ys - ys.mean() if len(ys) else ys


def _profile_score(xs: np.ndarray, ys: np.ndarray, angle: float) -> float:
    t = math.radians(angle)
    # a line tilted counter-clockwise by ``angle`` rises to the right: y + x·tan(angle) is constant on it
    proj = ys * math.cos(t) + xs * math.sin(t)
    bins = np.floor(proj - proj.min()).astype(np.int64)
    counts = np.bincount(bins)
    return float(np.dot(counts, counts))


def estimate_skew(img: Any, max_angle: float = 15.0) -> tuple[float, float]:
    """``(angle, peak)``: the dominant text-line angle in degrees, counter-clockwise positive.

    Ink pixels are projected onto rows at candidate angles (0.5° steps within
    ±``max_angle``, then 0.05° around the best); the angle whose row profile is
    sharpest (largest sum of squared counts) wins. ``peak`` is that sharpness
    over the median angle's: near 1 means no text lines to go by, in which case
    the angle is 0.0. An image rotated with ``cv2.getRotationMatrix2D(c, a, 1)``
    measures ``a``.
    """
    max_angle = float(max_angle)
    xs, ys = _skew_points(_gray(_as_image(img)))
    if len(xs) < 30 or max_angle <= 0:
        return 0.0, 0.0
    coarse = np.arange(-max_angle, max_angle + 1e-9, 0.5)
    scores = np.array([_profile_score(xs, ys, a) for a in coarse])
    median = float(np.median(scores))
    best = float(coarse[int(np.argmax(scores))])
    fine = np.arange(max(-max_angle, best - 0.5), min(max_angle, best + 0.5) + 1e-9, 0.05)
    fine_scores = [_profile_score(xs, ys, a) for a in fine]
    i = int(np.argmax(fine_scores))
    # several equal maxima (a plateau): take their middle
    ties = np.flatnonzero(np.asarray(fine_scores) == fine_scores[i])
    angle = float(np.mean(fine[ties]))
    peak = fine_scores[i] / max(median, 1.0)
    if peak < DESKEW_MIN_PEAK:
        return 0.0, float(peak)
    return round(angle, 2) + 0.0, float(peak)  # + 0.0: no "-0.0"

