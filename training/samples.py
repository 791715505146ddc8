"""The demo's sample images, rendered deterministically with their ground truth.

    python -m training.samples --out examples/

writes, for every sample, ``<name>.png`` (or ``.jpg``) and ``<name>.json`` =
``{"image", "kind", "description", "caption", "lines": [{"box": [x1,y1,...,x4,y4], "text"}]}``
— the format of a page set's ``page.jsonl`` lines — plus ``index.jsonl`` with
one such object per sample, so the set can be run and scored end to end::

    python -m ocr page --pages examples/index.jsonl --out preds.jsonl
    python -m benchmarks.evaluate --pages examples/index.jsonl --preds preds.jsonl --protocol zh

Every text run is drawn with PIL through an alpha mask and labelled with the
tight rectangle of its visible ink (4 points, clockwise from top-left); the
photo-like variants move the boxes with every geometric transform. No
randomness beyond fixed seeds, so the same fonts give the same bytes.
Reads nothing but fonts: no dataset, no eval set.
"""

from __future__ import annotations

import argparse
import io
import json
import random
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from training.synth import FONT_DIRS, FontSpec, _load_font, discover_fonts, render_text

RGB = tuple[int, int, int]

#: label boxes keep this many pixels of paper around the ink, as real page sets do
#: (a box cut to the ink makes IoU on short runs like "5" hinge on one pixel)
LABEL_PAD = 3
#: alpha at or above which a mask pixel counts as drawn ink (drops invisible anti-alias fringes)
INK_ALPHA = 32

#: font roles -> preferred (file name, face index), best first; index 2 is the SC face of Noto CJK
FONT_ROLES: dict[str, tuple[tuple[str, int], ...]] = {
    "zh": (("NotoSansCJK-Regular.ttc", 2), ("wqy-microhei.ttc", 0), ("wqy-zenhei.ttc", 0)),
    "zh_bold": (("NotoSansCJK-Bold.ttc", 2), ("wqy-zenhei.ttc", 0), ("wqy-microhei.ttc", 0)),
    "zh_title": (("NotoSerifCJK-Bold.ttc", 2), ("NotoSansCJK-Bold.ttc", 2), ("wqy-zenhei.ttc", 0)),
    "mono": (("DejaVuSansMono.ttf", 0), ("LiberationMono-Regular.ttf", 0), ("NotoSansMono-Regular.ttf", 0)),
    "mono_bold": (("DejaVuSansMono-Bold.ttf", 0), ("LiberationMono-Bold.ttf", 0), ("NotoSansMono-Bold.ttf", 0)),
}
CJK_ROLES = frozenset({"zh", "zh_bold", "zh_title"})

INK: RGB = (25, 25, 30)
LABEL: RGB = (118, 58, 32)  # the brown print of invoice forms
RULE: RGB = (150, 85, 60)
RED: RGB = (200, 32, 32)


# ---------------------------------------------------------------- fonts


@lru_cache(maxsize=1)
def _font_files() -> dict[str, str]:
    """File name -> path of every font file under the font directories (first one wins)."""
    found: dict[str, str] = {}
    for root in FONT_DIRS:
        for path in sorted(Path(root).rglob("*")):
            if path.suffix.lower() in {".ttf", ".otf", ".ttc"}:
                found.setdefault(path.name, str(path))
    return found


@lru_cache(maxsize=None)
def font_for(role: str) -> FontSpec:
    """The font of a role: the first preferred file installed, else any discovered font that fits."""
    files = _font_files()
    for name, index in FONT_ROLES[role]:
        if name in files:
            return FontSpec(files[name], index, role in CJK_ROLES)
    need_cjk = role in CJK_ROLES
    fallback = [f for f in discover_fonts() if f.cjk or not need_cjk]
    if not fallback:
        raise RuntimeError(f"no {'CJK ' if need_cjk else ''}font found under {', '.join(FONT_DIRS)} "
                           "(install fonts-noto-cjk fonts-dejavu-core)")
    return fallback[0]


def preferred_fonts_installed() -> bool:
    """True when every role gets its first-choice font, i.e. output matches the committed examples."""
    files = _font_files()
    return all(prefs[0][0] in files for prefs in FONT_ROLES.values())


# ---------------------------------------------------------------- drawing


