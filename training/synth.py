"""Synthetic text lines with per-character boxes, for training and for testing explanations.

Texts come from real word frequencies (jieba's dictionary, when installed) and
from invoice / receipt templates; lines are drawn glyph by glyph so every
character's box is known exactly, then degraded the way real photos and scans
are (blur, noise, JPEG, perspective, rotation, shadows, table lines,
watermarks, low contrast). Reads fonts and word lists only, no real crop.
"""

from __future__ import annotations

import io
import random
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from ocr.settings import FONTS_DIR

Box = tuple[float, float, float, float]

FONT_DIRS = ("/usr/share/fonts", str(FONTS_DIR))
#: fonts kept out of training so explanations can be tested on unseen glyph shapes
HELD_OUT_FONT_NAMES = ("uming.ttc",)


@dataclass(frozen=True)
class FontSpec:
    path: str
    index: int = 0
    cjk: bool = False

    @property
    def name(self) -> str:
        return f"{Path(self.path).name}#{self.index}"


def _font_supports_cjk(path: str, index: int) -> bool:
    try:
        font = ImageFont.truetype(path, 32, index=index)
        # a font without the glyph draws a .notdef box identical for every missing char
        a, b = font.getmask("永").getbbox(), font.getmask("龍").getbbox()
        missing = font.getmask("\U000f0000").getbbox()
        return a is not None and a != missing and b != missing
    except OSError:
        return False


@lru_cache(maxsize=1)
def discover_fonts() -> tuple[FontSpec, ...]:
    """Every usable font on the machine: CJK families first, then Latin-only ones."""
    specs: list[FontSpec] = []
    for root in FONT_DIRS:
        for path in sorted(Path(root).rglob("*")):
            if path.suffix.lower() not in {".ttf", ".otf", ".ttc"}:
                continue
            name = path.name.lower()
            if any(skip in name for skip in ("math", "mono", "symbol", "emoji", "oblique", "italic", "light")):
                continue
            indices = [0]
            if path.suffix.lower() == ".ttc" and "noto" in name:
                indices = [2]  # the SC (simplified Chinese) face of Noto CJK collections
            for index in indices:
                specs.append(FontSpec(str(path), index, _font_supports_cjk(str(path), index)))
    return tuple(specs)


def training_fonts() -> list[FontSpec]:
    return [f for f in discover_fonts() if Path(f.path).name not in HELD_OUT_FONT_NAMES]


def held_out_fonts() -> list[FontSpec]:
    return [f for f in discover_fonts() if Path(f.path).name in HELD_OUT_FONT_NAMES]


@lru_cache(maxsize=256)
def _load_font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index)


# ---------------------------------------------------------------- texts

COMPANY_PARTS = ["北京", "上海", "深圳", "广州", "杭州", "成都", "南京", "武汉", "天津", "苏州", "华夏", "东方",
                 "新世纪", "恒通", "鑫源", "瑞丰", "中信", "宏达", "金桥", "长城", "蓝天", "博远", "安泰"]
COMPANY_KINDS = ["科技", "贸易", "电子", "餐饮", "物流", "建设", "文化传媒", "医药", "信息技术", "食品", "商贸"]
COMPANY_SUFFIX = ["有限公司", "股份有限公司", "有限责任公司", "商行", "超市"]
PRODUCTS_ZH = ["办公用品", "打印纸", "笔记本电脑", "矿泉水", "餐费", "技术服务费", "运输服务", "咨询费", "显示器",
               "硒鼓", "墨盒", "文件夹", "住宿费", "会议费", "电费", "通讯费", "维修费", "软件服务", "茶叶", "大米"]
INVOICE_FIELDS = ["发票代码", "发票号码", "开票日期", "校验码", "购买方", "销售方", "名称", "纳税人识别号",
                  "地址、电话", "开户行及账号", "货物或应税劳务、服务名称", "规格型号", "单位", "数量", "单价",
                  "金额", "税率", "税额", "价税合计", "（大写）", "（小写）", "收款人", "复核", "开票人", "备注",
                  "增值税专用发票", "增值税普通发票", "机器编号", "密码区"]
