"""Which preprocessing steps run and with what parameters, validated once (``config_from_dict``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ocr.preprocess.steps import BORDERS, DENOISE_MAX_PIXELS, MAX_LINE_WIDTH, STEP_ORDER
from ocr.recognize.lineprep import INPUT_HEIGHT, STRIDE_X
from ocr.settings import switch_word

MODES = ("auto", "manual", "off")


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
    if isinstance(value, str) and switch_word(value.strip()) is not None:
        return bool(switch_word(value.strip()))
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