@dataclass(frozen=True)
class TextRun:
    """One labelled piece of text: ``xy`` is placed by the PIL ``anchor`` (default left/baseline)."""

    text: str
    xy: tuple[int, int]
    size: int = 18
    font: str = "zh"
    fill: RGB = INK
    anchor: str = "ls"


#: the short caption each sample shows under its thumbnail in the UI (the description is too long to fit)
CAPTIONS = {"invoice_zh": "发票 invoice", "receipt_en": "收据 receipt", "shipping_label": "面单 label",
            "line_zh": "单行 line", "invoice_zh_blur": "模糊 blur", "invoice_zh_tilt": "倾斜 tilted",
            "invoice_zh_jpeg": "JPEG 25", "receipt_en_shadow": "阴影 shade", "receipt_en_lowcontrast": "褪色 faded"}


@dataclass
class Sample:
    """A rendered sample: the image and its labelled lines."""

    name: str
    kind: str  # "page" | "line"
    description: str
    image: np.ndarray  # HxWx3 uint8 RGB
    lines: list[dict] = field(default_factory=list)
    ext: str = "png"

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.ext}"

    def record(self) -> dict:
        """The page.jsonl object of this sample (image path relative to the output directory)."""
        return {"image": self.filename, "kind": self.kind, "description": self.description,
                "caption": CAPTIONS.get(self.name, self.name), "lines": self.lines}


def rect_box(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """An axis-aligned rectangle as 4 points, clockwise from top-left."""
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def draw_lines(canvas: Image.Image, items: Sequence[TextRun]) -> list[dict]:
    """Draw each text run onto ``canvas`` (RGB, in place); return its ``{"box", "text"}`` lines.

    A run is rendered into its own alpha mask, which is both pasted in the run's
    colour and measured, so the box is exactly the drawn ink.
    """
    lines = []
    for run in items:
        spec = font_for(run.font)
        font = _load_font(spec.path, spec.index, run.size)
        left, top, right, bottom = font.getbbox(run.text, anchor=run.anchor)
        margin = 4 + run.size // 4
        mask = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 0)
        ImageDraw.Draw(mask).text((margin - left, margin - top), run.text, font=font, fill=255, anchor=run.anchor)
        ink = np.asarray(mask) >= INK_ALPHA
        if not ink.any():
            raise ValueError(f"{run.text!r} draws no ink in {spec.name}")
        ys, xs = np.nonzero(ink)
        if xs.min() == 0 or ys.min() == 0 or xs.max() == ink.shape[1] - 1 or ys.max() == ink.shape[0] - 1:
            raise AssertionError(f"{run.text!r}: ink reaches the mask edge")  # would clip: margin too small
        ox, oy = run.xy[0] + left - margin, run.xy[1] + top - margin
        canvas.paste(Image.new("RGB", mask.size, run.fill), (ox, oy), mask)
        box = rect_box(max(0, ox + int(xs.min()) - LABEL_PAD), max(0, oy + int(ys.min()) - LABEL_PAD),
                       min(canvas.width, ox + int(xs.max()) + 1 + LABEL_PAD),
                       min(canvas.height, oy + int(ys.max()) + 1 + LABEL_PAD))
        if min(box) < 0 or max(box[0::2]) > canvas.width or max(box[1::2]) > canvas.height:
            raise ValueError(f"{run.text!r} leaves the canvas: {box}")
        lines.append({"box": box, "text": run.text})
    return lines


def _rule(draw: ImageDraw.ImageDraw, xy: tuple[int, int, int, int], fill: RGB = RULE, width: int = 1) -> None:
    draw.line(xy, fill=fill, width=width)


def _dashed(draw: ImageDraw.ImageDraw, x1: int, x2: int, y: int, fill: RGB, dash: int = 8, gap: int = 5) -> None:
    for x in range(x1, x2, dash + gap):
        draw.line((x, y, min(x + dash, x2), y), fill=fill, width=2)


# ---------------------------------------------------------------- clean samples


