"""Unruled columns of running text (ocr.detect.columns): read column by column; short entries keep row order."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocr.detect.columns import column_order
from ocr.detect.geometry import TextBox, sort_reading_order
from ocr.detect.ruling import reading_order

LINE_H = 20


def box(x0: float, y0: float, x1: float, y1: float) -> TextBox:
    return TextBox(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), 0.9)


def column(x0: int, x1: int, top: int, n: int, step: int = 28) -> list[TextBox]:
    return [box(x0, top + k * step, x1, top + k * step + LINE_H) for k in range(n)]


def ids(boxes: list[TextBox]) -> list[int]:
    return [id(b) for b in boxes]


def article(columns: int) -> list[TextBox]:
    """A title (over the first two columns only), ``columns`` columns of six full lines, a footer: in the order a
    person reads them."""
    title, footer = [box(40, 20, 600, 56)], [box(40, 300, 400, 320)]
    body = [line for c in range(columns) for line in column(40 + 380 * c, 380 + 380 * c, 90, 6)]
    return title + body + footer


def test_two_columns_of_text_are_read_one_after_the_other():
    want = article(2)
    got = column_order(want[::-1])
    assert ids(got) == ids(want)
    assert ids(sort_reading_order(want[::-1])) != ids(want)  # row by row they interleave: what this is for


def test_three_columns_too():
    want = article(3)
    assert ids(column_order(want[::-1])) == ids(want)


def test_a_receipt_price_column_keeps_row_order():
    """Item names beside their prices: a gutter between them, but the prices are short entries."""
    items = column(40, 400, 90, 8)
    prices = column(520, 580, 90, 8)
    boxes = [box(150, 20, 450, 50)] + items + prices + [box(40, 330, 200, 350), box(520, 330, 580, 350)]
    assert ids(column_order(boxes)) == ids(sort_reading_order(boxes))


def test_labels_beside_values_keep_row_order():
    labels, values = column(40, 140, 90, 6), column(300, 800, 90, 6)
    boxes = labels + values
    assert ids(column_order(boxes)) == ids(sort_reading_order(boxes))


def test_sections_without_columns_keep_row_order_exactly():
    """Sections are only cut to find columns inside them: with none, the order is row by row to the box, even
    where a cut would place a slightly higher box of the next row first."""
    boxes = column(40, 600, 20, 4) + [box(40, 220, 300, 240), box(320, 212, 600, 236)] + column(40, 600, 300, 4)
    assert ids(column_order(boxes)) == ids(sort_reading_order(boxes))


def test_a_page_without_rules_is_read_by_columns():
    """Through ``reading_order``, which sends a page without vertical rules here."""
    want = article(2)
    blank = np.full((360, 820, 3), 255, np.uint8)
    assert ids(reading_order(blank, want[::-1])) == ids(want)


def _two_column_page(font_path: str, index: int) -> tuple[np.ndarray, list[str], list[str]]:
    left = ["The river rose overnight and", "flooded the lower streets of", "the old town near the bridge."]
    right = ["Officials said the water level", "should fall by this evening,", "so schools will open again."]
    f = ImageFont.truetype(font_path, 22, index=index)
    img = Image.new("RGB", (900, 260), "white")
    draw = ImageDraw.Draw(img)
    for k, (a, b) in enumerate(zip(left, right)):
        draw.text((30, 40 + 40 * k), a, font=f, fill="black")
        draw.text((480, 40 + 40 * k), b, font=f, fill="black")
    return np.asarray(img).copy(), left, right


def test_the_service_reads_a_two_column_page_column_by_column(service, latin_font):
    rgb, left, right = _two_column_page(latin_font.path, latin_font.index)
    texts = [line.text for line in service.ocr(rgb).lines]
    assert len(texts) == 6
    # each column's lines in order, the left column first (each line matched by its first word)
    starts = [t.split()[0] for t in texts]
    assert starts == [line.split()[0] for line in left + right]