EN_WORDS = ("total subtotal tax cash change card visa master qty item price amount due paid receipt invoice "
            "thank you for shopping with us welcome store market coffee tea milk bread rice chicken water "
            "juice sugar salt oil egg apple orange banana discount member points balance date time table "
            "server order no ref tel fax gst sst rounding adj service charge vat net gross unit each pcs kg "
            "street road avenue city sdn bhd ltd inc co company mall plaza centre center shop outlet cashier "
            "customer copy please keep this for your records return policy open daily hotel restaurant "
            "express delivery shipping from to phone email address invoice number account bank transfer").split()
UNITS = ["个", "台", "箱", "件", "盒", "次", "kg", "pcs", "套", "本"]


def _money(rng: random.Random) -> str:
    value = rng.choice([rng.uniform(0.5, 99), rng.uniform(100, 9999), rng.uniform(1e4, 1e6)])
    text = f"{value:,.2f}" if rng.random() < 0.6 else f"{value:.2f}"
    return text


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(2015, 2026), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{y}年{m:02d}月{d:02d}日", f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}",
                       f"{y}.{m}.{d}", f"{d:02d}-{m:02d}-{y} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"])


def _code(rng: random.Random, n: int | None = None, alphabet: str = string.digits + string.ascii_uppercase) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n or rng.randint(4, 18)))


def _company(rng: random.Random) -> str:
    return rng.choice(COMPANY_PARTS) + rng.choice(COMPANY_PARTS) + rng.choice(COMPANY_KINDS) + rng.choice(COMPANY_SUFFIX)


class TextSampler:
    """Draws line texts: frequency-weighted Chinese words, templates, English receipt lines, codes."""

    def __init__(self, charset_chars: Sequence[str], seed: int = 0, exclude: set[str] | None = None,
                 shuffle: bool = False) -> None:
        self.rng = random.Random(seed)
        self.shuffle = shuffle
        self.allowed = set(charset_chars)
        self.exclude = exclude or set()
        self.words, self.weights = self._load_words()
        self.cjk_chars = [c for c in charset_chars if "\u4e00" <= c <= "\u9fff"]
        self.symbols = [c for c in charset_chars if not c.isalnum() and c != " " and not ("\u4e00" <= c <= "\u9fff")]

    def _load_words(self) -> tuple[list[str], list[float]]:
        try:
            import jieba  # training extra: real word frequencies
        except ImportError:
            words = INVOICE_FIELDS + PRODUCTS_ZH + COMPANY_PARTS + COMPANY_KINDS
            return words, [1.0] * len(words)
        path = Path(jieba.__file__).parent / "dict.txt"
        words, weights = [], []
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split(" ")
            if len(parts) < 2 or not all(c in self.allowed for c in parts[0]):
                continue
            words.append(parts[0])
            weights.append(float(parts[1]) ** 0.5)  # flatten: rare characters need to be seen too
        return words, weights

    def _zh_phrase(self, max_chars: int) -> str:
        out = ""
        while len(out) < max_chars:
            out += self.rng.choices(self.words, self.weights)[0]
        return out[:max_chars]

    def sample(self) -> str:
        rng = self.rng
        kind = rng.random()
        n = rng.randint(2, 22)
        if kind < 0.30:
            text = self._zh_phrase(n)
            if rng.random() < 0.3:
                text += rng.choice("，。：；、！？（）")
        elif kind < 0.45:
            text = rng.choice([
                lambda: f"{rng.choice(INVOICE_FIELDS)}：{_code(rng, rng.randint(8, 20), string.digits)}",
                lambda: f"{rng.choice(['名称', '购买方', '销售方'])}：{_company(rng)}",
                lambda: f"{rng.choice(['金额', '税额', '价税合计', '合计', '小写'])}{rng.choice(['：', ' ', ''])}{rng.choice(['¥', '￥', ''])}{_money(rng)}",
                lambda: f"{rng.choice(PRODUCTS_ZH)} {rng.randint(1, 99)}{rng.choice(UNITS)} {_money(rng)} {rng.choice(['13%', '6%', '9%', '3%'])}",
                lambda: f"纳税人识别号：{_code(rng, 18)}",
                lambda: f"开票日期：{_date(rng)}",
                lambda: f"{_company(rng)}",
            ])()
        elif kind < 0.70:
            words = [rng.choice(EN_WORDS) for _ in range(rng.randint(1, 5))]
            case = rng.random()
            text = " ".join(words)
            text = text.upper() if case < 0.5 else (text.title() if case < 0.75 else text)
            if rng.random() < 0.5:
                text += rng.choice([f" {_money(rng)}", f" RM{_money(rng)}", f" ${_money(rng)}", f" x{rng.randint(1, 9)}",
                                    f": {_code(rng)}", f" {rng.randint(1, 99)}%"])
        elif kind < 0.80:
            text = rng.choice([_date(rng), _code(rng), _money(rng), f"TEL: {_code(rng, 10, string.digits)}",
                               f"No.{_code(rng, 8, string.digits)}", f"{rng.randint(1, 999)} @ {_money(rng)}"])
        elif kind < 0.90:
            text = "".join(rng.choice(self.cjk_chars) for _ in range(n))  # uniform: covers rare characters
        else:
            pool = string.ascii_letters + string.digits + "".join(self.symbols)
            text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 16)))
        text = "".join(c for c in text if c in self.allowed and c not in self.exclude).strip()
        if self.shuffle:  # same characters and scripts, no word order: nothing for a language prior to learn
            chars = list(text)
            self.rng.shuffle(chars)
            text = "".join(chars).strip()
        return text or self.sample()


