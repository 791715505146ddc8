"""The measured page-speed replacements (issue 17) give exactly what the code they replaced gave.

Each old implementation is kept here, verbatim, as the reference.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocr.decode import CharSpan
from ocr.detect.geometry import char_quads
from ocr.detect.postprocess import _SCALE, _SHIFT, to_input_array
from ocr.preprocess.measure import (_NOISE_KERNEL, NOISE_FULL_FILTER_MAX, NOISE_MAX_SAMPLES, _as_image, _gray,
                                    _noise_response_at, estimate_noise)
from ocr.results import LineResult
from ocr.settings import EXAMPLES_DIR


def old_to_input_array(rgb: np.ndarray) -> np.ndarray:
    bgr = rgb[:, :, ::-1].astype(np.float32)
    bgr *= _SCALE
    bgr += _SHIFT
    return np.ascontiguousarray(bgr.transpose(2, 0, 1))[None]


def old_estimate_noise(img: np.ndarray) -> float:
    gray = _gray(_as_image(img))
    if min(gray.shape) < 3:
        return 0.0
    h, w = gray.shape
    n = (h - 2) * (w - 2)
    if n <= NOISE_MAX_SAMPLES:
        resp = cv2.filter2D(gray.astype(np.float32), -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
        a = np.abs(resp).ravel()
    else:
        a = np.abs(_noise_response_at(gray, np.arange(0, n, n // NOISE_MAX_SAMPLES + 1)))
    return float(np.median(a) / (0.6745 * 6.0))


def _old_quad_point(quad: np.ndarray, u: float, v: float) -> tuple[float, float]:
    tl, tr, br, bl = quad
    top = tl + (tr - tl) * u
    bottom = bl + (br - bl) * u
    p = top + (bottom - top) * v
    return float(p[0]), float(p[1])


def old_char_quads(quad: np.ndarray, crop_width: int, line: LineResult) -> list[list[float]]:
    out = []
    for span in line.chars:
        u1, u2 = span.x_start / max(crop_width, 1), span.x_end / max(crop_width, 1)
        pts = [_old_quad_point(quad, u1, 0), _old_quad_point(quad, u2, 0), _old_quad_point(quad, u2, 1),
               _old_quad_point(quad, u1, 1)]
        out.append([c for p in pts for c in p])
    return out


def _pages() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    pages = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(EXAMPLES_DIR.glob("*.png"))[:4]]
    pages += [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((32, 96), (737, 1001), (3, 3))]
    return pages


@pytest.mark.parametrize("index", range(7))
def test_detector_input_equals_the_old_one(index):
    rgb = _pages()[index]
    new, old = to_input_array(rgb), old_to_input_array(rgb)
    assert new.shape == old.shape and new.dtype == old.dtype and new.flags.c_contiguous
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-5)


def test_noise_estimate_is_identical_on_every_path():
    rng = np.random.default_rng(1)
    noisy = np.clip(128 + rng.normal(0, 9, (1400, 1300)), 0, 255).astype(np.uint8)  # > NOISE_MAX_SAMPLES: sampled
    huge = np.clip(128 + rng.normal(0, 4, (2900, 2900)), 0, 255).astype(np.uint8)  # > NOISE_FULL_FILTER_MAX: gathered
    assert noisy.size > NOISE_MAX_SAMPLES and huge.size > NOISE_FULL_FILTER_MAX
    for image in [*_pages(), noisy, huge, np.zeros((2, 50), np.uint8)]:
        assert estimate_noise(image) == old_estimate_noise(image)
    assert 8.5 < estimate_noise(noisy) < 9.5  # and still measures the noise put in


def test_char_quads_are_the_same_numbers():
    rng = np.random.default_rng(2)
    for n in (0, 1, 7):
        quad = rng.uniform(0, 900, (4, 2))
        starts = np.sort(rng.uniform(0, 300, n))
        chars = [CharSpan("x", 5, 0.9, i, i, float(s), float(s + rng.uniform(1, 30))) for i, s in enumerate(starts)]
        line = LineResult("x" * n, 0.9, chars, 320, 32)
        for width in (320, 0):
            assert char_quads(quad, width, line) == old_char_quads(quad, width, line)