def invoice_zh() -> Sample:
    """A Chinese VAT ordinary invoice (增值税普通发票), 1000x700, invented companies."""
    w, h = 1000, 700
    canvas = Image.new("RGB", (w, h), (252, 250, 243))
    draw = ImageDraw.Draw(canvas)
    rng = random.Random(20250318)

    # frame and rules: buyer 108-230, items 230-420, totals 420-462, seller 462-584
    draw.rectangle((40, 108, 960, 584), outline=RULE, width=2)
    for y in (230, 420, 462):
        _rule(draw, (40, y, 960, y))
    for y0, y1 in ((108, 230), (462, 584)):
        _rule(draw, (110, y0, 110, y1))
        _rule(draw, (650, y0, 650, y1))
        _rule(draw, (720, y0, 720, y1))
    _rule(draw, (215, 420, 215, 462))
    _rule(draw, (40, 374, 960, 374), fill=(205, 170, 150))  # light rule above 合计
    draw.line((360, 70, 640, 70), fill=RED, width=2)  # the title's double underline
    draw.line((360, 75, 640, 75), fill=RED, width=1)

    cipher = ["".join(rng.choice("0123456789+-*/<>") for _ in range(19)) for _ in range(4)]
    runs = [
        TextRun("增值税普通发票", (500, 58), 36, "zh_title", RED, "ms"),
        TextRun("机器编号：499099774470", (40, 92)),
        TextRun("发票代码：144031900111", (700, 36)),
        TextRun("发票号码：08265317", (700, 62)),
        TextRun("开票日期：2025年03月18日", (700, 88)),
        # buyer
        TextRun("购买方", (75, 175), fill=LABEL, anchor="ms"),
        TextRun("名称：深圳市博远信息技术有限公司", (122, 134)),
        TextRun("纳税人识别号：91440300MA5F3K7Q2X", (122, 162)),
        TextRun("地址、电话：深圳市南山区高新南九道18号 0755-26881234", (122, 190)),
        TextRun("开户行及账号：建设银行深圳科技园支行 4425010000390012", (122, 218)),
        TextRun("密码区", (685, 175), fill=LABEL, anchor="ms"),
        *[TextRun(text, (732, 134 + 28 * i), 18, "mono") for i, text in enumerate(cipher)],
        # items header
        TextRun("货物或应税劳务名称", (52, 258), fill=LABEL),
        TextRun("规格型号", (330, 258), fill=LABEL, anchor="ms"),
        TextRun("单位", (420, 258), fill=LABEL, anchor="ms"),
        TextRun("数量", (482, 258), fill=LABEL, anchor="ms"),
        TextRun("单价", (588, 258), fill=LABEL, anchor="ms"),
        TextRun("金额", (702, 258), fill=LABEL, anchor="ms"),
        TextRun("税率", (800, 258), fill=LABEL, anchor="ms"),
        TextRun("税额", (898, 258), fill=LABEL, anchor="ms"),
    ]
    items = [  # name, spec, unit, qty, unit price, amount, rate, tax — amounts sum to 1,092.53, tax to 142.03
        ("*纸制品*打印纸", "A4 70g", "箱", "5", "120.00", "600.00", "13%", "78.00"),
        ("*计算机配套产品*硒鼓", "CF226A", "个", "2", "185.00", "370.00", "13%", "48.10"),
        ("*现代服务*装订服务", "", "次", "1", "122.53", "122.53", "13%", "15.93"),
    ]
    for i, (name, spec, unit, qty, price, amount, rate, tax) in enumerate(items):
        y = 290 + 30 * i
        runs += [TextRun(name, (52, y))]
        runs += [TextRun(spec, (330, y), anchor="ms")] if spec else []
        runs += [
            TextRun(unit, (420, y), anchor="ms"),
            TextRun(qty, (510, y), anchor="rs"),
            TextRun(price, (625, y), anchor="rs"),
            TextRun(amount, (745, y), anchor="rs"),
            TextRun(rate, (800, y), anchor="ms"),
            TextRun(tax, (940, y), anchor="rs"),
        ]
    runs += [
        TextRun("合计", (140, 404), fill=LABEL, anchor="ms"),
        TextRun("¥1,092.53", (745, 404), anchor="rs"),
        TextRun("¥142.03", (940, 404), anchor="rs"),
        TextRun("价税合计（大写）", (52, 448), fill=LABEL),
        TextRun("壹仟贰佰叁拾肆圆伍角陆分", (235, 448)),
        TextRun("（小写）¥1,234.56", (660, 448)),
        # seller
        TextRun("销售方", (75, 530), fill=LABEL, anchor="ms"),
        TextRun("名称：杭州瑞丰办公用品有限公司", (122, 488)),
        TextRun("纳税人识别号：91330106MA2CFQ8L5R", (122, 516)),
        TextRun("地址、电话：杭州市西湖区文三路478号 0571-88613520", (122, 544)),
        TextRun("开户行及账号：招商银行杭州文三支行 571908765410201", (122, 572)),
        TextRun("备注", (685, 530), fill=LABEL, anchor="ms"),
        TextRun("合同号：HT2025-0318", (732, 516)),
        # signatures
        TextRun("收款人：李娜", (60, 624), fill=LABEL),
        TextRun("复核：王强", (300, 624), fill=LABEL),
        TextRun("开票人：陈晓", (530, 624), fill=LABEL),
        TextRun("销售方：（章）", (770, 624), fill=LABEL),
    ]
    lines = draw_lines(canvas, runs)
    return Sample("invoice_zh", "page", "中文增值税普通发票（虚构公司）/ Chinese VAT invoice, clean scan",
                  np.asarray(canvas).copy(), lines)


