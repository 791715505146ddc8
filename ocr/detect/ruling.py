"""Ruled lines of forms and tables, and the cells they make: the page's own word on reading order.

Why: a form's cells stand side by side (an invoice's buyer block beside its cipher block) with their
lines at the same heights, so reading row by row interleaves them. A receipt's item and price columns
look exactly the same to box geometry; what tells the two apart is a printed vertical rule between
the cells. So lines are grouped by the vertical rules either side of them, and each group is read
whole, in the place of its cell's top edge. Horizontal rules only place a cell (its top edge): a
partial one, such as the short rule above a receipt's total, never groups anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ocr.detect.geometry import TextBox, sort_reading_order

#: a ruled line is at least this many median line heights long: longer than any glyph's stroke (a
#: ``|`` or a tall ideograph is ~1.2), shorter than a two-line cell's side (~2.5-3)
MIN_RULE_LINE_HEIGHTS = 2.2
#: and at most this thick (px, or a quarter of a line height if larger): thicker ink is a filled shape
MAX_RULE_THICKNESS_PX = 5
#: pages are searched for rules at most this many pixels on their longer side (rules survive the shrink)
RULE_SEARCH_SIDE = 1200


@dataclass(frozen=True)
class Rule:
    """One straight ruled segment: ``pos`` is its x (vertical) or y (horizontal); it runs ``start``..``end``."""

    pos: float
    start: float
    end: float

    def covers(self, value: float) -> bool:
        return self.start <= value <= self.end


@dataclass(frozen=True)
class Rules:
    vertical: tuple[Rule, ...] = ()
    horizontal: tuple[Rule, ...] = ()


def find_rules(rgb: np.ndarray, line_height: float) -> Rules:
    """The page's straight vertical and horizontal rules, in its pixel coordinates.

    Dark thin runs at least :data:`MIN_RULE_LINE_HEIGHTS` line heights long, found by a morphological
    opening of the page's locally dark pixels (coloured rules count: only lightness matters)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, RULE_SEARCH_SIDE / max(h, w, 1))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 15, 12)
    length = max(8, int(MIN_RULE_LINE_HEIGHTS * line_height * scale))
    thickness = max(MAX_RULE_THICKNESS_PX, 0.25 * line_height) * scale
    return Rules(_segments(ink, length, thickness, scale, vertical=True),
                 _segments(ink, length, thickness, scale, vertical=False))


