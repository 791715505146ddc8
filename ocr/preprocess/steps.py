"""The preprocessing steps: each ``step(image, **params) -> StepResult``, never modifying its input."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ocr.preprocess.measure import (DESKEW_MIN_PEAK, _as_image, _gray, _is_binary, _like, _size, _to_rgb, estimate_skew,
                                     measure_contrast)
from ocr.recognize.lineprep import INPUT_HEIGHT, MAX_WIDTH, STRIDE_X

#: widest normalised line; wider lines are squeezed
MAX_LINE_WIDTH = MAX_WIDTH

STEP_ORDER = ("grayscale", "denoise", "contrast", "binarize", "deskew", "normalize_size")

# -- implementation constants -------------------------------------------------

#: denoise cost model, ≈ megapixels (padded by the windows) × search_window², ≈ 2–3 ms per unit on one
#: core; with ``fast`` the search window shrinks to stay within it: under ~0.3 s (search 9 on a 1 MP page)
DENOISE_WORK_BUDGET = 100.0
#: denoising is skipped above this many pixels (it would take seconds even with a small window)
DENOISE_MAX_PIXELS = 2_500_000
#: OpenCV's warpAffine refuses images with a side of 32767 px or more
_MAX_WARP_SIDE = 32766

BORDERS = ("white", "replicate")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@dataclass
class StepResult:
    """One step's output: ``image`` is the step's input when ``applied`` is False."""

    name: str
    image: np.ndarray
    description: str
    applied: bool
    params: dict
    seconds: float

    def __post_init__(self) -> None:
        self.description = _one_line(self.description)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary without the image."""
        return {
            "name": self.name,
            "description": self.description,
            "applied": self.applied,
            "params": self.params,
            "seconds": round(self.seconds, 4),
            "shape": list(self.image.shape),
        }


@dataclass
class PreprocessResult:
    steps: list[StepResult]
    image: np.ndarray  # final page, HxWx3 uint8 RGB
    angle: float  # degrees of skew removed by deskew (counter-clockwise tilt of the input); 0.0 if not rotated
    seconds: float

    @property
    def applied(self) -> list[str]:
        """Names of the steps that changed the image, in order."""
        return [s.name for s in self.steps if s.applied]

    def step(self, name: str) -> StepResult:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "applied": self.applied,
            "angle": round(self.angle, 3),
            "seconds": round(self.seconds, 4),
            "shape": list(self.image.shape),
        }


def _result(name: str, image: np.ndarray, description: str, applied: bool, params: dict, started: float) -> StepResult:
    return StepResult(name, image, description, applied, params, time.perf_counter() - started)


def grayscale(img: Any) -> StepResult:
    """Luma (BT.601). RGB input gives 3 equal channels, so downstream steps stay RGB."""
    t0 = time.perf_counter()
    img = _as_image(img)
    if img.ndim == 2:
        return _result("grayscale", img, "already grayscale: nothing to convert", False, {}, t0)
    if np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 1], img[:, :, 2]):
        return _result("grayscale", img, "already gray (equal channels): nothing to convert", False, {}, t0)
    out = _like(_gray(img), img)
    return _result("grayscale", out, "converted colour to gray (BT.601 luma), kept 3 channels", True, {}, t0)


def _denoise_work(img: np.ndarray, search: int, template: int) -> float:
    """The cost model of :data:`DENOISE_WORK_BUDGET`: OpenCV pads the image by both half-windows."""
    pad = search + template
    return (img.shape[0] + pad) * (img.shape[1] + pad) / 1e6 * search * search


