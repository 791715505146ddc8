"""A read-only view of the pipeline's lines, and the page geometry the rules lean on.

The extractor never imports the pipeline: it reads any object with ``.lines`` whose items have
``.text``, ``.box`` (8 values, or 4 as x1,y1,x2,y2), ``.confidence`` and ``.chars[i].char /
.confidence`` (``ocr.results.PageResult`` today), or the same as dicts (the REST JSON), so that
ground-truth lines without confidences and pages from other readers go through the same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Line:
    """One text line: its index in the page, text, quad box and per-character confidences."""

    index: int
    text: str
    box: tuple[float, ...]  # x1,y1,...,x4,y4 as the page gave it (what the UI highlights)
    confidence: float
    char_conf: tuple[float, ...]  # one per character of ``text``
    geom: tuple[float, ...] = ()  # the box with the page's skew removed: what the layout rules measure
    char_boxes: tuple[tuple[float, ...], ...] = ()  # one quad per character of ``text`` when the reader gave them

    @property
    def _g(self) -> tuple[float, ...]:
        return self.geom or self.box

    @property
    def x0(self) -> float:
        return min(self._g[0::2])

    @property
    def x1(self) -> float:
        return max(self._g[0::2])

    @property
    def y0(self) -> float:
        return min(self._g[1::2])

    @property
    def y1(self) -> float:
        return max(self._g[1::2])

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _quad(box: Sequence[float]) -> tuple[float, ...]:
    """8-value quad from a quad or an axis-aligned x1,y1,x2,y2 box."""
    vals = [float(v) for v in box]
    if len(vals) == 4:
        x1, y1, x2, y2 = vals
        return (x1, y1, x2, y1, x2, y2, x1, y2)
    if len(vals) != 8:
        raise ValueError(f"a line box needs 4 or 8 values, got {len(vals)}")
    return tuple(vals)


def _char_confidences(text: str, chars: Iterable[Any] | None, line_conf: float) -> tuple[float, ...]:
    """Confidence for each character of ``text``; the line's own where characters do not line up.

    The recogniser's characters spell the line's text exactly; when they do not (another reader,
    a corrected text), each character of the text is given the line confidence instead.
    """
    chars = list(chars or [])
    if chars and "".join(str(_get(c, "char", "")) for c in chars) == text:
        return tuple(float(_get(c, "confidence", line_conf)) for c in chars)
    return tuple(line_conf for _ in text)


def _char_boxes(text: str, chars: Iterable[Any] | None) -> tuple[tuple[float, ...], ...]:
    """A quad for each character of ``text`` (so a value can be highlighted, not its whole line);
    empty when the reader gave no character boxes or its characters do not spell the text."""
    chars = list(chars or [])
    if not chars or "".join(str(_get(c, "char", "")) for c in chars) != text:
        return ()
    try:
        return tuple(_quad(_get(c, "box")) for c in chars)
    except (TypeError, ValueError):
        return ()


def skew_angle(lines: Sequence[Line]) -> float:
    """The page's skew in radians: the median slope of the top edges of wide line boxes."""
    angles = []
    for ln in lines:
        x1, y1, x2, y2 = ln.box[0], ln.box[1], ln.box[2], ln.box[3]
        if x2 - x1 > 2 * ln.height:
            angles.append(math.atan2(y2 - y1, x2 - x1))
    angles.sort()
    return angles[len(angles) // 2] if angles else 0.0


def deskew(lines: Sequence[Line]) -> list[Line]:
    """Lines whose geometry is rotated by minus the page skew, so rows are horizontal again.

    On a photo tilted by 4°, a label at the left and its value 600 px to the right sit 40 px
    apart vertically; without this, "same row" tests would fail on every tilted page.
    """
    angle = skew_angle(lines)
    if abs(angle) < math.radians(0.5):
        return list(lines)
    c, s = math.cos(-angle), math.sin(-angle)
    out = []
    for ln in lines:
        pts = ln.box
        geom = tuple(v for i in range(0, 8, 2) for v in (pts[i] * c - pts[i + 1] * s, pts[i] * s + pts[i + 1] * c))
        out.append(replace(ln, geom=geom))
    return out


def as_lines(page: Any) -> list[Line]:
    """Lines of a page-like object (``.lines`` or a plain sequence of lines), empty texts dropped, deskewed."""
    raw = _get(page, "lines", page)
    out: list[Line] = []
    for i, item in enumerate(raw or []):
        text = str(_get(item, "text", "") or "")
        if not text.strip():
            continue
        conf = _get(item, "confidence", None)
        conf = 1.0 if conf is None else float(conf)
        chars = _get(item, "chars", None)
        out.append(Line(i, text, _quad(_get(item, "box")), conf, _char_confidences(text, chars, conf),
                        char_boxes=_char_boxes(text, chars)))
    return deskew(out)


def same_row(a: Line, b: Line, overlap: float = 0.5) -> bool:
    """True when two lines share at least ``overlap`` of the shorter one's height."""
    inter = min(a.y1, b.y1) - max(a.y0, b.y0)
    return inter >= overlap * min(a.height, b.height)


def rows(lines: Sequence[Line]) -> list[list[Line]]:
    """Lines grouped into visual rows (top to bottom), each row left to right.

    Receipts print a label and its value as separate boxes on one row ("TOTAL" ... "31.00");
    rows let a rule read the value beside its keyword whatever order the detector gave.
    """
    out: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: (ln.cy, ln.x0)):
        for row in reversed(out[-3:]):
            if any(same_row(line, other) for other in row):
                row.append(line)
                break
        else:
            out.append([line])
    return [sorted(row, key=lambda ln: ln.x0) for row in out]