# ---------------------------------------------------------------- rendering

@dataclass
class SynthLine:
    image: np.ndarray  # RGB uint8 HxWx3
    text: str
    char_boxes: list[Box] = field(default_factory=list)  # one (x1,y1,x2,y2) per character of text
    font: str = ""


def render_text(text: str, font: FontSpec, size: int = 32, *, fg: tuple[int, int, int] = (20, 20, 20),
                bg: tuple[int, int, int] = (255, 255, 255), padding: int | None = None,
                char_spacing: float = 0.0) -> SynthLine:
    """Draw ``text`` glyph by glyph on a plain background; exact per-character boxes."""
    pil_font = _load_font(font.path, font.index, size)
    pad = padding if padding is not None else max(2, size // 4)
    ascent, descent = pil_font.getmetrics()
    height = ascent + descent + 2 * pad
    advances = [pil_font.getlength(c) for c in text]
    width = int(sum(advances) + char_spacing * size * max(0, len(text) - 1) + 2 * pad) + 1
    image = Image.new("RGB", (max(width, 2), height), bg)
    draw = ImageDraw.Draw(image)
    x = float(pad)
    boxes: list[Box] = []
    for char, advance in zip(text, advances):
        draw.text((x, pad), char, font=pil_font, fill=fg)
        ink = pil_font.getbbox(char)
        if char.isspace() or ink[2] <= ink[0]:
            boxes.append((x, pad, x + advance, pad + ascent))
        else:
            boxes.append((x + ink[0], pad + ink[1], x + ink[2], pad + ink[3]))
        x += advance + char_spacing * size
    return SynthLine(np.asarray(image), text, boxes, font.name)


def _transform_boxes(boxes: list[Box], matrix: np.ndarray) -> list[Box]:
    out = []
    for x1, y1, x2, y2 in boxes:
        pts = np.array([[x1, y1, 1], [x2, y1, 1], [x2, y2, 1], [x1, y2, 1]], np.float64) @ matrix.T
        if matrix.shape[0] == 3:
            pts = pts[:, :2] / pts[:, 2:3]
        out.append((float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())))
    return out