def denoise(img: Any, h: float = 7.0, template_window: int = 7, search_window: int = 21,
            max_pixels: int = DENOISE_MAX_PIXELS, fast: bool = True, chroma: bool = False) -> StepResult:
    """Non-local means denoising (``cv2.fastNlMeansDenoising``).

    Gray images are denoised directly. RGB images have their Lab lightness
    denoised and the colour kept, which costs a third of
    ``fastNlMeansDenoisingColored``; ``chroma=True`` uses that function instead
    (also smoothing colour noise, ``hColor = h``). With ``fast`` the search
    window shrinks so that megapixels × window² stays within
    :data:`DENOISE_WORK_BUDGET` (≈ 0.2 s on one core); images over
    ``max_pixels`` are not denoised.
    """
    t0 = time.perf_counter()
    img = _as_image(img)
    params: dict[str, Any] = {"h": float(h), "template_window": int(template_window),
                              "search_window": int(search_window), "fast": bool(fast), "chroma": bool(chroma)}
    pixels = img.shape[0] * img.shape[1]
    if pixels > max_pixels:
        return _result("denoise", img, f"skipped: {pixels / 1e6:.1f} MP is over the {max_pixels / 1e6:.1f} MP "
                       "limit for denoising (it would be too slow)", False, params, t0)
    if h <= 0:
        return _result("denoise", img, "skipped: filter strength h = 0", False, params, t0)
    search = int(search_window)
    note = ""
    if fast:
        cost = 3.0 if (chroma and img.ndim == 3) else 1.0
        while search > 3 and _denoise_work(img, search, int(template_window)) * cost > DENOISE_WORK_BUDGET:
            search -= 2
        if search < search_window:
            note = f", search window cut {search_window}→{search} to stay fast on {pixels / 1e6:.2f} MP"
    template = min(int(template_window), search)
    params.update(search_window_used=search, template_window_used=template)
    if img.ndim == 2:
        out = cv2.fastNlMeansDenoising(img, None, float(h), template, search)
        what = "gray"
    elif chroma:
        out = cv2.fastNlMeansDenoisingColored(img, None, float(h), float(h), template, search)
        what = "lightness and colour"
    else:
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2Lab)
        lab[:, :, 0] = cv2.fastNlMeansDenoising(np.ascontiguousarray(lab[:, :, 0]), None, float(h), template, search)
        out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        what = "lightness"
    desc = f"non-local means denoising of the {what} (h {h:g}, {template}x{template} patches, {search}x{search} search{note})"
    return _result("denoise", out, desc, True, params, t0)


def contrast(img: Any, clip_limit: float = 2.0, tile: int = 8) -> StepResult:
    """CLAHE on the gray channel, or on the Lab lightness of an RGB image (colours kept)."""
    t0 = time.perf_counter()
    img = _as_image(img)
    before = measure_contrast(img)
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile), int(tile)))
    if img.ndim == 2:
        out = clahe.apply(img)
        channel = "gray"
    else:
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2Lab)
        lab[:, :, 0] = clahe.apply(np.ascontiguousarray(lab[:, :, 0]))
        out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        channel = "lightness"
    after = measure_contrast(out)
    params = {"clip_limit": float(clip_limit), "tile": int(tile), "spread_before": before, "spread_after": after}
    desc = (f"CLAHE on the {channel} (clip {clip_limit:g}, {tile}x{tile} tiles): "
            f"ink/paper spread {before:.0f} → {after:.0f}")
    return _result("contrast", out, desc, True, params, t0)


def binarize(img: Any, block_size: int = 11, c: float = 2.0) -> StepResult:
    """Adaptive Gaussian threshold: a pixel is white if brighter than its neighbourhood's
    weighted mean minus ``c``. Output is HxWx3 uint8 with values {0, 255}."""
    t0 = time.perf_counter()
    img = _as_image(img)
    block = int(block_size)
    block = block if block % 2 else block + 1
    binary = cv2.adaptiveThreshold(_gray(img), 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, float(c))
    ink = float(np.count_nonzero(binary == 0)) / binary.size
    params = {"block_size": block, "c": float(c), "ink_fraction": round(ink, 4)}
    desc = f"adaptive Gaussian threshold (block {block}, C {c:g}): {100 * ink:.1f}% of pixels black, the rest white"
    return _result("binarize", _to_rgb(binary), desc, True, params, t0)


