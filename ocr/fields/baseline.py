"""A plain baseline, so the rules' gain can be measured: what one would write in ten minutes.

Receipt: company = first line, address = lines 2-3, date = first date-looking string, total =
largest amount on a line with TOTAL or after it. Invoice: the first number of each expected
length, the first date, the first two 名称 lines, the largest ¥ amount.
"""

from __future__ import annotations

import re
from typing import Sequence

from ocr.fields.build import make_field
from ocr.fields.lines import Line, reading_order
from ocr.fields.model import Field, Span, whole
from ocr.fields.normalize import find_amounts, find_dates, format_amount

RELIABILITY = 0.5


def _first_date(order: Sequence[Line]) -> Field | None:
    for line in order:
        for dm in find_dates(line.text):
            return make_field("date", dm.iso, [Span(line, dm.start, dm.end)], rule="baseline/first-date",
                              reason="first date-looking string", reliability=RELIABILITY, lines=order)
    return None


def _largest_after_total(order: Sequence[Line]) -> Field | None:
    start = next((i for i, ln in enumerate(order) if "TOTAL" in ln.text.upper()), None)
    if start is None:
        return None
    amounts = [(a, ln) for ln in order[start:] for a in find_amounts(ln.text)]
    if not amounts:
        return None
    a, ln = max(amounts, key=lambda p: p[0].value)
    return make_field("total", format_amount(a.value), [Span(ln, a.start, a.end)], rule="baseline/largest-after-total",
                      reason="largest amount from the first TOTAL line on", reliability=RELIABILITY, lines=order)


def baseline_receipt(lines: Sequence[Line]) -> dict[str, Field]:
    """company = line 1, address = lines 2-3, first date, largest amount after TOTAL."""
    order = reading_order(lines)
    out: dict[str, Field | None] = {"date": _first_date(order), "total": _largest_after_total(order)}
    if order:
        out["company"] = make_field("company", order[0].text.strip(), [whole(order[0])], rule="baseline/first-line",
                                    reason="first line", reliability=RELIABILITY, lines=order, mode="mean")
    if len(order) > 1:
        addr = order[1:3]
        out["address"] = make_field("address", " ".join(ln.text.strip() for ln in addr), [whole(ln) for ln in addr],
                                    rule="baseline/lines-2-3", reason="lines 2-3", reliability=RELIABILITY,
                                    lines=order, mode="mean")
    return {k: v for k, v in out.items() if v is not None}


def _first_number(order: Sequence[Line], name: str, pattern: str, label: str) -> Field | None:
    for line in order:
        m = re.search(pattern, line.text)
        if m:
            return make_field(name, m.group(1), [Span(line, m.start(1), m.end(1))], rule="baseline/first-match",
                              reason=f"first match of {pattern}", reliability=RELIABILITY, lines=order, label=label)
    return None


def baseline_invoice(lines: Sequence[Line]) -> dict[str, Field]:
    """First 10/12-digit number, first 8-digit number, first date, first two 名称 and tax IDs, largest amount."""
    order = reading_order(lines)
    out: dict[str, Field | None] = {
        "invoice_code": _first_number(order, "invoice_code", r"(?<!\d)(\d{12}|\d{10})(?!\d)", "发票代码"),
        "invoice_number": _first_number(order, "invoice_number", r"(?<!\d)(\d{8})(?!\d)", "发票号码"),
        "date": _first_date(order),
    }
    names = [ln for ln in order if "名称" in ln.text and re.search(r"名称[:：]?\s*(\S+)", ln.text)]
    ids = [(ln, m) for ln in order for m in re.finditer(r"(?<![0-9A-Z])([0-9A-Z]{18}|[0-9A-Z]{15})(?![0-9A-Z])", ln.text)]
    for party, i in (("buyer", 0), ("seller", 1)):
        if len(names) > i:
            m = re.search(r"名称[:：]?\s*(\S+)", names[i].text)
            out[f"{party}_name"] = make_field(f"{party}_name", m.group(1), [Span(names[i], m.start(1), m.end(1))],
                                              rule="baseline/nth-name", reason=f"名称 line {i + 1}",
                                              reliability=RELIABILITY, lines=order, mode="mean")
        if len(ids) > i:
            ln, m = ids[i]
            out[f"{party}_tax_id"] = make_field(f"{party}_tax_id", m.group(1), [Span(ln, m.start(1), m.end(1))],
                                                rule="baseline/nth-id", reason=f"18/15-character ID {i + 1}",
                                                reliability=RELIABILITY, lines=order)
    amounts = [(a, ln) for ln in order for a in find_amounts(ln.text)]
    if amounts:
        a, ln = max(amounts, key=lambda p: p[0].value)
        out["total"] = make_field("total", format_amount(a.value), [Span(ln, a.start, a.end)],
                                  rule="baseline/largest-amount", reason="largest amount", reliability=RELIABILITY,
                                  lines=order, label="价税合计（小写）")
    return {k: v for k, v in out.items() if v is not None}
