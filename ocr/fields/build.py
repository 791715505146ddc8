"""One place where a rule's finding becomes a Field: value, spans, confidence and reason together."""

from __future__ import annotations

from typing import Sequence

from ocr.fields.confidence import field_confidence
from ocr.fields.lines import Line
from ocr.fields.model import Field, Span


def neighbour_texts(spans: Sequence[Span], lines: Sequence[Line], n: int = 1) -> list[str]:
    """Texts of the lines just before and after the field's lines in reading order (context shown)."""
    order = {ln.index: i for i, ln in enumerate(lines)}
    used = sorted({order[sp.line.index] for sp in spans if sp.line.index in order})
    if not used:
        return []
    picks = list(range(max(0, used[0] - n), used[0])) + list(range(used[-1] + 1, min(len(lines), used[-1] + 1 + n)))
    return [lines[i].text for i in picks]


def make_field(name: str, value: str, spans: Sequence[Span], *, rule: str, reason: str, reliability: float,
               lines: Sequence[Line], mode: str = "min", label: str = "", joiner: str = " ") -> Field:
    """A Field whose confidence is ``reliability`` × its characters' confidence (see confidence.py)."""
    raw = joiner.join(sp.text for sp in spans)
    return Field(name=name, value=value, raw=raw, spans=list(spans),
                 confidence=field_confidence(spans, reliability, mode), rule=rule, reason=reason, label=label,
                 neighbours=neighbour_texts(spans, lines))