def _segments(ink: np.ndarray, length: int, thickness: float, scale: float, vertical: bool) -> tuple[Rule, ...]:
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1, length) if vertical else (length, 1))
    runs = cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel)
    contours, _ = cv2.findContours(runs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for x, y, bw, bh in map(cv2.boundingRect, contours):
        across, along, pos, start = (bw, bh, x + bw / 2, y) if vertical else (bh, bw, y + bh / 2, x)
        if across <= max(thickness, 2) and along >= length:
            out.append(Rule(pos / scale, start / scale, (start + along) / scale))
    return _without_hatching(out, gap=length / scale / MIN_RULE_LINE_HEIGHTS)


def _without_hatching(rules: list[Rule], gap: float) -> tuple[Rule, ...]:
    """The rules that stand alone or in pairs (a double rule): a run of three or more parallel, overlapping
    rules under ``gap`` (a line height) apart is a barcode or hatching, not a cell's side."""
    rules = sorted(rules, key=lambda r: r.pos)
    keep: list[Rule] = []
    run: list[Rule] = []
    for rule in rules + [None]:  # type: ignore[list-item]
        if rule is not None and run and rule.pos - run[-1].pos < gap and rule.start < run[-1].end \
                and rule.end > run[-1].start:
            run.append(rule)
            continue
        if len(run) <= 2:
            keep += run
        run = [rule] if rule is not None else []
    return tuple(keep)


def _side_rules(box: TextBox, rules: Rules) -> tuple[Rule | None, Rule | None]:
    """The nearest vertical rules left and right of the box's centre that run past its centre's height."""
    cx, cy = box.center
    covering = [r for r in rules.vertical if r.covers(cy)]
    left = max((r for r in covering if r.pos < cx), key=lambda r: r.pos, default=None)
    right = min((r for r in covering if r.pos > cx), key=lambda r: r.pos, default=None)
    return left, right


def _bands(cell: list[TextBox], left: Rule | None, right: Rule | None, rules: Rules,
           line_height: float) -> list[list[TextBox]]:
    """A cell's lines cut at the horizontal rules that run its whole width (from rule to rule, or to its
    outermost line on an open side): cells stacked between the same two vertical rules."""
    x0 = left.pos if left else min(b.aabb[0] for b in cell)
    x1 = right.pos if right else max(b.aabb[2] for b in cell)
    cuts = sorted(r.pos for r in rules.horizontal
                  if r.start <= x0 + line_height and r.end >= x1 - line_height)
    bands: dict[int, list[TextBox]] = {}
    for box in cell:
        bands.setdefault(int(np.searchsorted(cuts, box.center[1])), []).append(box)
    return [sort_reading_order(band) for _, band in sorted(bands.items())]


def _cell_top(boxes: Sequence[TextBox], rules: Rules) -> float:
    """Where a cell's lines start: the nearest horizontal rule above its first line spanning the cell's
    lines, or that line's centre when none does (as a line outside any cell is placed)."""
    first = min(boxes, key=lambda b: b.aabb[1])
    x0 = min(b.aabb[0] for b in boxes)
    x1 = max(b.aabb[2] for b in boxes)
    top = first.aabb[1]
    above = [r.pos for r in rules.horizontal if r.pos <= top + 1 and r.start <= x0 and r.end >= x1]
    return max(above) if above else first.center[1]


def sort_by_cells(boxes: Sequence[TextBox], rules: Rules) -> list[TextBox]:
    """Reading order that keeps each ruled cell's lines together.

    Lines between the same two vertical rules (or a rule and the open page), and between the same
    horizontal rules across that width, form a cell, read row by row; cells and the lines outside any
    rule are then ordered row by row themselves, a cell at its top. Without vertical rules this is
    exactly :func:`ocr.detect.geometry.sort_reading_order`."""
    boxes = list(boxes)
    if len(boxes) < 2 or not rules.vertical:
        return sort_reading_order(boxes)
    line_height = float(np.median([b.aabb[3] - b.aabb[1] for b in boxes]))
    sides: dict[tuple[int, int], tuple[Rule | None, Rule | None]] = {}
    cells: dict[tuple[int, int], list[TextBox]] = {}
    free: list[TextBox] = []
    for box in boxes:
        left, right = _side_rules(box, rules)
        if left is None and right is None:
            free.append(box)
            continue
        key = (id(left), id(right))
        sides[key] = (left, right)
        cells.setdefault(key, []).append(box)
    if not cells:
        return sort_reading_order(boxes)
    units = [band for key, cell in cells.items() for band in _bands(cell, *sides[key], rules, line_height)]
    table = _table_columns(units)
    free += [box for i in sorted(table) for box in units[i]]
    units = [unit for i, unit in enumerate(units) if i not in table]
    anchors = free + [_anchor(unit, rules) for unit in units]
    members = {id(box): [box] for box in free}
    members.update({id(anchor): unit for anchor, unit in zip(anchors[len(free):], units)})
    return [box for anchor in sort_reading_order(anchors) for box in members[id(anchor)]]


#: this many cells of several lines side by side are a table's columns, read row by row across them
TABLE_COLUMNS = 3


def _table_columns(units: list[list[TextBox]]) -> set[int]:
    """The cells that are columns of a table: at least :data:`TABLE_COLUMNS` cells of two lines or more
    overlapping mostly in height. A form puts at most two multi-line blocks side by side (an invoice's
    buyer and cipher blocks, its labels being one line each); a ruled table's columns are many, and a
    table is read row by row."""
    spans = {i: (min(b.aabb[1] for b in unit), max(b.aabb[3] for b in unit))
             for i, unit in enumerate(units) if len(unit) >= 2}
    out = set()
    for i, (a0, a1) in spans.items():
        beside = [j for j, (b0, b1) in spans.items()
                  if min(a1, b1) - max(a0, b0) >= 0.5 * min(a1 - a0, b1 - b0)]
        if len(beside) >= TABLE_COLUMNS:  # itself included
            out.add(i)
    return out


def _anchor(unit: list[TextBox], rules: Rules) -> TextBox:
    """A stand-in box for ordering a cell: its first line moved to the cell's top, at its leftmost x,
    with the median height of its lines."""
    x0 = min(b.aabb[0] for b in unit)
    height = float(np.median([b.aabb[3] - b.aabb[1] for b in unit]))
    cy = _cell_top(unit, rules)
    pts = np.array([[x0, cy - height / 2], [x0 + 1, cy - height / 2], [x0 + 1, cy + height / 2],
                    [x0, cy + height / 2]], np.float32)
    return TextBox(pts, 1.0)


def reading_order(rgb: np.ndarray, boxes: Sequence[TextBox]) -> list[TextBox]:
    """``boxes`` of the page ``rgb`` in reading order: ruled cells kept whole (:func:`sort_by_cells`)."""
    boxes = list(boxes)
    if len(boxes) < 2:
        return boxes
    height = float(np.median([b.aabb[3] - b.aabb[1] for b in boxes]))
    return sort_by_cells(boxes, find_rules(rgb, height))