def receipt_en() -> Sample:
    """A narrow English shop receipt, 420x900, monospace; item names and prices are separate boxes."""
    w, h = 420, 900
    canvas = Image.new("RGB", (w, h), (247, 246, 241))
    draw = ImageDraw.Draw(canvas)
    ink: RGB = (40, 40, 46)
    left, right, mid = 24, 396, w // 2

    runs = [
        TextRun("GREENLEAF MARKET", (mid, 62), 28, "mono_bold", ink, "ms"),
        TextRun("128 Harbour Street", (mid, 96), 18, "mono", ink, "ms"),
        TextRun("Portland, OR 97204", (mid, 122), 18, "mono", ink, "ms"),
        TextRun("Tel: (503) 555-0147", (mid, 148), 18, "mono", ink, "ms"),
        TextRun("Date: 2025-03-18", (left, 198), 18, "mono", ink),
        TextRun("Time: 14:32", (right, 198), 18, "mono", ink, "rs"),
        TextRun("Receipt: 004517", (left, 224), 18, "mono", ink),
        TextRun("Cashier: Emma", (right, 224), 18, "mono", ink, "rs"),
    ]
    items = [("Organic Milk 1L", "3.49"), ("Sourdough Bread", "4.25"), ("Free Range Eggs x12", "5.99"),
             ("Bananas 1.2 kg", "2.15"), ("Cheddar Cheese", "6.80"), ("Green Tea 20ct", "3.75"),
             ("Olive Oil 500ml", "8.95"), ("Apples 3 @ 0.79", "2.37")]  # sum 37.75
    for i, (name, price) in enumerate(items):
        y = 276 + 32 * i
        runs += [TextRun(name, (left, y), 20, "mono", ink), TextRun(price, (right, y), 20, "mono", ink, "rs")]
    totals = [("SUBTOTAL", "37.75", 20, 554), ("TAX 6%", "2.27", 20, 586), ("TOTAL", "$40.02", 24, 624),
              ("CASH", "50.00", 20, 660), ("CHANGE", "9.98", 20, 692)]
    for label, value, size, y in totals:
        font = "mono_bold" if label == "TOTAL" else "mono"
        runs += [TextRun(label, (left, y), size, font, ink), TextRun(value, (right, y), size, font, ink, "rs")]
    runs += [
        TextRun("Items sold: 8", (left, 748), 18, "mono", ink),
        TextRun("THANK YOU!", (mid, 810), 26, "mono_bold", ink, "ms"),
        TextRun("Please come again", (mid, 846), 18, "mono", ink, "ms"),
    ]
    for y in (170, 246, 524, 716):
        _dashed(draw, left, right, y, (90, 90, 96))
    lines = draw_lines(canvas, runs)
    return Sample("receipt_en", "page", "English shop receipt, narrow thermal paper, clean",
                  np.asarray(canvas).copy(), lines)


def _barcode(draw: ImageDraw.ImageDraw, x: int, y: int, width: int, height: int, seed: int) -> None:
    """Code-128-looking bars (not a real encoding): decoration only, never labelled."""
    rng = random.Random(seed)
    pos = x
    while pos < x + width - 4:
        bar = rng.choice((2, 2, 3, 4, 6))
        draw.rectangle((pos, y, min(pos + bar, x + width) - 1, y + height), fill=(0, 0, 0))
        pos += bar + rng.choice((2, 3, 4, 6))


