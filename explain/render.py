"""PNG-ready pictures of explanations: uint8 ``HxWx3`` RGB arrays, nothing shown on screen.

Heatmaps go over the line image; character boxes and labels are drawn with
a CJK-capable font, found on the machine at first use (WenQuanYi Micro Hei,
Noto Sans CJK, ...). Without one, labels fall back to a Latin font (CJK
characters then show as boxes) and a warning is logged once. Plots use
matplotlib's object API on an Agg canvas, never pyplot: no global figure
state, no window, safe from worker threads.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, fontManager
from matplotlib.ft2font import FT2Font
from PIL import Image, ImageDraw, ImageFont

from explain.alignment import BLANK_LABEL, AlignmentMatrix, FrameTopK
from ocr.settings import FONTS_DIR

log = logging.getLogger(__name__)

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"),
             str(FONTS_DIR))
#: preferred CJK fonts, best first (sans faces read best at small sizes)
PREFERRED_FONTS = ("wqy-microhei.ttc", "wqy-zenhei.ttc", "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf",
                   "NotoSansSC-Regular.otf", "DroidSansFallbackFull.ttf", "DroidSansFallback.ttf",
                   "NotoSerifCJK-Regular.ttc", "uming.ttc", "ukai.ttc")
_CJK_NAME_HINTS = ("cjk", "wenquanyi", "wqy", "hei", "ming", "kai", "song", "fallback", "sc")
#: what the blank looks like in plots (the data label stays BLANK_LABEL)
BLANK_GLYPH = "ε"


def _covers_cjk(path: str) -> bool:
    try:
        font = ImageFont.truetype(path, 24)
        box = font.getmask("永").getbbox()
        return box is not None and box != font.getmask("\U000f0000").getbbox()
    except OSError:
        return False


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Path of a font with CJK glyphs, or None (logged once)."""
    files: dict[str, str] = {}
    for root in FONT_DIRS:
        base = Path(root)
        if base.is_dir():
            for path in base.rglob("*"):
                if path.suffix.lower() in (".ttf", ".ttc", ".otf"):
                    files.setdefault(path.name.lower(), str(path))
    for name in PREFERRED_FONTS:
        path = files.get(name.lower())
        if path and _covers_cjk(path):
            return path
    for entry in fontManager.ttflist:  # anything matplotlib knows that looks CJK
        if any(h in entry.name.lower() for h in _CJK_NAME_HINTS) and _covers_cjk(entry.fname):
            return entry.fname
    log.warning("no CJK font found (install fonts-wqy-microhei): Chinese labels will not render")
    return None


@lru_cache(maxsize=32)
def _pil_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = find_cjk_font()
    if path:
        return ImageFont.truetype(path, size)
    try:
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except OSError:
        return ImageFont.load_default()


@lru_cache(maxsize=1)
def _mpl_families() -> tuple[list[str], list[Any]]:
    """matplotlib family names (CJK font first, DejaVu Sans as fallback) and their FT2Fonts."""
    families, fonts = [], []
    path = find_cjk_font()
    if path:
        fontManager.addfont(path)
        families.append(FontProperties(fname=path).get_name())
        fonts.append(FT2Font(path))
    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    families.append("DejaVu Sans")
    if dejavu.exists():
        fonts.append(FT2Font(str(dejavu)))
    return families, fonts


def _mpl_font(size: float) -> FontProperties:
    return FontProperties(family=_mpl_families()[0], size=size)


@lru_cache(maxsize=4096)
def _drawable(char: str) -> bool:
    return any(f.get_char_index(ord(char)) for f in _mpl_families()[1])


def displayable(text: str, missing: str = "?") -> str:
    """``text`` with characters no plot font has replaced (matplotlib would warn and draw a box)."""
    return "".join(c if len(c) != 1 or c.isspace() or _drawable(c) else missing for c in text)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 image, got shape {arr.shape}")
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _figure_to_rgb(fig: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3])


# ---------------------------------------------------------------- heatmaps


def colorize(m: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """A [0,1] map -> uint8 RGB through a matplotlib colormap."""
    arr = np.clip(np.nan_to_num(np.asarray(m, dtype=np.float32)), 0.0, 1.0)
    return (matplotlib.colormaps[cmap](arr)[..., :3] * 255.0 + 0.5).astype(np.uint8)


def overlay(image: np.ndarray, m: np.ndarray, alpha: float = 0.85, cmap: str = "jet",
            floor: float = 0.0, stretch: float | None = 99.0) -> np.ndarray:
    """The map (any size, resized to the image) as a heat overlay on a grey copy of the image.

    The image is turned grey first, so every colour on the result is the map's; the blend weight
    grows with the map value (``floor`` .. ``alpha``, square-root shaped), so the text stays plain
    grey where there is no evidence and the hot places are clearly coloured. Maps are sparse (a
    few hot columns): for display the ``stretch`` percentile of the map counts as the top of the
    scale (the returned maps keep their values).
    """
    rgb = _as_rgb(image)
    h, w = rgb.shape[:2]
    arr = np.asarray(m, dtype=np.float32)
    if arr.shape != (h, w):
        arr = cv2.resize(arr, (w, h), interpolation=cv2.INTER_LINEAR)
    if stretch is not None and arr.size:
        top = float(np.percentile(arr, stretch))
        if top > 1e-6:
            arr = np.clip(arr / top, 0.0, 1.0)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)[:, :, None]
    base = 80.0 + grey * (175.0 / 255.0)  # lifted grey: dark text stays visible under the colour
    heat = colorize(arr, cmap).astype(np.float32)
    weight = (floor + (alpha - floor) * np.sqrt(np.clip(arr, 0.0, 1.0)))[:, :, None]
    return np.clip((1.0 - weight) * base + weight * heat + 0.5, 0, 255).astype(np.uint8)


