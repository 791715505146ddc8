"""PNG-ready pictures of explanations: uint8 ``HxWx3`` RGB arrays, nothing shown on screen.

Heatmaps go over the line image; character brackets and labels sit in white
margins around it, never over it. Text is drawn with a CJK-capable font found
on the machine at first use (WenQuanYi Micro Hei, Noto Sans CJK, ...), each
glyph it lacks (``␣``, rare symbols) from the next font that has it (Noto Sans
CJK, DejaVu Sans); a glyph no font has is drawn as ``�``, never as a box that
looks like a character. Without a CJK font a warning is logged once. Text that
goes under a picture grows with its width (:func:`label_px`), since the page
scales wide pictures down to about :data:`DISPLAY_WIDTH` px. Plots use
matplotlib's object API on an Agg canvas, never pyplot: no global figure
state, no window, safe from worker threads.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
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


#: fonts that fill the CJK font's gaps (WenQuanYi lacks "␣" and rare symbols), best first
FALLBACK_FONTS = ("NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "NotoSansSC-Regular.otf", "DejaVuSans.ttf")
#: how a space is labelled in pictures and tables (a blank label reads as "nothing there")
SPACE_GLYPH = "␣"
#: drawn for a character no font on the machine has, instead of a box that looks like a glyph
MISSING_GLYPH = "\ufffd"
#: the width (px) a picture gets on a desktop page: Gradio scales wider pictures down to it
DISPLAY_WIDTH = 1200


def _covers_cjk(path: str) -> bool:
    try:
        font = ImageFont.truetype(path, 24)
        box = font.getmask("永").getbbox()
        return box is not None and box != font.getmask("\U000f0000").getbbox()
    except OSError:
        return False


@lru_cache(maxsize=1)
def _font_files() -> dict[str, str]:
    """Every font file under the font folders, by lower-case file name (first one found wins)."""
    files: dict[str, str] = {}
    for root in FONT_DIRS:
        base = Path(root)
        if base.is_dir():
            for path in base.rglob("*"):
                if path.suffix.lower() in (".ttf", ".ttc", ".otf"):
                    files.setdefault(path.name.lower(), str(path))
    return files


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Path of a font with CJK glyphs, or None (logged once)."""
    files = _font_files()
    for name in PREFERRED_FONTS:
        path = files.get(name.lower())
        if path and _covers_cjk(path):
            return path
    for entry in fontManager.ttflist:  # anything matplotlib knows that looks CJK
        if any(h in entry.name.lower() for h in _CJK_NAME_HINTS) and _covers_cjk(entry.fname):
            return entry.fname
    log.warning("no CJK font found (install fonts-wqy-microhei): Chinese labels will not render")
    return None


def _dejavu() -> str:
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


@lru_cache(maxsize=1)
def font_chain() -> tuple[str, ...]:
    """The CJK font first, then the fonts that fill its gaps: a label is drawn in the first that has it,
    so "␣" and rare candidates are glyphs, not boxes."""
    files = _font_files()
    chain = [find_cjk_font()] + [files.get(name.lower()) for name in FALLBACK_FONTS] + [_dejavu()]
    out: list[str] = []
    for path in chain:
        if path and Path(path).name not in {Path(o).name for o in out} and Path(path).exists():
            out.append(path)
    return tuple(out)


@lru_cache(maxsize=8)
def _ft2font(path: str) -> Any:
    return FT2Font(path)


@lru_cache(maxsize=8192)
def _font_for_char(ch: str) -> str | None:
    """The first font of :func:`font_chain` that has ``ch`` (None: no font has it)."""
    for path in font_chain():
        if _ft2font(path).get_char_index(ord(ch)):
            return path
    return None


def shown_space(text: str) -> str:
    """A label that is only spaces as ␣ (a blank label or cell reads as "nothing there"); anything else as is."""
    return SPACE_GLYPH * len(text) if text and text.isspace() else text


def shown_label(label: str) -> str:
    """A character label as pictures show it: the blank as ε, a space as ␣, a glyph no font has as �."""
    if label == BLANK_LABEL:
        return BLANK_GLYPH
    if label and label.isspace():
        return shown_space(label)
    return "".join(c if c.isspace() or _font_for_char(c) else MISSING_GLYPH for c in label)