class Degrader:
    """Photo and scan degradations; each keeps the character boxes in step."""

    def __init__(self, rng: random.Random, strength: float = 1.0, geometric: bool = True) -> None:
        self.rng = rng
        self.strength = strength
        #: False: no rotation / perspective, so every character stays in its columns (consistency pairs)
        self.geometric = geometric

    def _p(self, p: float) -> bool:
        return self.rng.random() < p * self.strength

    def __call__(self, line: SynthLine) -> SynthLine:
        img, boxes, rng = line.image.astype(np.float32), list(line.char_boxes), self.rng
        h, w = img.shape[:2]
        if self._p(0.25):  # table rules / underlines through or beside the text
            for _ in range(rng.randint(1, 2)):
                y = rng.choice([rng.randint(0, 3), h - rng.randint(1, 4), rng.randint(h // 3, 2 * h // 3)])
                cv2.line(img, (0, y), (w, y), (rng.randint(0, 120),) * 3, rng.randint(1, 2))
            if self._p(0.3):
                x = rng.randint(0, w - 1)
                cv2.line(img, (x, 0), (x, h), (rng.randint(0, 120),) * 3, 1)
        if self._p(0.15):  # faint watermark text / stamp colour behind
            color = np.array([rng.randint(150, 255), rng.randint(60, 200), rng.randint(60, 200)], np.float32)
            mask8 = np.zeros((h, w), np.uint8)
            cv2.putText(mask8, _code(rng, 6), (rng.randint(-10, max(0, w // 2)), rng.randint(h // 2, h)),
                        cv2.FONT_HERSHEY_SIMPLEX, h / 30, 255, 2)
            mask = mask8.astype(np.float32) / 255.0
            img = img * (1 - 0.35 * mask[..., None]) + color * 0.35 * mask[..., None]
        if self.geometric and self._p(0.5):  # rotation / perspective
            angle = rng.uniform(-3, 3)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            if self._p(0.5):
                src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
                jitter = lambda: rng.uniform(-0.06, 0.06) * h
                dst = src + np.float32([[jitter(), jitter()] for _ in range(4)])
                pm = cv2.getPerspectiveTransform(src, dst)
                img = cv2.warpPerspective(img, pm, (w, h), borderMode=cv2.BORDER_REPLICATE)
                boxes = _transform_boxes(boxes, pm)
            img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
            boxes = _transform_boxes(boxes, m)
        if self._p(0.35):  # uneven light / shadow
            gx = np.linspace(rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0), w, dtype=np.float32)
            img = img * gx[None, :, None]
        if self._p(0.3):  # low contrast
            k = rng.uniform(0.3, 0.7)
            img = img * k + (1 - k) * rng.uniform(100, 230)
        if self._p(0.4):
            sigma = rng.uniform(0.3, 1.4)
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        if self._p(0.2):  # downscale-upscale: low resolution captures
            f = rng.uniform(0.35, 0.8)
            small = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if self._p(0.4):
            img = img + np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(2, 12), img.shape)
        img = np.clip(img, 0, 255).astype(np.uint8)
        if self._p(0.3):
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(15, 70)])
            if ok:
                img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        return SynthLine(img, line.text, boxes, line.font)


class LineSynthesizer:
    """Random lines for training: random text, font, size, colours, degradations."""

    def __init__(self, charset_chars: Sequence[str], seed: int = 0, fonts: Sequence[FontSpec] | None = None,
                 degrade: float = 1.0, exclude_chars: set[str] | None = None, shuffle_text: bool = False) -> None:
        self.rng = random.Random(seed)
        self.texts = TextSampler(charset_chars, seed, exclude_chars, shuffle=shuffle_text)
        self.fonts = list(fonts) if fonts is not None else training_fonts()
        if not self.fonts:
            raise RuntimeError("no fonts found under " + ", ".join(FONT_DIRS) + " (install fonts-noto-cjk)")
        self.cjk_fonts = [f for f in self.fonts if f.cjk] or self.fonts
        self.degrader = Degrader(self.rng, degrade)

    def font_for(self, text: str) -> FontSpec:
        has_cjk = any(ord(c) > 0x2E7F for c in text)
        return self.rng.choice(self.cjk_fonts if has_cjk else self.fonts)

    def sample(self, text: str | None = None) -> SynthLine:
        return self.degrader(self._render(text))

    def _render(self, text: str | None = None) -> SynthLine:
        rng = self.rng
        text = text if text is not None else self.texts.sample()
        font = self.font_for(text)
        dark = rng.randint(0, 90)
        fg = (dark + rng.randint(0, 30), dark, dark + rng.randint(0, 30))
        if rng.random() < 0.1:
            fg = (rng.randint(120, 200), rng.randint(0, 60), rng.randint(0, 60))  # red stamp-like text
        bg = tuple(rng.randint(185, 255) for _ in range(3))
        if rng.random() < 0.08:
            fg, bg = bg, fg  # light text on dark
        return render_text(text, font, rng.randint(22, 48), fg=fg, bg=bg,
                           padding=rng.randint(1, 10), char_spacing=rng.choice([0, 0, 0, rng.uniform(0, 0.25)]))

    def sample_pair(self, strength: float = 1.5, keep_clean: float = 0.25) -> tuple[SynthLine, SynthLine]:
        """The same line clean and degraded without moving any character (no rotation or
        perspective): a reader's output on the clean one is a frame-exact target for the
        degraded one. With probability ``keep_clean`` the "degraded" one is the clean one."""
        clean = self._render()
        if self.rng.random() < keep_clean:
            return clean, clean
        return clean, Degrader(self.rng, strength, geometric=False)(clean)


def to_png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