def colorbar(width: int, *, cmap: str = "jet", low: str = "低 low", high: str = "高 high",
             title: str = "", height: int = 14) -> np.ndarray:
    """A horizontal colour scale ``width`` px wide, labelled at both ends (and in the middle)."""
    width = max(int(width), 120)
    ramp = colorize(np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1)), cmap)
    size = 13
    canvas = Image.new("RGB", (width, height + size + 8), (255, 255, 255))
    canvas.paste(Image.fromarray(ramp), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _pil_font(size)
    draw.text((2, height + 3), low, font=font, fill=(30, 30, 30))
    draw.text((width - draw.textlength(high, font=font) - 2, height + 3), high, font=font, fill=(30, 30, 30))
    if title:
        draw.text(((width - draw.textlength(title, font=font)) / 2, height + 3), title, font=font, fill=(30, 30, 30))
    return np.asarray(canvas).copy()


def with_colorbar(image: np.ndarray, title: str = "", **kwargs: Any) -> np.ndarray:
    """``image`` with a colour scale under it (the scale of the heat it shows)."""
    rgb = _as_rgb(image)
    return stack_vertical([rgb, colorbar(min(rgb.shape[1], 900), title=title, **kwargs)], gap=6)


def _span(c: Any) -> tuple[float, float, str]:
    if isinstance(c, dict):
        return float(c["x_start"]), float(c["x_end"]), str(c.get("char", ""))
    if isinstance(c, (tuple, list)):
        return float(c[0]), float(c[1]), str(c[2]) if len(c) > 2 else ""
    return float(c.x_start), float(c.x_end), str(getattr(c, "char", ""))


def draw_char_boxes(image: np.ndarray, chars: Sequence[Any], *, highlight: int | None = None,
                    labels: bool = True, color: tuple[int, int, int] | None = None,
                    highlight_color: tuple[int, int, int] = (255, 0, 200)) -> np.ndarray:
    """Each character's column range as a box; with ``labels``, a strip below names each box.

    ``chars``: CharSpans, table rows (dicts) or ``(x_start, x_end[, char])``
    tuples, in image pixels.
    """
    rgb = _as_rgb(image)
    h, w = rgb.shape[:2]
    if color is None:  # white over a heat map, green over a plain (grey) line image
        coloured = float(np.mean(rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2))) > 25
        color = (255, 255, 255) if coloured else (0, 150, 60)
    size = max(12, min(24, h // 2))
    strip = size + 8 if labels and chars else 0
    canvas = Image.new("RGB", (w, h + strip), (255, 255, 255))
    canvas.paste(Image.fromarray(rgb), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _pil_font(size)
    for i, c in enumerate(chars):
        x0, x1, ch = _span(c)
        hot = highlight == i
        col = highlight_color if hot else color
        draw.rectangle([int(round(x0)), 0, max(int(round(x1)) - 1, int(round(x0))), h - 1], outline=col,
                       width=2 if hot else 1)  # thin outlines: the heat underneath stays visible
        if strip:
            label = ch if ch.strip() else "␣"
            tw = draw.textlength(label, font=font)
            draw.text(((x0 + x1 - tw) / 2, h + 3), label, font=font, fill=highlight_color if hot else (30, 30, 30))
    return np.asarray(canvas).copy()


# ---------------------------------------------------------------- alignment


def alignment_image(topk: FrameTopK, *, title: str | None = None, max_label_frames: int = 160) -> np.ndarray:
    """Time (x) x rank (y) heatmap of every frame's top-k probabilities, each cell labelled with its character.

    Long lines (more than ``max_label_frames`` frames) label only cells with
    probability >= 0.2, so the labels stay readable.
    """
    probs = np.asarray(topk.probs, dtype=np.float32)
    t, k = (probs.shape[0], probs.shape[1]) if probs.ndim == 2 else (0, 1)
    k = max(k, 1)
    left, right, bottom, top = 0.55, 0.15, 0.55, 0.45 if title else 0.15
    cell_x = min(0.3, 58.0 / max(t, 1))  # inches per frame; the figure stays under 60 in (6000 px)
    cell_y = 0.3
    fig_w = left + right + cell_x * max(t, 1)
    fig_h = bottom + top + cell_y * k
    fig = Figure(figsize=(max(fig_w, 3.0), fig_h), dpi=100)
    fig_w = max(fig_w, 3.0)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, cell_x * max(t, 1) / fig_w, cell_y * k / fig_h))
    ax.imshow(probs.T if t else np.zeros((k, 1)), aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    if title:
        ax.set_title(displayable(title), fontproperties=_mpl_font(10))
    ax.set_yticks(range(k), [f"#{r + 1}" for r in range(k)], fontproperties=_mpl_font(8))
    step = max(1, t // 40)
    ax.set_xticks(range(0, max(t, 1), step))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel(f"time step (frame = 8 input px); {BLANK_GLYPH} = blank", fontproperties=_mpl_font(8))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.fromarray(np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3]))
    # the cell labels in one PIL pass (hundreds of matplotlib text artists took seconds)
    draw, font = ImageDraw.Draw(image), _pil_font(12 if t <= max_label_frames else 10)
    height = image.height
    for ti in range(t):
        for r in range(k):
            p = float(probs[ti, r])
            if t > max_label_frames and p < 0.2:
                continue
            label = topk.labels[ti][r]
            text = BLANK_GLYPH if label == BLANK_LABEL else label
            x, y = ax.transData.transform((ti, r))
            draw.text((x, height - y), text, font=font, anchor="mm", fill=(0, 0, 0) if p > 0.6 else (255, 255, 255))
    return np.asarray(image).copy()


def alignment_matrix_image(am: AlignmentMatrix, *, title: str | None = None) -> np.ndarray:
    """Class (y, blank first) x time (x) heatmap: a clean reading is a staircase."""
    rows, t = am.matrix.shape
    width = min(60.0, max(4.0, 1.5 + 0.12 * max(t, 1)))
    height = min(30.0, 1.0 + 0.22 * rows)
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_axes((1.0 / width, 0.6 / height, 1 - 1.2 / width, 1 - (0.6 + (0.35 if title else 0.1)) / height))
    ax.imshow(am.matrix if t else np.zeros((rows, 1)), aspect="auto", cmap="magma", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    labels = [BLANK_GLYPH if lab == BLANK_LABEL else displayable(lab) for lab in am.labels]
    ax.set_yticks(range(rows), labels, fontproperties=_mpl_font(8))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("time step", fontproperties=_mpl_font(8))
    if title:
        ax.set_title(displayable(title), fontproperties=_mpl_font(10))
    return _figure_to_rgb(fig)


# ---------------------------------------------------------------- text


def confidence_strip(text: str, confidences: Sequence[float], *, font_size: int = 32,
                     cmap: str = "RdYlGn") -> np.ndarray:
    """The text, one cell per character tinted by its confidence (red low, green high), percent below."""
    if len(confidences) != len(text):
        raise ValueError("need one confidence per character")
    font, small = _pil_font(font_size), _pil_font(max(10, font_size // 3))
    cell_w = [max(font_size * 0.6, ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(c, font=font)) + 6
              for c in text]
    width = int(sum(cell_w)) + 8 if text else 8
    height = font_size + font_size // 3 + 18
    img = Image.new("RGB", (max(width, 8), height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    colormap = matplotlib.colormaps[cmap]
    x = 4.0
    for ch, w, conf in zip(text, cell_w, confidences):
        c = float(np.clip(conf, 0.0, 1.0))
        tint = np.array(colormap(c)[:3]) * 255
        bg = tuple(int(v) for v in 0.55 * tint + 0.45 * 255)
        draw.rectangle([int(x), 2, int(x + w) - 2, height - 3], fill=bg)
        tw = draw.textlength(ch, font=font)
        draw.text((x + (w - tw) / 2 - 1, 4), ch, font=font, fill=(20, 20, 20))
        pct = f"{round(100 * c)}"
        pw = draw.textlength(pct, font=small)
        draw.text((x + (w - pw) / 2 - 1, font_size + 8), pct, font=small, fill=(20, 20, 20))
        x += w
    return np.asarray(img).copy()


def stack_vertical(images: Sequence[np.ndarray], gap: int = 4, bg: int = 255) -> np.ndarray:
    """Images one under the other, left-aligned, padded to the widest."""
    rgbs = [_as_rgb(i) for i in images]
    if not rgbs:
        return np.full((1, 1, 3), bg, np.uint8)
    w = max(i.shape[1] for i in rgbs)
    h = sum(i.shape[0] for i in rgbs) + gap * (len(rgbs) - 1)
    out = np.full((h, w, 3), bg, np.uint8)
    y = 0
    for i in rgbs:
        out[y : y + i.shape[0], : i.shape[1]] = i
        y += i.shape[0] + gap
    return out


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB array as PNG; returns the path."""
    p = Path(path)
    Image.fromarray(_as_rgb(image)).save(p, format="PNG")
    return p