@lru_cache(maxsize=64)
def _pil_font_at(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default()
    index = 2 if path.lower().endswith("notosanscjk-regular.ttc") else 0  # the Simplified Chinese face
    try:
        return ImageFont.truetype(path, size, index=index)
    except OSError:
        return ImageFont.load_default()


def _pil_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The main (CJK) font at ``size`` px, DejaVu Sans without one."""
    chain = font_chain()
    return _pil_font_at(chain[0] if chain else None, size)


def _runs(text: str, size: int) -> list[tuple[str, Any]]:
    """``text`` cut into runs that one font draws (spaces stay with the run they are in)."""
    main = font_chain()[0] if font_chain() else None
    runs: list[tuple[str, Any]] = []
    for ch in text:
        font = _pil_font_at(main if ch.isspace() else _font_for_char(ch) or main, size)
        if runs and runs[-1][1] is font:
            runs[-1] = (runs[-1][0] + ch, font)
        else:
            runs.append((ch, font))
    return runs


def text_width(text: str, size: int) -> float:
    """Width in px of ``text`` drawn by :func:`draw_text`."""
    return float(sum(font.getlength(run) for run, font in _runs(text, size)))


def draw_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int,
              fill: tuple[int, int, int], anchor: str = "lt") -> None:
    """Text in the font chain (each glyph from the first font that has it); ``anchor``: l/m/r then t/m."""
    runs = _runs(text, size)
    width = sum(font.getlength(run) for run, font in runs)
    main = _pil_font(size)
    ascent, descent = main.getmetrics() if hasattr(main, "getmetrics") else (size, 0)
    x = xy[0] - {"l": 0.0, "m": width / 2, "r": width}[anchor[0]]
    baseline = xy[1] + (ascent if anchor[1] == "t" else (ascent - descent) / 2)
    for run, font in runs:
        draw.text((x, baseline), run, font=font, fill=fill, anchor="ls")
        x += font.getlength(run)


def label_px(width: int, base: int = 14) -> int:
    """Text height (px) that shows ``base`` px high once a ``width``-px picture is scaled to the page."""
    return max(base, round(base * width / DISPLAY_WIDTH))


@lru_cache(maxsize=1)
def _mpl_families() -> tuple[list[str], list[Any]]:
    """matplotlib family names of the font chain (CJK font first) and their FT2Fonts."""
    families, fonts = [], []
    for path in font_chain():
        try:
            fontManager.addfont(path)
            name = FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):
            continue
        if name not in families:
            families.append(name)
            fonts.append(_ft2font(path))
    if "DejaVu Sans" not in families:
        families.append("DejaVu Sans")
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
             title: str = "", height: int | None = None) -> np.ndarray:
    """A horizontal colour scale exactly ``width`` px wide, labelled at both ends and in the middle.

    Its bar and text grow with ``width`` (:func:`label_px`): a wide picture is scaled down to the page,
    and the labels must still read at about 14 px there.
    """
    width = max(int(width), 120)
    size = label_px(width)
    bar = int(height) if height else label_px(width, 16)
    ramp = colorize(np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (bar, 1)), cmap)
    pad = max(3, size // 4)
    canvas = Image.new("RGB", (width, bar + size + 2 * pad), (255, 255, 255))
    canvas.paste(Image.fromarray(ramp), (0, 0))
    draw = ImageDraw.Draw(canvas)
    ink, y = (30, 30, 30), bar + pad
    draw_text(draw, (2, y), low, size, ink)
    draw_text(draw, (width - 2, y), high, size, ink, anchor="rt")
    if title and text_width(title, size) < width - text_width(low, size) - text_width(high, size) - 4 * size:
        draw_text(draw, (width / 2, y), title, size, ink, anchor="mt")
    return np.asarray(canvas).copy()


def with_colorbar(image: np.ndarray, title: str = "", **kwargs: Any) -> np.ndarray:
    """``image`` with its colour scale under it, as wide as the image (the scale of the heat it shows)."""
    rgb = _as_rgb(image)
    return stack_vertical([rgb, colorbar(rgb.shape[1], title=title, **kwargs)], gap=max(6, label_px(rgb.shape[1], 6)))


def _span(c: Any) -> tuple[float, float, str]:
    if isinstance(c, dict):
        return float(c["x_start"]), float(c["x_end"]), str(c.get("char", ""))
    if isinstance(c, (tuple, list)):
        return float(c[0]), float(c[1]), str(c[2]) if len(c) > 2 else ""
    return float(c.x_start), float(c.x_end), str(getattr(c, "char", ""))


def _bracket(draw: ImageDraw.ImageDraw, x0: float, x1: float, edge: int, out: int,
             color: tuple[int, int, int], width: int) -> None:
    """A bracket in a margin band: ticks at ``x0``/``x1`` from the picture's ``edge`` out to ``out``, joined there.

    Drawn outside the line image, so it never covers the glyph it marks (a box's sides did: on a
    narrow character, once enlarged, they hid it).
    """
    a, b = int(round(x0)), max(int(round(x1)) - 1, int(round(x0)))
    if b - a > 4:  # a pixel apart from the neighbours' brackets
        a, b = a + 1, b - 1
    draw.line([(a, edge), (a, out), (b, out), (b, edge)], fill=color, width=width)


def _label_strip(draw: ImageDraw.ImageDraw, spans: list[tuple[float, float, str]], y: int, size: int,
                 highlight: int | None, highlight_color: tuple[int, int, int]) -> None:
    """Each character's label centred under its columns (a space as ␣, in grey)."""
    for i, (x0, x1, ch) in enumerate(spans):
        label = shown_label(ch) if ch else ""
        fill = highlight_color if highlight == i else (150, 150, 150) if ch.isspace() else (30, 30, 30)
        draw_text(draw, ((x0 + x1) / 2, y), label, size, fill, anchor="mt")


def draw_char_boxes(image: np.ndarray, chars: Sequence[Any], *, highlight: int | None = None,
                    labels: bool = True, color: tuple[int, int, int] | None = None,
                    highlight_color: tuple[int, int, int] = (255, 0, 200)) -> np.ndarray:
    """Each character's column range as a bracket under the image; with ``labels``, a strip names each one.

    The ``highlight`` character is bracketed above and below in magenta: the marks sit in
    white margins, so nothing is drawn over the line, its heat map or the marked glyph.
    ``chars``: CharSpans, table rows (dicts) or ``(x_start, x_end[, char])`` tuples, in image pixels.
    """
    rgb = _as_rgb(image)
    h, w = rgb.shape[:2]
    spans = [_span(c) for c in chars]
    band = max(5, round(h * 0.2)) if spans else 0
    top = band if highlight is not None and spans else 0
    size = max(12, min(24, h // 2))
    strip = size + 8 if labels and spans else 0
    canvas = Image.new("RGB", (w, top + h + band + strip), (255, 255, 255))
    canvas.paste(Image.fromarray(rgb), (0, top))
    draw = ImageDraw.Draw(canvas)
    thin, thick, bottom = max(1, h // 32), max(1, h // 20), top + h
    for i, (x0, x1, _) in enumerate(spans):
        if i != highlight:
            _bracket(draw, x0, x1, bottom, bottom + band // 2, color or (120, 120, 120), thin)
    if highlight is not None and 0 <= highlight < len(spans):
        x0, x1, _ = spans[highlight]
        _bracket(draw, x0, x1, top - 1, thick // 2, highlight_color, thick)
        _bracket(draw, x0, x1, bottom, bottom + band - 1 - thick // 2, highlight_color, thick)
    if strip:
        _label_strip(draw, spans, bottom + band + 2, size, highlight, highlight_color)
    return np.asarray(canvas).copy()


# ---------------------------------------------------------------- alignment


#: frames per row of the top-k picture: at the page's width a cell stays ~24 px, wide enough for its label
FRAMES_PER_ROW = 50
#: ranks 2..k are labelled from this probability (below it the cell's colour already says "nothing")
MIN_LABEL_P = 0.01


@dataclass(frozen=True)
class _TopkLayout:
    """Geometry (inches) of the top-k picture: the frames wrapped into rows of ``per_row`` frames."""

    frames: int
    ranks: int
    per_row: int
    titled: bool
    left: float = 0.55
    right: float = 0.15
    cell_y: float = 0.3
    gap: float = 0.42  # below each row: its time-step ticks

    @property
    def rows(self) -> int:
        return max(1, math.ceil(self.frames / self.per_row))

    @property
    def cell_x(self) -> float:
        return min(0.3, (DISPLAY_WIDTH / 100 - self.left - self.right) / max(min(self.frames, self.per_row), 1))

    @property
    def top(self) -> float:
        return 0.45 if self.titled else 0.15

    @property
    def size(self) -> tuple[float, float]:
        width = self.left + self.right + self.cell_x * max(min(self.frames, self.per_row), 1)
        height = self.top + self.rows * (self.ranks * self.cell_y + self.gap) + 0.3
        return max(width, 3.0), height

    def box(self, row: int, n: int) -> tuple[float, float, float, float]:
        """Row ``row``'s axes (``n`` frames) as a figure fraction; every row has the same cell size."""
        fig_w, fig_h = self.size
        y_top = self.top + row * (self.ranks * self.cell_y + self.gap)
        height = self.ranks * self.cell_y
        return (self.left / fig_w, (fig_h - y_top - height) / fig_h, self.cell_x * max(n, 1) / fig_w, height / fig_h)


def _topk_row(fig: Figure, layout: _TopkLayout, probs: np.ndarray, row: int) -> Any:
    """One row of the top-k picture: frames ``row * per_row`` on, x in time steps, y in ranks."""
    start = row * layout.per_row
    chunk = probs[start : start + layout.per_row]
    n, k = max(len(chunk), 1), layout.ranks
    ax = fig.add_axes(layout.box(row, n))
    ax.imshow(chunk.T if len(chunk) else np.zeros((k, 1)), aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0,
              interpolation="nearest", extent=(start - 0.5, start + n - 0.5, k - 0.5, -0.5))
    ax.set_yticks(range(k), [f"#{r + 1}" for r in range(k)], fontproperties=_mpl_font(8))
    ax.set_xticks([t for t in range(start, start + n) if t % 5 == 0])
    ax.tick_params(axis="x", labelsize=8, length=3, pad=2)
    return ax


def _cell_ink(label: str, p: float) -> tuple[tuple[int, int, int], int]:
    """Colour and size of a cell's label: characters stand out, the blank (most frames) is muted."""
    bright = p > 0.6
    if label == BLANK_LABEL:
        return ((110, 110, 90) if bright else (150, 150, 170)), 10
    return ((0, 0, 0) if bright else (255, 255, 255)), 13


def _label_topk_cells(image: Image.Image, axes: list[Any], topk: FrameTopK, probs: np.ndarray, per_row: int) -> None:
    """Each cell's character, in one PIL pass (hundreds of matplotlib text artists took seconds).

    Rank 1 always (what the frame says); lower ranks where they have at least :data:`MIN_LABEL_P`.
    """
    draw, height = ImageDraw.Draw(image), image.height
    for ti in range(probs.shape[0]):
        ax = axes[ti // per_row]
        for r in range(probs.shape[1]):
            p = float(probs[ti, r])
            if r and p < MIN_LABEL_P:
                continue
            label = topk.labels[ti][r]
            ink, size = _cell_ink(label, p)
            x, y = ax.transData.transform((ti, r))
            draw_text(draw, (x, height - y), shown_label(label), size, ink, anchor="mm")


def _shown_ranks(probs: np.ndarray) -> int:
    """Ranks worth a row: rank 1, and each lower rank that reaches :data:`MIN_LABEL_P` in some frame."""
    if probs.ndim != 2 or not probs.size:
        return max(probs.shape[-1] if probs.ndim == 2 else 1, 1)
    reached = np.nonzero((probs >= MIN_LABEL_P).any(axis=0))[0]
    return int(max(1, (reached.max() + 1) if reached.size else 1))


def alignment_image(topk: FrameTopK, *, title: str | None = None, frames_per_row: int = FRAMES_PER_ROW) -> np.ndarray:
    """Time (x) x rank (y) heatmap of every frame's top-k probabilities, each cell labelled with its character.

    A long line wraps into rows of ``frames_per_row`` frames, so the picture keeps the page's width
    and its labels stay ~12 px on screen (one 140-frame row was scaled to a third and unreadable).
    Lower ranks that stay below :data:`MIN_LABEL_P` in every frame are left out, and the axis says so.
    """
    probs = np.asarray(topk.probs, dtype=np.float32)
    if probs.ndim != 2:
        probs = np.zeros((0, 1), np.float32)
    k = probs.shape[1]
    shown = _shown_ranks(probs)
    probs = probs[:, :shown]
    layout = _TopkLayout(probs.shape[0], max(shown, 1), max(int(frames_per_row), 1), bool(title))
    fig = Figure(figsize=layout.size, dpi=100)
    axes = [_topk_row(fig, layout, probs, row) for row in range(layout.rows)]
    if title:
        fig.suptitle(displayable(title), fontproperties=_mpl_font(10), y=1 - 0.08 / layout.size[1], va="top")
    hidden = f" · ranks {shown + 1}–{k} below {MIN_LABEL_P:g} everywhere (not drawn)" if shown < k else ""
    axes[-1].set_xlabel(f"time step (frame = 8 input px) · {BLANK_GLYPH} = blank · {SPACE_GLYPH} = space · "
                        f"ranks 2+ labelled from p ≥ {MIN_LABEL_P:g}{hidden}", fontproperties=_mpl_font(8))
    image = Image.fromarray(_figure_to_rgb(fig))
    _label_topk_cells(image, axes, topk, probs, layout.per_row)
    return np.asarray(image).copy()


def alignment_matrix_image(am: AlignmentMatrix, *, title: str | None = None) -> np.ndarray:
    """Class (y, blank first) x time (x) heatmap: a clean reading is a staircase.

    At most the page's width: a long line's frames get narrower, its class labels stay readable.
    """
    rows, t = am.matrix.shape
    width = min(DISPLAY_WIDTH / 100, max(4.0, 1.5 + 0.12 * max(t, 1)))
    height = min(30.0, 1.0 + 0.22 * rows)
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_axes((1.0 / width, 0.6 / height, 1 - 1.2 / width, 1 - (0.6 + (0.35 if title else 0.1)) / height))
    ax.imshow(am.matrix if t else np.zeros((rows, 1)), aspect="auto", cmap="magma", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    labels = [displayable(shown_label(lab)) for lab in am.labels]
    ax.set_yticks(range(rows), labels, fontproperties=_mpl_font(8))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("time step", fontproperties=_mpl_font(8))
    if title:
        ax.set_title(displayable(title), fontproperties=_mpl_font(10))
    return _figure_to_rgb(fig)


# ---------------------------------------------------------------- text


def confidence_strip(text: str, confidences: Sequence[float], *, font_size: int = 32,
                     cmap: str = "RdYlGn") -> np.ndarray:
    """The text, one cell per character tinted by its confidence (red low, green high), percent below.

    A space is shown as a grey ␣: its cell and percent would otherwise sit under nothing.
    """
    if len(confidences) != len(text):
        raise ValueError("need one confidence per character")
    small = max(10, font_size // 3)
    shown = [shown_label(c) for c in text]
    cell_w = [max(font_size * 0.6, text_width(c, font_size)) + 6 for c in shown]
    width = int(sum(cell_w)) + 8 if text else 8
    height = font_size + font_size // 3 + 18
    img = Image.new("RGB", (max(width, 8), height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    colormap = matplotlib.colormaps[cmap]
    x = 4.0
    for ch, label, w, conf in zip(text, shown, cell_w, confidences):
        c = float(np.clip(conf, 0.0, 1.0))
        tint = np.array(colormap(c)[:3]) * 255
        bg = tuple(int(v) for v in 0.55 * tint + 0.45 * 255)
        draw.rectangle([int(x), 2, int(x + w) - 2, height - 3], fill=bg)
        ink = (120, 120, 120) if ch.isspace() else (20, 20, 20)
        draw_text(draw, (x + w / 2 - 1, 4), label, font_size, ink, anchor="mt")
        draw_text(draw, (x + w / 2 - 1, font_size + 8), f"{round(100 * c)}", small, (20, 20, 20), anchor="mt")
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
