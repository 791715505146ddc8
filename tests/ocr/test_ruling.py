"""Reading order by ruled cells (ocr.detect.ruling): forms' blocks read whole, everything else as before."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ocr.detect.geometry import TextBox, sort_reading_order
from ocr.detect.ruling import find_rules, reading_order

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CREAM = (250, 246, 238)
BROWN = (140, 80, 50)
LINE_H = 20


def box(x0: float, y0: float, x1: float, y1: float) -> TextBox:
    return TextBox(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), 0.9)


def page(w: int = 1000, h: int = 700) -> np.ndarray:
    return np.full((h, w, 3), CREAM, np.uint8)


def rule(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], width: int = 1) -> None:
    cv2.line(img, p0, p1, BROWN, width)


def lines_in(x0: int, x1: int, top: int, n: int, step: int = 30) -> list[TextBox]:
    return [box(x0, top + k * step, x1, top + k * step + LINE_H) for k in range(n)]


def two_blocks_form() -> tuple[np.ndarray, list[TextBox], list[TextBox]]:
    """A label cell, a 4-line block, a label cell, a 4-line block, side by side (an invoice's head)."""
    img = page()
    for y in (100, 240):
        rule(img, (40, y), (960, y))
    for x in (40, 110, 600, 680, 960):
        rule(img, (x, 100), (x, 240))
    label_a, label_b = box(50, 160, 100, 180), box(610, 160, 670, 180)
    block_a, block_b = lines_in(120, 560, 110, 4), lines_in(690, 950, 110, 4)
    return img, [label_a] + block_a + [label_b] + block_b, [label_a, *block_a, label_b, *block_b]


def test_a_form_reads_each_ruled_block_whole():
    img, boxes, want = two_blocks_form()
    shuffled = boxes[::-1]
    got = reading_order(img, shuffled)
    assert [id(b) for b in got] == [id(b) for b in want]
    # row by row the two blocks interleave: what this module is for
    assert [id(b) for b in sort_reading_order(shuffled)] != [id(b) for b in want]


def test_lines_outside_the_form_keep_their_rows_around_it():
    img, boxes, want = two_blocks_form()
    title = [box(300, 20, 700, 60)]
    footer = [box(60, 300, 200, 320), box(400, 300, 560, 320)]
    got = reading_order(img, footer + boxes + title)
    assert [id(b) for b in got] == [id(b) for b in title + want + footer]


def test_a_table_with_ruled_columns_reads_row_by_row():
    img = page()
    xs = (40, 280, 520, 760, 960)
    for x in xs:
        rule(img, (x, 100), (x, 400))
    rule(img, (40, 100), (960, 100))
    rule(img, (40, 400), (960, 400))
    cells = [lines_in(x0 + 10, x1 - 10, 120, 5, step=50) for x0, x1 in zip(xs, xs[1:])]
    boxes = [b for column in cells for b in column]
    assert len(find_rules(img, LINE_H).vertical) == len(xs)
    got = reading_order(img, boxes)
    assert [id(b) for b in got] == [id(b) for b in sort_reading_order(boxes)]
    assert [id(b) for b in got[:4]] == [id(column[0]) for column in cells]  # the header row first


def test_without_vertical_rules_the_order_is_row_by_row():
    """A receipt: a short rule over the price column (above its total) must not group anything."""
    img = page(420, 900)
    rule(img, (300, 400), (400, 400))
    items = lines_in(20, 200, 300, 3)
    prices = lines_in(320, 400, 300, 3)
    total = [box(20, 420, 120, 440), box(320, 420, 400, 440)]
    boxes = total + prices + items
    assert find_rules(img, LINE_H).vertical == ()
    got = reading_order(img, boxes)
    assert [id(b) for b in got] == [id(b) for b in sort_reading_order(boxes)]
    assert [id(b) for b in got[:2]] == [id(items[0]), id(prices[0])]


def test_a_barcode_is_not_a_ruled_line():
    img = page(800, 300)
    rng = np.random.default_rng(0)
    x = 40
    while x < 400:
        width = int(rng.integers(1, 4))
        cv2.rectangle(img, (x, 40), (x + width - 1, 160), (0, 0, 0), -1)
        x += width + int(rng.integers(2, 6))
    rule(img, (600, 20), (600, 280))
    assert [round(r.pos) for r in find_rules(img, LINE_H).vertical] == [600]


def test_stacked_cells_between_the_same_rules_are_read_in_turn():
    """One box around two bands split by a full-width rule; each band's lines row by row."""
    img = page()
    for x in (40, 960):
        rule(img, (x, 100), (x, 500))
    for y in (100, 300, 500):
        rule(img, (40, y), (960, y))
    upper = [box(60, 120, 300, 140), box(600, 120, 900, 140), box(60, 160, 300, 180)]
    lower = [box(60, 320, 300, 340), box(600, 320, 900, 340)]
    got = reading_order(img, lower + upper)
    assert [id(b) for b in got] == [id(b) for b in upper + lower]


def test_thin_coloured_rules_are_found_and_text_strokes_are_not():
    img = page()
    rule(img, (500, 100), (500, 300))
    cv2.putText(img, "| I l 1 |", (100, 400), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    found = find_rules(img, LINE_H)
    assert [round(r.pos) for r in found.vertical] == [500]
    assert round(found.vertical[0].start) <= 101 and round(found.vertical[0].end) >= 299


@pytest.mark.parametrize("name", ["invoice_zh.png", "invoice_zh_tilt.png"])
def test_the_example_invoice_reads_its_buyer_block_whole(service, name):
    texts = [line.text for line in service.ocr(EXAMPLES / name).lines]
    start = next(i for i, t in enumerate(texts) if t.startswith("名称：深圳"))
    assert texts[start + 1].startswith("纳税人识别号：9144")
    assert texts[start + 2].startswith("地址、电话：深圳")
    assert texts[start + 3].startswith("开户行及账号：建设银行")
    assert texts[start - 1] == "购买方"
    assert "密码区" in texts[start + 4]


def test_a_two_column_label_value_table_reads_row_by_row():
    """A ruled label | value table (or a receipt's ruled price column) holds short entries: row by row, as before,
    not all labels then all values (a black-box pass found that)."""
    img = page()
    for x in (40, 260, 960):
        rule(img, (x, 100), (x, 400))
    rule(img, (40, 100), (960, 100))
    rule(img, (40, 400), (960, 400))
    labels = lines_in(50, 150, 120, 5, step=50)
    values = [box(270, b.aabb[1], 700, b.aabb[3]) for b in labels]  # long values: the short labels decide
    boxes = values + labels
    got = reading_order(img, boxes)
    assert [id(b) for b in got] == [id(b) for b in sort_reading_order(boxes)]
    assert [id(b) for b in got[:2]] == [id(labels[0]), id(values[0])]


def test_a_lone_entry_beside_a_table_is_read_in_its_row():
    """A ledger whose debit column holds one amount: that amount stays in its row, not after the header."""
    img = page()
    for x in (40, 260, 700, 960):
        rule(img, (x, 100), (x, 400))
    rule(img, (40, 100), (960, 100))
    dates = lines_in(50, 150, 120, 5, step=50)
    entries = [box(270, b.aabb[1], 380, b.aabb[3]) for b in dates]
    debit = box(720, dates[3].aabb[1], 800, dates[3].aabb[3])
    boxes = [debit] + entries + dates
    got = reading_order(img, boxes)
    assert [id(b) for b in got] == [id(b) for b in sort_reading_order(boxes)]


def test_a_label_printed_one_character_a_line_is_not_a_table_column():
    """购 / 买 / 方 stacked in the label cell: the blocks beside it are still read whole."""
    img, _, _ = two_blocks_form()
    glyphs = [box(60, 120 + 35 * k, 90, 150 + 35 * k) for k in range(3)]
    block_a, block_b = lines_in(120, 560, 110, 4), lines_in(690, 950, 110, 4)
    label_b = box(610, 160, 670, 180)
    got = reading_order(img, block_b + [label_b] + block_a + glyphs)
    assert [id(b) for b in got] == [id(b) for b in glyphs + block_a + [label_b] + block_b]


def test_rules_tilted_a_little_are_found():
    """Pages tilted under 2 degrees are not deskewed: their rules, 8 px across over 900 px, still count."""
    img = page()
    rule(img, (40, 100), (940, 116))    # 1 degree
    rule(img, (500, 150), (505, 450))   # 1 degree
    found = find_rules(img, LINE_H)
    assert len(found.horizontal) == 1 and len(found.vertical) == 1
