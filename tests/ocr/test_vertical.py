"""Vertical lines: read turned (as PaddleOCR's networks were trained to), boxed on the page where they are."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocr.detect.geometry import TextBox, crop_line, page_char_quads, rotate, turn_quad
from ocr.decode import CharSpan
from ocr.results import LineResult

COLUMN = "春风得意马蹄疾"


def vertical_line(font, text: str = COLUMN, size: int = 36) -> np.ndarray:
    """Upright characters stacked top to bottom, as on a sign or a web banner."""
    f = ImageFont.truetype(font.path, size, index=font.index)
    image = Image.new("RGB", (size + 12, 12 + len(text) * (size + 6)), "white")
    draw = ImageDraw.Draw(image)
    for k, ch in enumerate(text):
        draw.text((6, 6 + k * (size + 6)), ch, font=f, fill="black")
    return np.asarray(image)


def test_turning_a_quad_starts_it_at_the_corner_that_becomes_the_top_left() -> None:
    quad = np.array([[0, 0], [10, 0], [10, 40], [0, 40]], np.float64)  # TL, TR, BR, BL
    assert turn_quad(quad, 0).tolist() == quad.tolist()
    assert turn_quad(quad, 90).tolist() == [[10, 0], [10, 40], [0, 40], [0, 0]]  # TR first
    assert turn_quad(quad, 270).tolist() == [[0, 40], [0, 0], [10, 0], [10, 40]]  # BL first
    assert turn_quad(quad, 360).tolist() == quad.tolist()


def test_a_tall_box_is_cropped_standing_and_its_turned_reading_boxed_down_it() -> None:
    page = np.full((200, 100, 3), 255, np.uint8)
    page[20:40, 40:60] = (255, 0, 0)  # the top of a column: red
    box = TextBox(np.array([[30, 10], [70, 10], [70, 190], [30, 190]], np.float32), 1.0)
    crop = crop_line(page, box)
    assert crop.shape[0] > crop.shape[1]  # standing: the recogniser decides whether to turn it
    seen = rotate(crop, 90)  # turned counter-clockwise: the column's top is read first
    red = np.argwhere((seen[:, :, 0] > 200) & (seen[:, :, 2] < 50))[:, 1].mean()
    assert red < seen.shape[1] / 2


def span(t0: int, t1: int, x0: float, x1: float) -> CharSpan:
    return CharSpan("字", 1, 0.9, t0, t1, x0, x1)


def test_the_characters_of_a_turned_line_lie_down_the_column_top_first() -> None:
    quad = np.array([[30, 10], [70, 10], [70, 190], [30, 190]], np.float64)  # a column 40 wide, 180 tall
    line = LineResult("字字", 0.9, [span(0, 1, 0.0, 45.0), span(4, 5, 135.0, 180.0)], 180, 40)
    first, second = page_char_quads(quad, 90, 180, line)
    for q in (first, second):
        xs, ys = q[0::2], q[1::2]
        assert min(xs) == pytest.approx(30) and max(xs) == pytest.approx(70)  # across the whole column
        assert (xs[0], ys[0]) == (min(xs), min(ys))  # clockwise from the top-left
    assert first[1::2] == pytest.approx([10, 10, 55, 55])
    assert second[1::2] == pytest.approx([145, 145, 190, 190])


def test_a_vertical_line_image_is_read_turned_and_only_where_that_reads_better(recognizer, cjk_font) -> None:
    from ocr.recognize.recognizer import Recognizer

    column = vertical_line(cjk_font)
    line = recognizer.recognize_one(column)
    assert line.text == COLUMN and line.turned in (90, 270)
    assert (line.width, line.height) == (column.shape[1], column.shape[0])  # the input's size
    upright_only = Recognizer(recognizer.model, recognizer.charset, turn_tall=False)
    assert upright_only.recognize_one(column).text != COLUMN  # turning is what reads it
    digit = np.full((48, 20, 3), 255, np.uint8)  # one tall character stays upright
    digit[6:42, 8:12] = 0
    assert recognizer.recognize_one(digit).turned == 0


def test_reading_a_vertical_line_image_boxes_its_characters_down_the_image(service, cjk_font) -> None:
    column = vertical_line(cjk_font)
    page = service.read_line(column)
    (line,) = page.lines
    assert line.text == COLUMN
    assert line.crop.shape[1] > line.crop.shape[0]  # the image as read
    centres = [np.mean(c.box[1::2]) for c in line.chars]
    assert centres == sorted(centres)
    assert all(0 <= v <= column.shape[0] for c in line.chars for v in c.box[1::2])


def test_a_vertical_line_is_explained_as_read(service, cjk_font) -> None:
    column = vertical_line(cjk_font)
    out = service.explain_line(column, methods=("alignment",))
    assert out["text"] == COLUMN and not out["force_aligned"]
    assert out["width"] > out["height"]  # the turned image, whose characters were read
    from explain.errors import attribute_errors

    report = attribute_errors(service.explaining(column), column, COLUMN)  # the network that read it (auto: either)
    assert report.distance == 0


def test_a_page_boxes_a_vertical_line_down_its_column(service, cjk_font) -> None:
    f = ImageFont.truetype(cjk_font.path, 36, index=cjk_font.index)
    image = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "增值税专用发票 金额合计", font=f, fill="black")
    draw.text((40, 120), "购买方名称 北京科技有限公司", font=f, fill="black")
    for k, ch in enumerate(COLUMN):
        draw.text((650, 100 + k * 44), ch, font=f, fill="black")
    page = service.ocr(np.asarray(image))
    (line,) = [ln for ln in page.lines if ln.text == COLUMN]
    xs = [v for c in line.chars for v in c.box[0::2]]
    assert 630 <= min(xs) and max(xs) <= 700  # each character spans the column, not a sliver of it
    widths = [max(c.box[0::2]) - min(c.box[0::2]) for c in line.chars]
    assert min(widths) > 25
    tops = [min(c.box[1::2]) for c in line.chars]
    assert tops == sorted(tops) and tops[-1] - tops[0] > 200


def test_explaining_a_wide_line_costs_no_extra_reading() -> None:
    """Only a tall image can have been read turned, so only a tall one is read to find out."""
    from explain.alignment import as_read

    class NeverReads:
        def recognize_one(self, image):
            raise AssertionError("a wide line was read again")

    wide = np.zeros((48, 200, 3), np.uint8)
    rgb, reading = as_read(NeverReads(), wide)
    assert rgb is wide and reading is None
