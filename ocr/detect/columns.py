"""Columns of running text on a page without ruled lines: read one column after the other.

Why: two or three columns of an article (a leaflet, a paper, a book's spread) stand side by side with
their lines at the same heights, so reading row by row interleaves them, line by line. Where no rule
says where cells are (``ocr.detect.ruling``), white space does: a gutter no line crosses. The page is cut
recursively (an XY cut): first into sections at gaps taller than most of a line (a title's, a footer's,
a paragraph's space that runs across the page), then a section into columns at gutters; each part is read
row by row. Sections first, so that a title or a footer over only some of the columns stays in its place.

What keeps row order: a gutter beside short entries. A receipt's price column, a form's labels and a
table's figures stand apart from their neighbours by a gutter just as an article's columns do; only
lines of running text (``LONG_LINE_HEIGHTS`` wide, the ruled cells' criterion) on both sides, several of
them, make a split. A page of one column reads exactly as row by row.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ocr.detect.geometry import TextBox, median_height, sort_reading_order

#: a gutter between columns is at least this many line heights wide (a word space is ~0.3, a table's
#: column gap often less than a line height; an article's gutter 1.5-3)
MIN_GUTTER_LINE_HEIGHTS = 1.0
#: sections are cut apart at gaps at least this many line heights tall (a title's or a paragraph's space;
#: lines of one block are closer, and their detected boxes nearly touch)
MIN_SECTION_GAP_LINE_HEIGHTS = 0.8
#: a column holds running text if its lines are this many line heights wide (median) ...
LONG_LINE_HEIGHTS = 6.0
#: ... and it has at least this many of them
MIN_COLUMN_LINES = 3
#: recursion depth bound (a page has few levels of sections within columns within sections)
MAX_DEPTH = 6


def column_order(boxes: Sequence[TextBox], line_height: float | None = None) -> list[TextBox]:
    """``boxes`` in reading order: columns of running text one after another, everything else row by row
    (a page with no such columns exactly as :func:`~ocr.detect.geometry.sort_reading_order` orders it).
    ``line_height``: the boxes' median height, if the caller has it already."""
    boxes = list(boxes)
    if len(boxes) < 2 * MIN_COLUMN_LINES:
        return sort_reading_order(boxes)
    height = median_height(boxes) if line_height is None else line_height
    return _ordered(boxes, height, 0) or sort_reading_order(boxes)


def _ordered(boxes: list[TextBox], line_height: float, depth: int) -> list[TextBox] | None:
    """The order of ``boxes`` if some part of them splits into columns; None if none does (the caller reads them
    row by row: cutting sections alone must not change an order)."""
    if depth >= MAX_DEPTH or len(boxes) < 2 * MIN_COLUMN_LINES:
        return None
    sections = _groups(boxes, line_height, axis=1, min_gap=MIN_SECTION_GAP_LINE_HEIGHTS)
    columns = _text_columns(boxes, line_height) if len(sections) < 2 else None
    parts = columns or sections
    if len(parts) < 2:
        return None
    orders = [_ordered(part, line_height, depth + 1) for part in parts]
    if columns is None and all(order is None for order in orders):
        return None
    return [box for part, order in zip(parts, orders) for box in (order or sort_reading_order(part))]


def _groups(boxes: list[TextBox], line_height: float, axis: int, min_gap: float) -> list[list[TextBox]]:
    """``boxes`` split where nothing covers a stretch of ``axis`` (0: x, 1: y) at least ``min_gap`` line heights
    long, in order along it."""
    spans = sorted(((b.aabb[axis], b.aabb[axis + 2], k) for k, b in enumerate(boxes)))
    groups: list[list[TextBox]] = [[]]
    reach = spans[0][1]
    for start, end, k in spans:
        if groups[-1] and start - reach >= min_gap * line_height:
            groups.append([])
        groups[-1].append(boxes[k])
        reach = max(reach, end)
    return groups


def _text_columns(boxes: list[TextBox], line_height: float) -> list[list[TextBox]] | None:
    """The columns split at gutters, if every one of them holds running text; else None."""
    columns = _groups(boxes, line_height, axis=0, min_gap=MIN_GUTTER_LINE_HEIGHTS)
    if len(columns) < 2 or not all(_running_text(column, line_height) for column in columns):
        return None
    return columns


def _running_text(column: list[TextBox], line_height: float) -> bool:
    widths = [b.aabb[2] - b.aabb[0] for b in column]
    return len(column) >= MIN_COLUMN_LINES and float(np.median(widths)) >= LONG_LINE_HEIGHTS * line_height
