"""What the extractor returns: fields with their value, source boxes, confidence and the reason.

A field's confidence is the reliability of the rule that chose it times the confidence of the
characters its value rests on, so a value picked by a weak rule, or read from a blurred digit,
shows as uncertain; the explanation names both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ocr.fields.kind import FIELD_NAMES
from ocr.fields.lines import Line

#: a field at or below this confidence is marked for a person to check (where no calibration says otherwise)
LOW_CONFIDENCE = 0.6
#: receipts: per field, the threshold that best separates wrong fields from right ones (F1 of "marked" vs
#: "wrong") on the SROIE training receipts read by our recogniser, never the eval pages:
#: ``python -m benchmarks.fields --train --ocr-lines --calibrate``. An address is exact less often than
#: not (~56%), so most addresses are marked: that is the honest advice.
RECEIPT_REVIEW_BELOW: dict[str, float] = {"company": 0.92, "date": 0.5, "address": 0.79, "total": 0.69}


@dataclass(frozen=True)
class Span:
    """Characters ``start:end`` of one line that a value was read from."""

    line: Line
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.line.text[self.start:self.end]

    def char_boxes(self) -> list[tuple[float, ...]]:
        """Quads of the span's non-space characters (empty when the line has no character boxes)."""
        if not self.line.char_boxes:
            return []
        return [self.line.char_boxes[i] for i in range(self.start, self.end) if not self.line.text[i].isspace()]

    def confidences(self) -> list[tuple[str, float]]:
        """(character, confidence) for each non-space character of the span."""
        return [(ch, self.line.char_conf[i]) for i, ch in enumerate(self.line.text[self.start:self.end], self.start)
                if not ch.isspace()]


def whole(line: Line) -> Span:
    """The span covering a whole line."""
    return Span(line, 0, len(line.text))


@dataclass
class Field:
    """One extracted field, with everything needed to show and justify it."""

    name: str
    value: str  # normalised: ISO date, Decimal string, or cleaned text
    raw: str  # the text as read on the page
    spans: list[Span]
    confidence: float
    rule: str
    reason: str  # one sentence: keyword, neighbouring text
    label: str = ""  # the name printed on the document (发票代码), when it differs from ``name``
    neighbours: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    review_below: float = LOW_CONFIDENCE  # at or below this confidence the field is marked for a person to check

    @property
    def low_confidence(self) -> bool:
        return self.confidence <= self.review_below

    def char_evidence(self) -> list[dict[str, Any]]:
        """Each character the value rests on, with its line and confidence (weakest first)."""
        out = [{"char": ch, "confidence": round(conf, 4), "line": sp.line.index}
               for sp in self.spans for ch, conf in sp.confidences()]
        return sorted(out, key=lambda c: c["confidence"])

    def to_dict(self) -> dict[str, Any]:
        chars = self.char_evidence()
        return {
            "value": self.value, "raw": self.raw, "label": self.label or self.name,
            "confidence": round(self.confidence, 4), "low_confidence": self.low_confidence,
            "lines": sorted({sp.line.index for sp in self.spans}),
            "boxes": [[round(v, 1) for v in sp.line.box] for sp in _unique_lines(self.spans)],
            "char_boxes": [[round(v, 1) for v in box] for sp in self.spans for box in sp.char_boxes()],
            "explanation": {"rule": self.rule, "reason": self.reason, "neighbours": self.neighbours,
                            "weakest_chars": chars[:5], "n_chars": len(chars)},
            "checks": self.checks,
        }


def _unique_lines(spans: Sequence[Span]) -> list[Span]:
    seen: set[int] = set()
    out = []
    for sp in spans:
        if sp.line.index not in seen:
            seen.add(sp.line.index)
            out.append(sp)
    return out


@dataclass
class FieldSet:
    """All fields of one page, the document kind and how it was recognised."""

    kind: str  # "receipt" | "zh_vat_invoice" | "unknown"
    kind_reason: str
    fields: dict[str, Field] = field(default_factory=dict)
    method: str = "rules"  # or "baseline"
    checks: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> str:
        """The field's normalised value, '' when it was not found."""
        f = self.fields.get(name)
        return f.value if f else ""

    def add(self, f: Field | None) -> None:
        if f is not None:
            self.fields[f.name] = f

    @property
    def missing(self) -> list[str]:
        """Fields this kind of document should have that were not found (a panel shows them as such)."""
        return [name for name in FIELD_NAMES.get(self.kind, ()) if name not in self.fields]

    def to_dict(self) -> dict[str, Any]:
        """JSON: everything a Fields panel needs (value, low-confidence flag, lines, boxes, explanation)."""
        return {"kind": self.kind, "kind_reason": self.kind_reason, "method": self.method,
                "fields": {name: f.to_dict() for name, f in self.fields.items()}, "missing": self.missing,
                "checks": self.checks}

    def to_text(self) -> str:
        """Plain text, one field a line (``python -m ocr page --fields``): name, value, confidence, lines."""
        out = [f"fields: {self.kind} ({self.kind_reason})"]
        width = max((len(name) for name in [*self.fields, *self.missing]), default=0)
        for name, f in self.fields.items():
            flag = "  LOW CONFIDENCE: check it" if f.low_confidence else ""
            lines = ",".join(str(i) for i in sorted({sp.line.index for sp in f.spans}))
            out.append(f"  {name:<{width}}  {f.value}  (confidence {f.confidence:.2f}, line {lines}){flag}")
        out += [f"  {name:<{width}}  (not found)" for name in self.missing]
        if self.checks:
            out.append("  checks: " + ", ".join(f"{k}={v}" for k, v in self.checks.items()))
        return "\n".join(out)
