"""ocr.preprocess: each step's contract, the evidence behind auto mode, config validation, tiny images."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from ocr.preprocess import (
    STEP_ORDER,
    PreprocessConfig,
    Preprocessor,
    binarize,
    config_from_dict,
    contrast,
    denoise,
    deskew,
    estimate_noise,
    estimate_skew,
    grayscale,
    measure_contrast,
    normalize_size,
)


pytestmark = pytest.mark.usefixtures("one_opencv_thread")


# -- synthetic images ---------------------------------------------------------

WORDS = ["the quick brown fox", "jumps over a lazy dog", "OCR pipeline 2024", "Lorem ipsum dolor sit"]


def text_page(h: int = 480, w: int = 640) -> np.ndarray:
    """Black text lines on white, RGB."""
    img = np.full((h, w, 3), 255, np.uint8)
    for i, y in enumerate(range(45, h - 20, 40)):
        line = f"{WORDS[i % 4]} {WORDS[(i + 1) % 4]}"
        cv2.putText(img, line, (25, y), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    return img


def rotated(img: np.ndarray, angle: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderValue=(255, 255, 255))


def low_contrast(img: np.ndarray) -> np.ndarray:
    """Ink at 150, paper at ~214: faded."""
    return (img.astype(np.float32) * 0.25 + 150).astype(np.uint8)


def unevenly_lit(img: np.ndarray) -> np.ndarray:
    """Brightness falls from 100% on the right to 35% on the left."""
    ramp = np.linspace(0.35, 1.0, img.shape[1], dtype=np.float32)[None, :, None]
    return (img.astype(np.float32) * ramp).astype(np.uint8)


def noisy_flat(shape=(120, 160), sigma: float = 15.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, sigma, shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return text_page()


def percentile_spread(img: np.ndarray) -> float:
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    lo, hi = np.percentile(gray, [5, 95])
    return float(hi - lo)


def single_line(result) -> bool:
    return bool(result.description.strip()) and "\n" not in result.description and "\r" not in result.description


# -- each step ----------------------------------------------------------------

PAGE_STEPS = [
    ("grayscale", grayscale, {}),
    ("denoise", denoise, {}),
    ("contrast", contrast, {}),
    ("binarize", binarize, {}),
    ("deskew", deskew, {}),
    ("normalize_size", normalize_size, {}),
]


@pytest.mark.parametrize("name,fn,kwargs", PAGE_STEPS, ids=[s[0] for s in PAGE_STEPS])
@pytest.mark.parametrize("layout", ["rgb", "gray"])
def test_step_output_contract(name, fn, kwargs, layout):
    img = rotated(text_page(120, 200), 4)
    if layout == "gray":
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    before = img.copy()
    res = fn(img, **kwargs)
    assert res.name == name
    out = res.image
    assert out.dtype == np.uint8 and out.size
    assert 0 <= int(out.min()) <= int(out.max()) <= 255
    assert np.array_equal(img, before), "steps must not modify their input"
    assert isinstance(res.params, dict) and res.seconds >= 0 and isinstance(res.applied, bool)
    assert single_line(res)
    if name in ("grayscale", "denoise", "contrast"):
        assert out.shape == img.shape
    elif name == "binarize":
        assert out.shape == img.shape[:2] + (3,)
    elif name == "deskew":
        assert res.applied and out.shape[0] >= img.shape[0] and out.shape[1] >= img.shape[1]
        assert out.ndim == img.ndim
    else:
        assert out.shape[0] == 48 and out.shape[1] % 8 == 0 and out.ndim == img.ndim


def test_grayscale_gives_equal_channels(page):
    colour = page.copy()
    colour[page[:, :, 0] < 128] = (200, 30, 30)
    res = grayscale(colour)
    assert res.applied and res.image.shape == colour.shape
    assert np.array_equal(res.image[:, :, 0], res.image[:, :, 1])
    assert np.array_equal(res.image[:, :, 1], res.image[:, :, 2])
    assert not grayscale(res.image).applied  # already gray


@pytest.mark.parametrize("layout", ["rgb", "gray"])
def test_binarize_is_binary_and_rgb(page, layout):
    img = unevenly_lit(page)
    if layout == "gray":
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    res = binarize(img, block_size=15, c=5)
    assert res.image.shape == page.shape and res.image.dtype == np.uint8
    assert set(np.unique(res.image).tolist()) <= {0, 255}
    assert 0 < res.params["ink_fraction"] < 0.5


@pytest.mark.parametrize("angle", [5.0, -8.0])
def test_deskew_recovers_known_rotation(page, angle):
    tilted = rotated(page, angle)
    measured, peak = estimate_skew(tilted)
    assert abs(measured - angle) < 1.0 and peak > 1.15
    res = deskew(tilted)
    assert res.applied and abs(res.params["angle"] - angle) < 1.0
    assert f"{angle:+.0f}" in res.description or f"{angle:+.2f}" in res.description or "°" in res.description
    assert res.image.shape[0] > tilted.shape[0] and res.image.shape[1] > tilted.shape[1]  # canvas expanded
    # straight afterwards, and no ink was cut off by the rotation
    assert abs(estimate_skew(res.image)[0]) < 1.0
    ink_before = np.count_nonzero(cv2.cvtColor(tilted, cv2.COLOR_RGB2GRAY) < 128)
    ink_after = np.count_nonzero(cv2.cvtColor(res.image, cv2.COLOR_RGB2GRAY) < 128)
    assert abs(ink_after - ink_before) < 0.1 * ink_before
    # the recorded matrix maps input pixels to output pixels
    m = np.array(res.params["matrix"])
    assert m.shape == (2, 3)


def test_deskew_leaves_straight_text_alone(page):
    measured, _ = estimate_skew(page)
    assert abs(measured) < 0.5
    res = deskew(page)
    assert not res.applied and res.image is page or np.array_equal(res.image, page)
    assert "straight" in res.description


def test_deskew_fixed_angle_and_border():
    img = text_page(100, 160)
    res = deskew(img, angle=10, border="replicate")
    assert res.applied and res.params["angle"] == 10 and "given" in res.description
    # a binarized page stays binary after rotation
    binary = binarize(img).image
    assert set(np.unique(deskew(binary, angle=7).image).tolist()) <= {0, 255}


@pytest.mark.parametrize("layout", ["rgb", "gray"])
def test_contrast_raises_percentile_spread(page, layout):
    faded = low_contrast(page)
    if layout == "gray":
        faded = cv2.cvtColor(faded, cv2.COLOR_RGB2GRAY)
    res = contrast(faded)
    assert res.applied
    assert percentile_spread(res.image) > percentile_spread(faded) + 5
    assert measure_contrast(res.image) > measure_contrast(faded)
    assert res.params["spread_after"] > res.params["spread_before"]


@pytest.mark.parametrize("layout", ["gray", "rgb", "rgb-chroma"])
def test_denoise_lowers_noise(layout):
    img = noisy_flat()
    kwargs = {"h": 15}
    if layout == "rgb":  # brightness noise: the default RGB path denoises the lightness
        img = np.dstack([img, img, img])
    elif layout == "rgb-chroma":  # independent noise per channel needs chroma=True
        img = np.dstack([img, noisy_flat(seed=1), noisy_flat(seed=2)])
        kwargs["chroma"] = True
    res = denoise(img, **kwargs)
    assert res.applied
    assert res.image.astype(np.float32).std() < 0.6 * img.astype(np.float32).std()
    assert estimate_noise(res.image) < estimate_noise(img)


def test_denoise_budget_and_limits():
    big = noisy_flat((1000, 1000), sigma=3)
    res = denoise(big)
    assert res.applied and res.params["search_window_used"] < 21 and "cut" in res.description
    skipped = denoise(big, max_pixels=500_000)
    assert not skipped.applied and skipped.image is big and "MP" in skipped.description
    assert not denoise(big[:50, :50], h=0).applied


def test_normalize_size_line_and_fixed():
    line = np.full((30, 200, 3), 240, np.uint8)
    cv2.putText(line, "a text line", (5, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
    res = normalize_size(line)
    assert res.image.shape[0] == 48 and res.image.shape[1] % 8 == 0
    content = res.params["content_width"]
    assert content == 320  # 200 * 48 / 30, aspect kept
    assert np.all(res.image[:, content:] == 240)  # padded with the background
    fixed = normalize_size(line, fixed=(32, 280))
    assert fixed.image.shape == (32, 280, 3)
    assert fixed.params["content_width"] == 214 and np.all(fixed.image[:, 214:] == 240)
    wide = normalize_size(np.zeros((10, 2000), np.uint8), fixed=(32, 280), background=255)
    assert wide.image.shape == (32, 280) and wide.params["squeezed"] and "squeezed" in wide.description
    capped = normalize_size(np.zeros((5, 3000), np.uint8))
    assert capped.image.shape == (48, 3200)


# -- auto mode ----------------------------------------------------------------


def test_auto_leaves_clean_page_untouched(page):
    result = Preprocessor(PreprocessConfig(mode="auto")).run(page)
    assert result.applied == []
    assert np.array_equal(result.image, page) and result.image is not page
    assert result.angle == 0.0
    assert [s.name for s in result.steps] == list(STEP_ORDER)
    assert all(single_line(s) and s.description.startswith("skipped") for s in result.steps)
    assert "contrast already good" in result.step("contrast").description


def test_auto_low_contrast_applies_contrast(page):
    result = Preprocessor().run(low_contrast(page))
    assert "contrast" in result.applied
    assert "binarize" not in result.applied and "deskew" not in result.applied
    step = result.step("contrast")
    assert "auto" in step.description and step.params["spread"] < 100


def test_auto_uneven_light_is_measured_but_never_binarized(page):
    result = Preprocessor().run(unevenly_lit(page))
    assert "binarize" not in result.applied
    step = result.step("binarize")
    assert "uneven illumination" in step.description and step.params["ratio"] > 0.3


def test_auto_leaves_small_tilts_to_the_detector(page):
    assert "deskew" not in Preprocessor().run(rotated(page, 1.0)).applied


def test_auto_rotated_page_applies_deskew(page):
    result = Preprocessor().run(rotated(page, 5))
    assert result.applied == ["deskew"]
    assert abs(result.angle - 5) < 1.0
    assert "measured" in result.step("deskew").description


def test_auto_noisy_page_applies_denoise(page):
    rng = np.random.default_rng(1)
    noisy = np.clip(page.astype(np.float32) * 0.6 + 60 + rng.normal(0, 15, page.shape[:2])[..., None], 0, 255)
    result = Preprocessor().run(noisy.astype(np.uint8))
    assert "denoise" in result.applied
    assert result.step("denoise").params["noise_sigma"] > 5


def test_auto_never_grayscales_and_blank_page_untouched():
    blank = np.full((200, 300, 3), 230, np.uint8)
    result = Preprocessor().run(blank)
    assert result.applied == [] and np.array_equal(result.image, blank)
    assert "flat" in result.step("contrast").description


# -- modes --------------------------------------------------------------------


def test_off_mode_changes_nothing(page):
    result = Preprocessor({"mode": "off"}).run(rotated(page, 5))
    assert result.applied == [] and result.angle == 0.0
    assert all("off" in s.description for s in result.steps)


def test_manual_mode_runs_exactly_the_enabled_steps(page):
    cfg = config_from_dict({"mode": "manual", "grayscale": True, "contrast": False, "deskew": False,
                            "binarize": {"enabled": True, "block_size": 15}})
    colour = page.copy()
    colour[page[:, :, 0] < 128] = (30, 30, 200)
    result = Preprocessor(cfg).run(colour)
    assert result.applied == ["grayscale", "binarize"]
    assert result.step("binarize").params["block_size"] == 15
    assert result.step("contrast").description == "skipped: switched off"
    line = Preprocessor({"mode": "manual", "contrast": False, "deskew": False,
                         "normalize_size": {"enabled": True, "fixed": [32, 280]}}).run(page[:40])
    assert line.image.shape == (32, 280, 3)


def test_preprocessor_accepts_gray_and_rgba(page):
    gray = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)
    result = Preprocessor().run(gray)
    assert result.image.shape == page.shape and result.image.dtype == np.uint8
    rgba = np.dstack([page, np.full(page.shape[:2], 255, np.uint8)])
    assert Preprocessor().run(rgba).image.shape == page.shape


# -- configuration ------------------------------------------------------------


def test_config_round_trip_and_json():
    cfg = config_from_dict({"mode": "manual", "denoise": {"enabled": True, "h": 10},
                            "normalize_size": {"fixed": [32, 280]}})
    d = cfg.to_dict()
    json.dumps(d)
    assert config_from_dict(d) == cfg
    assert cfg.denoise.h == 10 and cfg.normalize_size.fixed == (32, 280)
    assert config_from_dict(None) == PreprocessConfig() and PreprocessConfig().mode == "auto"


def test_config_normalises_even_sizes():
    cfg = config_from_dict({"binarize": {"block_size": 12}, "denoise": {"template_window": 4, "search_window": 20}})
    assert cfg.binarize.block_size == 13
    assert cfg.denoise.template_window == 5 and cfg.denoise.search_window == 21


@pytest.mark.parametrize("bad,match", [
    ({"binarize": {"block_size": -5}}, "block_size"),
    ({"binarize": {"block_size": 1}}, "block_size"),
    ({"denoise": {"h": 51}}, "h"),
    ({"denoise": {"h": -1}}, "h"),
    ({"contrast": {"clip_limit": 0}}, "clip_limit"),
    ({"contrast": {"clip_limit": 41}}, "clip_limit"),
    ({"contrast": {"tile": 0}}, "tile"),
    ({"contrast": {"clip_limit": "lots"}}, "clip_limit"),
    ({"deskew": {"max_angle": 90}}, "max_angle"),
    ({"deskew": {"border": "purple"}}, "border"),
    ({"normalize_size": {"fixed": [32]}}, "fixed"),
    ({"normalize_size": {"height": 0}}, "height"),
    ({"mode": "magic"}, "mode"),
    ({"sharpen": True}, "sharpen"),
    ({"denoise": {"strength": 3}}, "strength"),
    ({"denoise": {"h": True}}, "h"),
])
def test_config_validation_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(bad)


def test_preprocessor_revalidates_mutated_config():
    cfg = PreprocessConfig()
    cfg.binarize.block_size = -3
    with pytest.raises(ValueError, match="block_size"):
        Preprocessor(cfg)


# -- tiny and odd-shaped images -----------------------------------------------

TINY = [(1, 1), (2, 2), (5, 3000), (3000, 5), (7, 9)]


@pytest.mark.parametrize("shape", TINY, ids=[f"{h}x{w}" for h, w in TINY])
@pytest.mark.parametrize("channels", [0, 3])
def test_tiny_images_survive_every_step_and_mode(shape, channels):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape + ((channels,) if channels else ()), dtype=np.uint8)
    for _, fn, _ in PAGE_STEPS:
        res = fn(img)
        assert res.image.dtype == np.uint8 and res.image.size and single_line(res)
    assert deskew(img, angle=5).image.size
    all_on = {name: True for name in STEP_ORDER}
    for cfg in ({"mode": "auto"}, {"mode": "off"}, {"mode": "manual", **all_on}):
        result = Preprocessor(cfg).run(img)
        assert result.image.ndim == 3 and result.image.shape[2] == 3 and result.image.dtype == np.uint8
        assert len(result.steps) == len(STEP_ORDER) and all(single_line(s) for s in result.steps)
        json.dumps(result.to_dict())


def test_noise_estimate_on_large_pages_equals_the_full_filter():
    """Large pages are sampled without filtering the whole page: the very same estimate."""
    from ocr.preprocess.measure import _NOISE_KERNEL, estimate_noise

    rng = np.random.default_rng(1)
    for shape in [(700, 600), (634, 632), (1500, 1201, 3)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        resp = cv2.filter2D(gray.astype(np.float32), -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
        a = np.abs(resp).ravel()
        a = a[:: a.size // 400_000 + 1] if a.size > 400_000 else a
        assert estimate_noise(img) == float(np.median(a) / (0.6745 * 6.0))


def test_run_without_copy_hands_back_an_untouched_page():
    from ocr.preprocess import Preprocessor

    page = np.full((60, 80, 3), 255, np.uint8)
    assert Preprocessor().run(page).image is not page  # the caller's array is never handed back
    assert Preprocessor().run(page, copy=False).image is page
