"""Chinese licence plates, synthetic: how often each model gives the exact written plate.

    OMP_NUM_THREADS=2 python -m benchmarks.plates [--models fast accurate auto] [--n 200] [--seed 11] [--pages]

No real plate image is available here, so plates are drawn: blue (white characters, a five-character serial)
and, one in four, green new-energy plates (black characters, six), the separator dot after the office letter,
a frame, in a bold CJK font; then each condition of :data:`CONDITIONS` (rotated up to 8 degrees, a
perspective skew, a grey margin around the plate, all three), shrunk to 94, 140 or 220 px wide, blurred and
JPEG-compressed. Scored exactly (``京A12345``: the written form, ``ocr.recognize.plates``). The plate
rules' evidence floor was set on other draws of this kind (a scratch version of this script), so every
seed here is fresh. ``--pages``: each plate image read as a whole page (``OCRPipeline``: detection,
orientation, the lines' texts joined), as the UI reads an upload, instead of as one line.
"""

from __future__ import annotations

import argparse
import random
from typing import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from benchmarks.report import positive_int
from ocr.recognize.plates import PROVINCES

LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: never issued
DIGITS = "0123456789"
CONDITIONS = ("none", "tilt", "skew", "margin", "all")


def plate_font() -> ImageFont.FreeTypeFont:
    """A bold CJK font if the machine has one (plates are bold), else the first CJK font."""
    from training.synth import discover_fonts

    fonts = [f for f in discover_fonts() if f.cjk]
    if not fonts:
        raise SystemExit("no CJK font installed (make install-dev)")
    bold = [f for f in fonts if "bold" in f.path.lower()]
    chosen = (bold or fonts)[0]
    return ImageFont.truetype(chosen.path, 100, index=chosen.index)


def plate_number(rng: random.Random, green: bool) -> str:
    serial = "".join(rng.choice(LETTERS + DIGITS if k < 2 else DIGITS) for k in range(6 if green else 5))
    return rng.choice(PROVINCES) + rng.choice(LETTERS) + serial


def draw_plate(text: str, font: ImageFont.FreeTypeFont, green: bool) -> np.ndarray:
    """The plate at 140 px high: characters 98 px apart, the dot after the second."""
    background, ink = ((60, 190, 110), (20, 20, 20)) if green else ((10, 60, 170), (245, 245, 245))
    width = 24 + 98 * len(text) + 26 + 40
    image = Image.new("RGB", (width, 140), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle([4, 4, width - 5, 135], outline=ink, width=4)
    x = 24
    for k, ch in enumerate(text):
        draw.text((x, -2), ch, font=font, fill=ink)
        x += 98
        if k == 1:
            draw.ellipse([x - 4, 62, x + 10, 76], fill=ink)
            x += 26
    return np.asarray(image)


def _tilt(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = rgb.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), 1.0)
    return cv2.warpAffine(rgb, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _skew(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = rgb.shape[:2]
    d = 0.08 * w
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[rng.uniform(0, d), rng.uniform(0, 10)], [w - rng.uniform(0, d), rng.uniform(0, 10)],
                      [w - rng.uniform(0, d), h - rng.uniform(0, 10)], [rng.uniform(0, d), h - rng.uniform(0, 10)]])
    return cv2.warpPerspective(rgb, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE)


def _margin(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    m = int(0.15 * rgb.shape[0])
    return cv2.copyMakeBorder(rgb, m, m, m, m, cv2.BORDER_CONSTANT, value=(90, 90, 90))


STEPS: dict[str, tuple[Callable[[np.ndarray, random.Random], np.ndarray], ...]] = {
    "none": (), "tilt": (_tilt,), "skew": (_skew,), "margin": (_margin,), "all": (_tilt, _skew, _margin)}


def photographed(rgb: np.ndarray, condition: str, rng: random.Random) -> np.ndarray:
    """The plate under ``condition``, then small, blurred and JPEG-compressed as a camera crop is."""
    for step in STEPS[condition]:
        rgb = step(rgb, rng)
    width = rng.choice([94, 140, 220])
    rgb = cv2.resize(rgb, (width, max(12, round(width * rgb.shape[0] / rgb.shape[1]))), interpolation=cv2.INTER_AREA)
    rgb = cv2.GaussianBlur(rgb, (3, 3), rng.uniform(0.3, 1.0))
    _, jpeg = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, rng.randint(40, 90)])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def plate_set(condition: str, n: int, seed: int, font: ImageFont.FreeTypeFont) -> tuple[list[np.ndarray], list[str]]:
    rng = random.Random(f"{seed}-{condition}")
    texts = [plate_number(rng, green=k % 4 == 0) for k in range(n)]
    return [photographed(draw_plate(t, font, green=k % 4 == 0), condition, rng) for k, t in enumerate(texts)], texts


def reader_for(model: str, threads: int, pages: bool) -> Callable[[list[np.ndarray]], list[str]]:
    """Texts of plate images read as lines, or each as a whole page."""
    if pages:
        from ocr.pipeline import OCRPipeline

        pipeline = OCRPipeline.load(threads=threads, model=model)
        return lambda images: ["".join(pipeline.run(img, use_cache=False).text.split()) for img in images]
    from ocr.recognize.recognizer import Recognizer

    recognizer = Recognizer.load(model=model, threads=threads)
    return lambda images: [r.text for r in recognizer.recognize(images)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["fast", "accurate", "auto"], choices=["fast", "accurate", "auto"])
    parser.add_argument("--n", type=positive_int, default=200, help="plates per condition")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--pages", action="store_true", help="read each plate image as a whole page")
    args = parser.parse_args(argv)
    font = plate_font()
    sets = {c: plate_set(c, args.n, args.seed, font) for c in CONDITIONS}
    print(f"font {font.path}; {args.n} plates per condition, seed {args.seed}, read as "
          f"{'pages' if args.pages else 'lines'}; exact written plates:")
    print("| model | " + " | ".join(CONDITIONS) + " |\n|---|" + "---|" * len(CONDITIONS))
    for model in args.models:
        read = reader_for(model, args.threads, args.pages)
        right = [sum(got == t for got, t in zip(read(images), texts)) for images, texts in sets.values()]
        print(f"| {model} | " + " | ".join(f"{k} / {args.n}" for k in right) + " |")


if __name__ == "__main__":
    main()
