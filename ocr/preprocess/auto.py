"""The preprocessor: runs the steps per mode; in auto mode each step decides from measured evidence."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ocr.preprocess.config import PreprocessConfig, config_from_dict
from ocr.preprocess.measure import (DESKEW_MIN_PEAK, _as_image, _to_rgb, estimate_noise, estimate_skew, measure_contrast,
                                     measure_illumination)
from ocr.preprocess.steps import (STEP_ORDER, PreprocessResult, StepResult, _one_line, _result, binarize, contrast,
                                  denoise, deskew, grayscale, normalize_size)

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


def step_keys(image_key: str, cfg: PreprocessConfig) -> list[str]:
    """The key of each step's output, in :data:`STEP_ORDER`: the input page and the settings of that step
    and of every step before it (a step's output depends on nothing else)."""
    settings = cfg.to_dict()
    digest = hashlib.sha256((image_key + cfg.mode).encode())
    keys = []
    for name in STEP_ORDER:
        digest.update(json.dumps({name: settings.get(name)}, sort_keys=True, default=str).encode())
        keys.append(digest.copy().hexdigest())
    return keys


def _run_step(name: str, img: np.ndarray, cfg: PreprocessConfig) -> StepResult:
    """One step on ``img`` as the config's mode says (off, manual, auto), with its timing."""
    t0 = time.perf_counter()
    params = cfg.step_params(name)
    if cfg.mode == "off":
        return _result(name, img, "skipped: preprocessing is off", False, _jsonable(params), t0)
    if cfg.mode == "manual":
        if not cfg.step_config(name).enabled:
            return _result(name, img, "skipped: switched off", False, _jsonable(params), t0)
        result = _STEP_FUNCTIONS[name](img, **params)
        reason = ""
    else:
        run, reason, evidence, overrides = _AUTO[name](img, cfg)
        if not run:
            return _result(name, img, f"skipped: {reason}", False, _jsonable({**params, **evidence}), t0)
        result = _STEP_FUNCTIONS[name](img, **{**params, **overrides})
        result.params = {**evidence, **result.params}
    result.params = _jsonable(result.params)
    if reason and reason != "enabled":
        result.description = _one_line(f"{result.description} [auto: {reason}]")
    result.seconds = time.perf_counter() - t0
    return result


class Preprocessor:
    """Runs the steps of :data:`STEP_ORDER` on a page per a :class:`PreprocessConfig`."""

    def __init__(self, config: PreprocessConfig | dict | None = None) -> None:
        # revalidated: a config's fields may have been changed after construction
        self.config = config_from_dict(config)

    def run(self, image: Any, *, copy: bool = True, steps_cache: Any = None,
            image_key: str | None = None) -> PreprocessResult:
        """``image``: gray, RGB, RGBA, ... (numpy, PIL, path, bytes). Never modified.

        ``copy=False``: when no step changed an RGB page, ``result.image`` may be ``image`` itself
        (for a caller that owns it, e.g. the pipeline: one page copy less, 100 MB at 35 MP).
        ``steps_cache`` (an ``ocr.cache.ResultCache``) with ``image_key`` (the page's content digest):
        each step's output is kept, so a settings change recomputes only from the first changed step
        (a reused step reports 0 s)."""
        started = time.perf_counter()
        img = _as_image(image)
        steps: list[StepResult] = []
        angle = 0.0
        keys = step_keys(image_key, self.config) if steps_cache is not None and image_key else [None] * len(STEP_ORDER)
        for name, key in zip(STEP_ORDER, keys):
            kept = steps_cache.get(key) if key else None
            result = replace(kept, seconds=0.0) if kept is not None else _run_step(name, img, self.config)
            if key and kept is None:
                steps_cache.put(key, result)
            if name == "deskew" and result.applied:
                angle = float(result.params["angle"])
            steps.append(result)
            img = result.image
        final = np.ascontiguousarray(_to_rgb(img))
        if copy and final is image:  # never hand back the caller's own array
            final = final.copy()
        return PreprocessResult(steps, final, angle, time.perf_counter() - started)
