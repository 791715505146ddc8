"""Page preprocessing as a pipeline of named, switchable, explainable steps.

    from ocr.preprocess import Preprocessor, PreprocessConfig, config_from_dict
    result = Preprocessor(PreprocessConfig(mode="auto")).run(rgb)
    for step in result.steps:              # the UI shows these one by one
        step.name, step.applied, step.description, step.image, step.params
    result.image                           # final page, HxWx3 uint8 RGB
    result.angle                           # degrees of skew removed (0.0 if not rotated)

Steps, in pipeline order (:data:`STEP_ORDER`); each is also a public function
``step(image, **params) -> StepResult`` that takes a gray (``HxW``) or RGB
(``HxWx3``) uint8 image, never modifies it, and returns the output image plus
a one-line description of what it did:

* :func:`grayscale` – BT.601 luma, kept as 3 equal channels;
* :func:`denoise` – non-local means; a work budget keeps it fast on big pages;
* :func:`contrast` – CLAHE on the lightness (Lab L) or gray channel;
* :func:`binarize` – adaptive Gaussian threshold, always 3-channel {0, 255};
* :func:`deskew` – estimates the dominant text angle (within ±15°) from the
  row profile of the ink pixels and rotates it away on an expanded canvas;
* :func:`normalize_size` – for a single text LINE: height 48 with aspect kept,
  right-padded with the background to a multiple of 8 (or ``fixed=(32, 280)``).

``applied`` means the step changed the image; a step that did not run (or had
nothing to do) passes its input through unchanged with ``applied=False`` and a
description saying why.

Modes (:class:`PreprocessConfig`):

* ``"off"`` – nothing runs; every step is recorded as skipped;
* ``"manual"`` – exactly the steps whose ``enabled`` flag is set run, with the
  given parameters;
* ``"auto"`` (default) – each page step decides from measurable evidence,
  ignoring its ``enabled`` flag, and uses its configured parameters:
  grayscale never (the detector reads colour), denoise only if the estimated
  noise sigma is high, contrast only if the ink/paper spread is low, binarize
  only if the illumination is uneven, deskew only if the text is tilted by more
  than half a degree. ``normalize_size`` is not a page enhancement: it runs in
  auto mode only if enabled. The thresholds are the ``*_THRESHOLD``-style
  constants below; they are conservative, so a clean scan is left untouched.

The evidence (:func:`measure_contrast`, :func:`estimate_noise`,
:func:`measure_illumination`, :func:`estimate_skew`) is public so the UI can
show the numbers, and it is recorded in each step's ``params``.

Only numpy and OpenCV are used: importing this module does not load torch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import cv2
import numpy as np

from ocr.input_spec import INPUT_HEIGHT, STRIDE_X
from ocr.lineprep import MAX_WIDTH

__all__ = [
    "STEP_ORDER",
    "StepResult",
    "PreprocessResult",
    "PreprocessConfig",
    "GrayscaleConfig",
    "DenoiseConfig",
    "ContrastConfig",
    "BinarizeConfig",
    "DeskewConfig",
    "NormalizeConfig",
    "Preprocessor",
    "config_from_dict",
    "grayscale",
    "denoise",
    "contrast",
    "binarize",
    "deskew",
    "normalize_size",
    "rotate",
    "measure_contrast",
    "estimate_noise",
    "measure_illumination",
    "estimate_skew",
]

#: widest normalised line; wider lines are squeezed
MAX_LINE_WIDTH = MAX_WIDTH

STEP_ORDER = ("grayscale", "denoise", "contrast", "binarize", "deskew", "normalize_size")

# -- auto-mode evidence thresholds --------------------------------------------

#: ink/paper spread (0.5–99.5 percentile, gray levels) below which CLAHE is applied: clean
#: scans and decent photos span 150+ levels, faded or hazy text is under ~100
LOW_CONTRAST_SPREAD = 100.0
#: below this spread there is no text to bring out (blank page; noise of sigma 5 alone spans ~23 levels):
#: CLAHE would only amplify noise
FLAT_SPREAD = 25.0
#: estimated noise sigma (gray levels) above which denoising runs: clean scans and JPEGs measure
#: under ~2, ordinary phone grain 2–4 (the detector shrugs it off); above ~5 speckle starts to break strokes
NOISE_SIGMA_THRESHOLD = 5.0
#: background variation / ink-paper spread above which illumination counts as uneven: then no single
#: threshold separates ink from paper everywhere and a local (adaptive) threshold helps
UNEVEN_RATIO = 0.3
#: ...and the background must also vary by at least this many gray levels (ignores mild vignetting)
UNEVEN_MIN_LEVELS = 40.0
#: auto mode deskews only beyond this angle (degrees): the detector's quadrilaterals and the
#: per-line perspective crops already absorb small tilts, and rotating resamples (blurs) the page
DESKEW_AUTO_MIN_ANGLE = 2.0
#: the skew estimate is trusted only if its best row profile is this much sharper than the median
#: angle's: text lines give a clear peak (≈3 on clean synthetic pages, ≈1.4 under heavy noise),
#: random noise stays near 1.05 and smooth photos find no ink at all
DESKEW_MIN_PEAK = 1.15

# -- implementation constants -------------------------------------------------

#: denoise cost model, ≈ megapixels (padded by the windows) × search_window², ≈ 2–3 ms per unit on one
#: core; with ``fast`` the search window shrinks to stay within it: under ~0.3 s (search 9 on a 1 MP page)
DENOISE_WORK_BUDGET = 100.0
#: denoising is skipped above this many pixels (it would take seconds even with a small window)
DENOISE_MAX_PIXELS = 2_500_000
#: skew is measured on a copy at most this many pixels on its longer side
SKEW_WORK_SIDE = 1000
#: at most this many ink pixels enter the skew profile (evenly subsampled)
SKEW_MAX_POINTS = 40_000
#: illumination is measured on a copy at most this many pixels on its longer side
ILLUMINATION_WORK_SIDE = 256
#: OpenCV's warpAffine refuses images with a side of 32767 px or more
_MAX_WARP_SIDE = 32766

MODES = ("auto", "manual", "off")
BORDERS = ("white", "replicate")


# =============================================================================
# results
# =============================================================================


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


# =============================================================================
# image helpers
# =============================================================================


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


# =============================================================================
# evidence
# =============================================================================


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
    if n <= NOISE_MAX_SAMPLES:
        resp = cv2.filter2D(gray.astype(np.float32), -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
        a = np.abs(resp).ravel()
    else:
        a = np.abs(_noise_response_at(gray, np.arange(0, n, n // NOISE_MAX_SAMPLES + 1)))
    return float(np.median(a) / (0.6745 * 6.0))


#: pixels ``estimate_noise`` reads at most (evenly spaced in raster order)
NOISE_MAX_SAMPLES = 400_000


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


# =============================================================================
# steps
# =============================================================================


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


# =============================================================================
# configuration
# =============================================================================


def _number(where: str, value: Any, lo: float, hi: float, *, integer: bool = False,
            lo_open: bool = False) -> float | int:
    """``value`` as a number within [lo, hi] (or (lo, hi]); a clear ``ValueError`` otherwise."""
    kind = "an integer" if integer else "a number"
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{where} must be {kind} in {interval}, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{where} must be {kind} in {interval}, got {value!r}") from None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where} must be {kind} in {interval}, got {value!r}") from None
    if not math.isfinite(x) or x > hi or x < lo or (lo_open and x == lo):
        raise ValueError(f"{where} must be {kind} in {interval}, got {value!r}")
    if integer:
        if x != int(x):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return int(x)
    return x


def _odd(where: str, value: Any, lo: int, hi: int) -> int:
    """An odd integer in [lo, hi]; an even value is bumped to the next odd one."""
    n = _number(where, value, max(lo - 1, 1) if lo % 2 else lo, hi, integer=True)
    n = n if n % 2 else n + 1
    if n < lo or n > hi:
        raise ValueError(f"{where} must be an odd integer in [{lo}, {hi}], got {value!r}")
    return n


def _flag(where: str, value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "on", "off", "yes", "no"):
        return value.strip().lower() in ("true", "1", "on", "yes")
    raise ValueError(f"{where} must be true or false, got {value!r}")


@dataclass
class GrayscaleConfig:
    enabled: bool = False

    def __post_init__(self) -> None:
        self.enabled = _flag("grayscale.enabled", self.enabled)


@dataclass
class DenoiseConfig:
    enabled: bool = False
    h: float = 7.0  # filter strength, [0, 50]; 0 disables
    template_window: int = 7  # patch size, odd, [1, 21]
    search_window: int = 21  # search area, odd, [3, 51]; shrunk on big images when ``fast``
    max_pixels: int = DENOISE_MAX_PIXELS
    fast: bool = True
    chroma: bool = False  # RGB: also denoise colour (fastNlMeansDenoisingColored, ~3x slower)

    def __post_init__(self) -> None:
        self.enabled = _flag("denoise.enabled", self.enabled)
        self.h = _number("denoise.h", self.h, 0, 50)
        self.template_window = _odd("denoise.template_window", self.template_window, 1, 21)
        self.search_window = _odd("denoise.search_window", self.search_window, 3, 51)
        self.search_window = max(self.search_window, self.template_window)
        self.max_pixels = _number("denoise.max_pixels", self.max_pixels, 1, 1e9, integer=True)
        self.fast = _flag("denoise.fast", self.fast)
        self.chroma = _flag("denoise.chroma", self.chroma)


@dataclass
class ContrastConfig:
    enabled: bool = True
    clip_limit: float = 2.0  # CLAHE clip limit, (0, 40]
    tile: int = 8  # tiles per side, [1, 64]

    def __post_init__(self) -> None:
        self.enabled = _flag("contrast.enabled", self.enabled)
        self.clip_limit = _number("contrast.clip_limit", self.clip_limit, 0, 40, lo_open=True)
        self.tile = _number("contrast.tile", self.tile, 1, 64, integer=True)


@dataclass
class BinarizeConfig:
    enabled: bool = False
    block_size: int = 11  # neighbourhood, odd, [3, 999]; even → next odd
    c: float = 2.0  # subtracted from the local mean, [-128, 128]

    def __post_init__(self) -> None:
        self.enabled = _flag("binarize.enabled", self.enabled)
        self.block_size = _odd("binarize.block_size", self.block_size, 3, 999)
        self.c = _number("binarize.c", self.c, -128, 128)


@dataclass
class DeskewConfig:
    enabled: bool = True
    max_angle: float = 15.0  # search range ±, (0, 45]
    min_angle: float = 0.1  # smaller tilts are left alone (auto mode: at least DESKEW_AUTO_MIN_ANGLE)
    angle: float | None = None  # manual mode: rotate by this tilt instead of measuring it, [-45, 45]
    border: str = "white"  # "white" or "replicate"

    def __post_init__(self) -> None:
        self.enabled = _flag("deskew.enabled", self.enabled)
        self.max_angle = _number("deskew.max_angle", self.max_angle, 0, 45, lo_open=True)
        self.min_angle = _number("deskew.min_angle", self.min_angle, 0, self.max_angle)
        if self.angle is not None:
            self.angle = _number("deskew.angle", self.angle, -45, 45)
        if not isinstance(self.border, str) or self.border.strip().lower() not in BORDERS:
            raise ValueError(f"deskew.border must be one of {', '.join(BORDERS)}, got {self.border!r}")
        self.border = self.border.strip().lower()


@dataclass
class NormalizeConfig:
    enabled: bool = False
    height: int = INPUT_HEIGHT  # [4, 512]
    multiple: int = STRIDE_X  # pad the width to a multiple of this, [1, 256]
    fixed: tuple[int, int] | None = None  # (height, width), e.g. (32, 280): fixed size with padding
    max_width: int = MAX_LINE_WIDTH  # [16, 16384]
    background: int | None = None  # pad value 0..255; None: estimated from the border

    def __post_init__(self) -> None:
        self.enabled = _flag("normalize_size.enabled", self.enabled)
        self.height = _number("normalize_size.height", self.height, 4, 512, integer=True)
        self.multiple = _number("normalize_size.multiple", self.multiple, 1, 256, integer=True)
        self.max_width = _number("normalize_size.max_width", self.max_width, 16, 16384, integer=True)
        if self.fixed is not None:
            if isinstance(self.fixed, (str, dict)) or not hasattr(self.fixed, "__len__") or len(self.fixed) != 2:
                raise ValueError(f"normalize_size.fixed must be (height, width) or null, got {self.fixed!r}")
            fh = _number("normalize_size.fixed height", self.fixed[0], 4, 512, integer=True)
            fw = _number("normalize_size.fixed width", self.fixed[1], 1, 16384, integer=True)
            self.fixed = (fh, fw)
        if self.background is not None:
            self.background = _number("normalize_size.background", self.background, 0, 255, integer=True)


_STEP_CONFIGS: dict[str, type] = {
    "grayscale": GrayscaleConfig,
    "denoise": DenoiseConfig,
    "contrast": ContrastConfig,
    "binarize": BinarizeConfig,
    "deskew": DeskewConfig,
    "normalize_size": NormalizeConfig,
}


@dataclass
class PreprocessConfig:
    """Which steps run and with what parameters; see the module docstring for the modes.

    The ``enabled`` defaults (contrast and deskew on) only matter in manual mode.
    Invalid values raise ``ValueError`` at construction; an even window or block
    size is bumped to the next odd number.
    """

    mode: str = "auto"
    grayscale: GrayscaleConfig = field(default_factory=GrayscaleConfig)
    denoise: DenoiseConfig = field(default_factory=DenoiseConfig)
    contrast: ContrastConfig = field(default_factory=ContrastConfig)
    binarize: BinarizeConfig = field(default_factory=BinarizeConfig)
    deskew: DeskewConfig = field(default_factory=DeskewConfig)
    normalize_size: NormalizeConfig = field(default_factory=NormalizeConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str) or self.mode.strip().lower() not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        self.mode = self.mode.strip().lower()
        for name, cls in _STEP_CONFIGS.items():
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")

    def step_config(self, name: str):
        if name not in _STEP_CONFIGS:
            raise KeyError(name)
        return getattr(self, name)

    def step_params(self, name: str) -> dict[str, Any]:
        """The keyword arguments of step ``name``'s function (everything but ``enabled``)."""
        cfg = self.step_config(name)
        return {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "enabled"}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict; ``config_from_dict(config.to_dict()) == config``."""
        out: dict[str, Any] = {"mode": self.mode}
        for name in _STEP_CONFIGS:
            cfg = getattr(self, name)
            d = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
            if name == "normalize_size" and d["fixed"] is not None:
                d["fixed"] = list(d["fixed"])
            out[name] = d
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "PreprocessConfig":
        return config_from_dict(d)


def config_from_dict(d: dict[str, Any] | PreprocessConfig | None) -> PreprocessConfig:
    """Build and validate a config from a (partial) dict, as the UI and API send it.

    ``{"mode": "manual", "denoise": {"enabled": true, "h": 10}, "deskew": false}``:
    missing keys keep their defaults; a step given as a bool sets its ``enabled``.
    Unknown steps or parameters and absurd values raise ``ValueError``.
    """
    if d is None:
        return PreprocessConfig()
    if isinstance(d, PreprocessConfig):
        d = d.to_dict()
    if not isinstance(d, dict):
        raise ValueError(f"preprocess config must be a dict, got {type(d).__name__}")
    unknown = set(d) - {"mode", *_STEP_CONFIGS}
    if unknown:
        raise ValueError(f"unknown preprocess setting(s) {', '.join(sorted(map(str, unknown)))}; "
                         f"expected mode or one of {', '.join(STEP_ORDER)}")
    kwargs: dict[str, Any] = {}
    if "mode" in d:
        kwargs["mode"] = d["mode"]
    for name, cls in _STEP_CONFIGS.items():
        if name not in d or d[name] is None:
            continue
        value = d[name]
        if isinstance(value, (bool, np.bool_)):
            value = {"enabled": bool(value)}
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a dict of parameters or a bool, got {value!r}")
        allowed = {f.name for f in fields(cls)}
        bad = set(value) - allowed
        if bad:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(map(str, bad)))} for step {name}; "
                             f"expected {', '.join(sorted(allowed))}")
        kwargs[name] = cls(**value)
    return PreprocessConfig(**kwargs)


# =============================================================================
# the pipeline
# =============================================================================

_STEP_FUNCTIONS: dict[str, Callable[..., StepResult]] = {
    "grayscale": grayscale,
    "denoise": denoise,
    "contrast": contrast,
    "binarize": binarize,
    "deskew": deskew,
    "normalize_size": normalize_size,
}

# An auto decision: (run?, reason, evidence, keyword overrides for the step function)
_Decision = tuple[bool, str, dict, dict]


def _auto_grayscale(img: np.ndarray, cfg: PreprocessConfig) -> _Decision:
    return False, "kept colour: the text detector reads colour images", {}, {}


def _auto_denoise(img: np.ndarray, cfg: PreprocessConfig) -> _Decision:
    sigma = estimate_noise(img)
    ev = {"noise_sigma": round(sigma, 2), "threshold": NOISE_SIGMA_THRESHOLD}
    if sigma <= NOISE_SIGMA_THRESHOLD:
        return False, f"noise is low (σ≈{sigma:.1f} ≤ {NOISE_SIGMA_THRESHOLD:g})", ev, {}
    pixels = img.shape[0] * img.shape[1]
    if pixels > cfg.denoise.max_pixels:
        return (False, f"noisy (σ≈{sigma:.1f}) but {pixels / 1e6:.1f} MP is over the "
                f"{cfg.denoise.max_pixels / 1e6:.1f} MP denoising limit", ev, {})
    return True, f"noise σ≈{sigma:.1f} > {NOISE_SIGMA_THRESHOLD:g}", ev, {}


def _auto_contrast(img: np.ndarray, cfg: PreprocessConfig) -> _Decision:
    spread = measure_contrast(img)
    ev = {"spread": spread, "threshold": LOW_CONTRAST_SPREAD}
    if spread < FLAT_SPREAD:
        return False, f"image is flat (spread {spread:.0f}): no text to enhance", ev, {}
    if spread >= LOW_CONTRAST_SPREAD:
        return False, f"contrast already good (spread {spread:.0f})", ev, {}
    return True, f"low contrast (spread {spread:.0f} < {LOW_CONTRAST_SPREAD:g})", ev, {}


def _auto_binarize(img: np.ndarray, cfg: PreprocessConfig) -> _Decision:
    """Never in auto mode: the neural detector and recogniser learned on grey/colour images and
    read a thresholded page worse, even under uneven light (BENCHMARKS.md, preprocessing
    ablation); binarisation stays a manual step and a view of the page."""
    variation, ratio = measure_illumination(img)
    ev = {"background_variation": variation, "ratio": round(ratio, 3), "threshold": UNEVEN_RATIO}
    if ratio > UNEVEN_RATIO and variation >= UNEVEN_MIN_LEVELS:
        return (False, f"uneven illumination (paper varies {variation:.0f} levels, {100 * ratio:.0f}% of the "
                "contrast), but the neural models read grey better than a binarised page: switch it on by hand",
                ev, {})
    return (False, f"illumination is even enough (paper varies {variation:.0f} levels, "
            f"{100 * ratio:.0f}% of the contrast)", ev, {})


def _auto_deskew(img: np.ndarray, cfg: PreprocessConfig) -> _Decision:
    angle, peak = estimate_skew(img, cfg.deskew.max_angle)
    ev = {"angle": angle, "peak": round(peak, 3)}
    if peak < DESKEW_MIN_PEAK:
        return False, f"no clear text lines to measure a tilt from (profile peak {peak:.2f})", ev, {}
    limit = max(DESKEW_AUTO_MIN_ANGLE, cfg.deskew.min_angle)
    if abs(angle) <= limit:
        return False, f"text is straight enough (angle {angle:+.2f}°, |angle| ≤ {limit:g}°)", ev, {}
    return True, f"text tilted {angle:+.2f}°", ev, {"angle": angle, "peak": peak, "min_angle": limit}


def _auto_normalize_size(img: np.ndarray, cfg: PreprocessConfig) -> _Decision:
    if cfg.normalize_size.enabled:
        return True, "enabled", {}, {}
    return False, "off (only used on single text-line images)", {}, {}


_AUTO: dict[str, Callable[[np.ndarray, PreprocessConfig], _Decision]] = {
    "grayscale": _auto_grayscale,
    "denoise": _auto_denoise,
    "contrast": _auto_contrast,
    "binarize": _auto_binarize,
    "deskew": _auto_deskew,
    "normalize_size": _auto_normalize_size,
}


def _jsonable(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


class Preprocessor:
    """Runs the steps of :data:`STEP_ORDER` on a page per a :class:`PreprocessConfig`."""

    def __init__(self, config: PreprocessConfig | dict | None = None) -> None:
        # revalidated: a config's fields may have been changed after construction
        self.config = config_from_dict(config)

    def run(self, image: Any, *, copy: bool = True) -> PreprocessResult:
        """``image``: gray, RGB, RGBA, ... (numpy, PIL, path, bytes). Never modified.

        ``copy=False``: when no step changed an RGB page, ``result.image`` may be ``image`` itself
        (for a caller that owns it, e.g. the pipeline: one page copy less, 100 MB at 35 MP)."""
        started = time.perf_counter()
        img = _as_image(image)
        cfg = self.config
        steps: list[StepResult] = []
        angle = 0.0
        for name in STEP_ORDER:
            t0 = time.perf_counter()
            params = cfg.step_params(name)
            if cfg.mode == "off":
                steps.append(_result(name, img, "skipped: preprocessing is off", False, _jsonable(params), t0))
                continue
            if cfg.mode == "manual":
                if not cfg.step_config(name).enabled:
                    steps.append(_result(name, img, "skipped: switched off", False, _jsonable(params), t0))
                    continue
                result = _STEP_FUNCTIONS[name](img, **params)
                reason = ""
            else:
                run, reason, evidence, overrides = _AUTO[name](img, cfg)
                if not run:
                    steps.append(_result(name, img, f"skipped: {reason}", False,
                                         _jsonable({**params, **evidence}), t0))
                    continue
                result = _STEP_FUNCTIONS[name](img, **{**params, **overrides})
                result.params = {**evidence, **result.params}
            result.params = _jsonable(result.params)
            if reason and reason != "enabled":
                result.description = _one_line(f"{result.description} [auto: {reason}]")
            result.seconds = time.perf_counter() - t0
            if name == "deskew" and result.applied:
                angle = float(result.params["angle"])
            steps.append(result)
            img = result.image
        final = np.ascontiguousarray(_to_rgb(img))
        if copy and final is image:  # never hand back the caller's own array
            final = final.copy()
        return PreprocessResult(steps, final, angle, time.perf_counter() - started)