def shipping_label() -> Sample:
    """A mixed Chinese-English shipping label, 800x500, with border, barcode and tracking number."""
    w, h = 800, 500
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    black: RGB = (15, 15, 15)
    draw.rectangle((12, 12, w - 13, h - 13), outline=black, width=4)
    for y in (80, 204, 382):
        draw.line((12, y, w - 13, y), fill=black, width=2)
    draw.rectangle((560, 26, 772, 68), outline=black, width=2)
    _barcode(draw, 40, 94, 380, 62, seed=7731)

    runs = [
        TextRun("顺达速运 SWIFTWAY EXPRESS", (32, 58), 26, "zh_bold", black),
        TextRun("标准快递 STANDARD", (666, 55), 20, "zh", black, "ms"),
        TextRun("TRK 7731 2045 8896", (230, 190), 22, "mono_bold", black, "ms"),
        TextRun("重量 / Weight: 1.25 kg", (470, 122), 20, "zh", black),
        TextRun("日期 / Date: 2025-03-18", (470, 154), 20, "zh", black),
        TextRun("件数 / Pieces: 1/1", (470, 186), 20, "zh", black),
        TextRun("收件人 / To:", (32, 238), 22, "zh_bold", black),
        TextRun("张伟 Zhang Wei", (32, 274), 24, "zh", black),
        TextRun("电话 / Tel: +86 138 0013 5678", (32, 306), 20, "zh", black),
        TextRun("上海市浦东新区世纪大道1888号12楼1203室", (32, 338), 20, "zh", black),
        TextRun("Rm 1203, 12F, 1888 Century Ave, Pudong, Shanghai 200120", (32, 366), 18, "zh", black),
        TextRun("寄件人 / From: 杭州瑞丰办公用品有限公司", (32, 414), 18, "zh", black),
        TextRun("浙江省杭州市西湖区文三路478号 0571-88613520", (32, 442), 18, "zh", black),
        TextRun("Hangzhou Ruifeng Office Supplies Co., Ltd.", (32, 470), 18, "zh", black),
    ]
    lines = draw_lines(canvas, runs)
    return Sample("shipping_label", "page", "中英文快递面单 / mixed Chinese-English shipping label",
                  np.asarray(canvas).copy(), lines)


def line_zh() -> Sample:
    """A single Chinese text line (the invoice total), 60 px high; reuses :func:`training.synth.render_text`."""
    bg = (250, 250, 248)
    text = "价税合计（小写）¥1,234.56"
    line = render_text(text, font_for("zh"), 36, fg=INK, bg=bg, padding=4)
    ink = (line.image.astype(np.int16) - np.array(bg, np.int16)).__abs__().max(axis=-1) >= INK_ALPHA // 2
    ys, xs = np.nonzero(ink)
    box = rect_box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Sample("line_zh", "line", "单行中文文本 / a single Chinese text line (recognizer input)",
                  np.ascontiguousarray(line.image), [{"box": box, "text": text}])


# ---------------------------------------------------------------- photo-like variants


def rotate(image: np.ndarray, lines: list[dict], angle: float, border: RGB) -> tuple[np.ndarray, list[dict]]:
    """Rotate counter-clockwise by ``angle`` degrees on an expanded canvas; boxes become rotated quads."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
    m[0, 2] += (nw - w) / 2
    m[1, 2] += (nh - h) / 2
    out = cv2.warpAffine(image, m, (nw, nh), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    moved = []
    for line in lines:
        # box corners are pixel edges; cv2 maps pixel centres: shift by half a pixel each way
        pts = np.asarray(line["box"], np.float64).reshape(4, 2) - 0.5
        pts = pts @ m[:, :2].T + m[:, 2] + 0.5
        moved.append({**line, "box": [round(float(v), 1) for v in pts.reshape(-1)]})
    return out, moved


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Out-of-focus camera: Gaussian blur."""
    return cv2.GaussianBlur(image, (0, 0), sigma)