def reading_order(lines: Sequence[Line]) -> list[Line]:
    """Lines row by row, left to right: the order a person reads a receipt."""
    return [line for row in rows(lines) for line in row]


def right_of(line: Line, lines: Sequence[Line]) -> list[Line]:
    """Lines on the same row as ``line`` and to its right, nearest first."""
    out = [o for o in lines if o is not line and same_row(line, o) and o.x0 >= line.cx]
    return sorted(out, key=lambda o: o.x0)


def below(line: Line, lines: Sequence[Line], max_gap: float = 1.5) -> list[Line]:
    """Lines starting under ``line`` within ``max_gap`` line heights and overlapping it in x."""
    out = [o for o in lines if o is not line and 0 <= o.y0 - line.y1 + 0.3 * line.height <= max_gap * line.height
           and min(o.x1, line.x1) - max(o.x0, line.x0) > 0 and not same_row(line, o)]
    return sorted(out, key=lambda o: (o.y0, o.x0))


def median_height(lines: Sequence[Line]) -> float:
    """The page's typical line height (robust to a few tall titles)."""
    hs = sorted(ln.height for ln in lines)
    return hs[len(hs) // 2] if hs else 1.0


@dataclass(frozen=True)
class Phrase:
    """Boxes of one row that sit close together: one printed line the detector may have cut up."""

    lines: tuple[Line, ...]

    @property
    def text(self) -> str:
        return " ".join(ln.text.strip() for ln in self.lines)

    @property
    def x0(self) -> float:
        return min(ln.x0 for ln in self.lines)

    @property
    def x1(self) -> float:
        return max(ln.x1 for ln in self.lines)

    @property
    def y0(self) -> float:
        return min(ln.y0 for ln in self.lines)

    @property
    def y1(self) -> float:
        return max(ln.y1 for ln in self.lines)

    @property
    def height(self) -> float:
        return max(ln.height for ln in self.lines)


def phrases(order: Sequence[Line], gap: float = 1.5) -> list[Phrase]:
    """Lines in reading order grouped into phrases: same row and under ``gap`` line heights apart.

    A detector may cut "MR D.I.Y. (M)" and "SDN BHD", or "43300 SERI" and "KEMBANGAN", into boxes
    of one printed line; rules that read names and addresses work on the joined phrase.
    """
    out: list[list[Line]] = []
    for line in order:
        prev = out[-1][-1] if out else None
        if prev is not None and same_row(prev, line) and 0 <= line.x0 - prev.x1 + 2 < gap * max(prev.height, line.height):
            out[-1].append(line)
        else:
            out.append([line])
    return [Phrase(tuple(p)) for p in out]