def rotate(img: np.ndarray, angle: float, border: str = "white") -> tuple[np.ndarray, np.ndarray]:
    """Rotate counter-clockwise by ``angle`` degrees on a canvas expanded to keep every pixel.

    Returns ``(image, matrix)``; ``matrix`` (2x3) maps input to output coordinates.
    Binary images are resampled nearest-neighbour so they stay binary.
    """
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(angle), 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    new_w = max(w, int(math.ceil(w * cos + h * sin - 1e-6)))
    new_h = max(h, int(math.ceil(h * cos + w * sin - 1e-6)))
    m[0, 2] += (new_w - w) / 2.0
    m[1, 2] += (new_h - h) / 2.0
    interp = cv2.INTER_NEAREST if _is_binary(img) else cv2.INTER_LINEAR
    if border == "replicate":
        out = cv2.warpAffine(img, m, (new_w, new_h), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    else:
        value = (255, 255, 255) if img.ndim == 3 else 255
        out = cv2.warpAffine(img, m, (new_w, new_h), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=value)
    return out, m


def deskew(img: Any, max_angle: float = 15.0, min_angle: float = 0.1, angle: float | None = None,
           border: str = "white", peak: float | None = None) -> StepResult:
    """Straighten tilted text: estimate its angle (:func:`estimate_skew`, within
    ±``max_angle``) unless ``angle`` is given, and rotate it away if it exceeds
    ``min_angle``. ``params["angle"]`` is the text's counter-clockwise tilt in
    degrees; ``params["matrix"]`` maps input to output pixel coordinates.
    ``peak``: pass it with ``angle`` when that angle comes from :func:`estimate_skew`
    (the description then says "measured" rather than "given")."""
    t0 = time.perf_counter()
    img = _as_image(img)
    params: dict[str, Any] = {"max_angle": float(max_angle), "min_angle": float(min_angle), "border": border}
    if angle is not None and peak is not None:
        params["peak"] = round(float(peak), 3)
        angle = float(angle)
        source = "measured"
    elif angle is None:
        angle, peak = estimate_skew(img, max_angle)
        params["peak"] = round(peak, 3)
        source = "measured"
        if peak < DESKEW_MIN_PEAK:
            params["angle"] = 0.0
            return _result("deskew", img, f"no clear text lines to measure a tilt from (profile peak {peak:.2f})",
                           False, params, t0)
    else:
        angle = float(angle)
        source = "given"
    params["angle"] = float(angle)
    if abs(angle) <= min_angle:
        return _result("deskew", img, f"text is straight ({source} angle {angle:+.2f}°): not rotated", False, params, t0)
    if max(img.shape[:2]) * 1.5 > _MAX_WARP_SIDE:
        return _result("deskew", img, f"{source} angle {angle:+.2f}° but the image is too large to rotate",
                       False, params, t0)
    out, m = rotate(img, -angle, border)
    params["matrix"] = [[round(float(v), 6) for v in row] for row in m]
    turn = "clockwise" if angle > 0 else "counter-clockwise"
    desc = (f"rotated {abs(angle):.2f}° {turn} to straighten text tilted {angle:+.2f}° ({source}); "
            f"canvas {_size(img)} → {_size(out)}, {border} border")
    return _result("deskew", out, desc, True, params, t0)


def _background(img: np.ndarray) -> np.ndarray:
    """Per-channel median of the outermost pixels: the paper colour of a line crop."""
    if min(img.shape[:2]) <= 2:
        edge = img.reshape(-1, *img.shape[2:])
    else:
        edge = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]], axis=0)
    return np.median(edge, axis=0).round().astype(np.uint8)


def normalize_size(img: Any, height: int = INPUT_HEIGHT, multiple: int = STRIDE_X,
                   fixed: tuple[int, int] | None = None, max_width: int = MAX_LINE_WIDTH,
                   background: int | None = None) -> StepResult:
    """Scale a text-LINE image to ``height`` px, aspect kept, and pad it on the right to a
    multiple of ``multiple`` with the background (``None``: estimated from the border).

    ``fixed=(H, W)``: the seed's fixed-size normalisation: height H, aspect kept up to
    width W (squeezed if wider), right-padded to exactly W. Lines wider than
    ``max_width`` after scaling are squeezed to it.
    """
    t0 = time.perf_counter()
    img = _as_image(img)
    h, w = img.shape[:2]
    if fixed is not None:
        target_h, limit = int(fixed[0]), int(fixed[1])
    else:
        target_h, limit = int(height), int(max_width)
    natural = max(1, int(math.ceil(target_h * w / h - 1e-9)))
    content_w = min(natural, limit)
    padded_w = limit if fixed is not None else int(math.ceil(content_w / multiple) * multiple)
    interp = cv2.INTER_AREA if target_h < h else cv2.INTER_LINEAR
    resized = cv2.resize(img, (content_w, target_h), interpolation=interp)
    bg = _background(img) if background is None else np.full(img.shape[2:], background, np.uint8)
    out = np.empty((target_h, padded_w) + img.shape[2:], np.uint8)
    out[:] = bg
    out[:, :content_w] = resized
    bg_value: Any = int(bg) if bg.ndim == 0 else [int(v) for v in bg]
    params = {"height": target_h, "multiple": int(multiple), "fixed": list(fixed) if fixed is not None else None,
              "max_width": int(max_width), "background": bg_value, "content_width": content_w,
              "scale": w / content_w, "squeezed": content_w < natural}
    how = "squeezed to fit" if content_w < natural else "aspect kept"
    desc = (f"resized {_size(img)} → {content_w}x{target_h} ({how}), padded right to {padded_w} px "
            f"with background {bg_value}")
    return _result("normalize_size", out, desc, True, params, t0)