def shadow(image: np.ndarray) -> np.ndarray:
    """A smooth dark gradient plus a soft diagonal shadow edge, like a phone held over the paper."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / w, yy / h
    light = 1.0 - 0.30 * np.clip(0.6 * u + 0.8 * v - 0.2, 0, 1)  # falls off towards the bottom right
    edge = (u * 0.8 - v * 0.6 + 0.15) / 0.08  # soft shadow over the upper-right part
    light *= 1.0 - 0.38 / (1.0 + np.exp(-edge))
    tint = np.array([1.0, 0.98, 0.93], np.float32)  # warm indoor light
    return np.clip(image.astype(np.float32) * light[..., None] * tint, 0, 255).round().astype(np.uint8)


def low_contrast(image: np.ndarray, contrast: float = 0.35, mid: float = 175.0) -> np.ndarray:
    """Squeeze the contrast to ``contrast`` of the original around a light grey (faded thermal print)."""
    return np.clip(image.astype(np.float32) * contrast + mid * (1 - contrast), 0, 255).round().astype(np.uint8)


def invoice_zh_blur() -> Sample:
    """The invoice, out of focus (Gaussian blur, sigma 1.2)."""
    base = invoice_zh()
    return replace(base, name="invoice_zh_blur", description="发票，失焦模糊 / invoice, Gaussian blur sigma 1.2",
                   image=gaussian_blur(base.image, 1.2))


def invoice_zh_tilt() -> Sample:
    """The invoice photographed 4 degrees askew on a grey desk; boxes rotated with it."""
    base = invoice_zh()
    image, lines = rotate(base.image, base.lines, 4.0, border=(104, 100, 96))
    return replace(base, name="invoice_zh_tilt", description="发票，倾斜4° / invoice, rotated 4° on a desk",
                   image=image, lines=lines)


def invoice_zh_jpeg() -> Sample:
    """The invoice saved as a heavily compressed JPEG (quality 25)."""
    base = invoice_zh()
    return replace(base, name="invoice_zh_jpeg", description="发票，JPEG 质量25 / invoice, JPEG quality 25",
                   ext="jpg")


def receipt_en_shadow() -> Sample:
    """The receipt under a smooth shadow and uneven light."""
    base = receipt_en()
    return replace(base, name="receipt_en_shadow", description="receipt, uneven light with a soft shadow",
                   image=shadow(base.image))


def receipt_en_lowcontrast() -> Sample:
    """The receipt faded: contrast squeezed to 35%."""
    base = receipt_en()
    return replace(base, name="receipt_en_lowcontrast", description="receipt, faded print (contrast 35%)",
                   image=low_contrast(base.image, 0.35))


SAMPLES: dict[str, Callable[[], Sample]] = {
    "invoice_zh": invoice_zh,
    "receipt_en": receipt_en,
    "shipping_label": shipping_label,
    "line_zh": line_zh,
    "invoice_zh_blur": invoice_zh_blur,
    "invoice_zh_tilt": invoice_zh_tilt,
    "receipt_en_shadow": receipt_en_shadow,
    "receipt_en_lowcontrast": receipt_en_lowcontrast,
    "invoice_zh_jpeg": invoice_zh_jpeg,
}


# ---------------------------------------------------------------- writing


def encode(sample: Sample) -> bytes:
    """The image file bytes: PNG (max compression) or JPEG quality 25."""
    buf = io.BytesIO()
    image = Image.fromarray(sample.image)
    if sample.ext == "jpg":
        image.save(buf, format="JPEG", quality=25)
    else:
        image.save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def format_record(record: dict) -> str:
    """A sample's JSON, one line per labelled text line (valid JSON, easy to diff)."""
    head = json.dumps({k: v for k, v in record.items() if k != "lines"}, ensure_ascii=False)[:-1]
    body = ",\n".join("  " + json.dumps(line, ensure_ascii=False) for line in record["lines"])
    return f'{head}, "lines": [\n{body}\n]}}\n'


def generate(out: Path | str, names: Sequence[str] | None = None) -> list[dict]:
    """Render ``names`` (default: all samples) into ``out``; write index.jsonl; return the records."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in names or list(SAMPLES):
        if name not in SAMPLES:
            raise KeyError(f"unknown sample {name!r}; choose from {', '.join(SAMPLES)}")
        sample = SAMPLES[name]()
        (out / sample.filename).write_bytes(encode(sample))
        record = sample.record()
        (out / f"{name}.json").write_text(format_record(record), encoding="utf-8")
        records.append(record)
    with (out / "index.jsonl").open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.samples", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples"), help="output directory (default: examples)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(SAMPLES), help="render only these samples")
    args = parser.parse_args(argv)
    if not preferred_fonts_installed():
        print("warning: some preferred fonts are missing; output differs from the committed examples")
    records = generate(args.out, args.only)
    total = sum((args.out / r["image"]).stat().st_size for r in records)
    for r in records:
        print(f"{r['image']:<28} {r['kind']:<5} {len(r['lines']):>3} lines")
    print(f"{len(records)} samples, {total / 1024:.0f} KiB images -> {args.out / 'index.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
