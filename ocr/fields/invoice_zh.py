"""Chinese VAT invoices (增值税发票): printed labels, the value after each, and the sums checked.

A VAT invoice is a form: every value follows its printed label on the same line ("发票代码：…") or
in the next box of the row. Buyer and seller blocks repeat the same labels (名称, 纳税人识别号), so a
label belongs to the party whose side label (购买方 / 销售方) is nearest. The grand total is printed
in capitals and in figures, and must equal 金额 + 税额: both are checked.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from ocr.fields.build import make_field
from ocr.fields.lines import Line, reading_order, right_of
from ocr.fields.model import Field, Span
from ocr.fields.normalize import find_amounts, find_dates, format_amount
from ocr.fields.repair import fold
from ocr.fields.zh_amount import find_capital_amount

LABELS = {
    "invoice_code": ("发票代码",), "invoice_number": ("发票号码",), "date": ("开票日期",),
    "name": ("名称",), "tax_id": ("纳税人识别号", "统一社会信用代码", "识别号"),
    "capital": ("大写",), "figures": ("小写",), "sum_row": ("合计",),
}
PARTY_LABELS = {"buyer": ("购买方", "购货单位", "购方", "买方"), "seller": ("销售方", "销货单位", "销方", "卖方")}
PATTERNS = {"invoice_code": re.compile(r"\d{10}(?:\d{2})?"), "invoice_number": re.compile(r"\d{20}|\d{8}"),
            "tax_id": re.compile(r"[0-9A-Z]{18}|[0-9A-Z]{20}|[0-9A-Z]{17}|[0-9A-Z]{15}"),
            "name": re.compile(r"[^\s:：].*\S|[^\s:：]")}
NAMES_ZH = {"invoice_code": "发票代码", "invoice_number": "发票号码", "date": "开票日期",
            "buyer_name": "购买方名称", "buyer_tax_id": "购买方纳税人识别号", "seller_name": "销售方名称",
            "seller_tax_id": "销售方纳税人识别号", "amount": "金额（合计）", "tax": "税额（合计）",
            "total_capital": "价税合计（大写）", "total": "价税合计（小写）"}
RELIABILITY = {"label-same-line": 0.97, "label-next-box": 0.92, "party-by-side-label": 0.95,
               "party-by-order": 0.8, "sum-row-by-column": 0.95, "sum-row-by-order": 0.85, "capital-anywhere": 0.8,
               "derived": 0.9}


def find_label(lines: Sequence[Line], labels: Sequence[str]) -> list[tuple[Line, int, int]]:
    """Every (line, start, end) where one of ``labels`` is printed (first label that matches per line)."""
    out = []
    for line in lines:
        for label in labels:
            i = line.text.find(label)
            if i >= 0:
                out.append((line, i, i + len(label)))
                break
    return out


def value_after(hit: tuple[Line, int, int], lines: Sequence[Line], pattern: re.Pattern[str]) -> tuple[Span, str] | None:
    """The first match of ``pattern`` after the label on its line, else in the next boxes of its row."""
    line, _, end = hit
    m = pattern.search(fold(line.text), end)
    if m:
        return Span(line, m.start(), m.end()), "label-same-line"
    for other in right_of(line, lines)[:2]:
        m = pattern.search(fold(other.text))
        if m:
            return Span(other, m.start(), m.end()), "label-next-box"
    return None


def _labelled(name: str, lines: Sequence[Line], order: Sequence[Line]) -> Field | None:
    """A single-occurrence field (发票代码, 发票号码): the value after its label."""
    for hit in find_label(lines, LABELS[name]):
        found = value_after(hit, lines, PATTERNS[name])
        if found:
            span, rule = found
            return make_field(name, span.text, [span], rule=f"{name}/{rule}", label=NAMES_ZH[name],
                              reason=f"digits after the printed label '{hit[0].text[hit[1]:hit[2]]}' in '{hit[0].text}'",
                              reliability=RELIABILITY[rule], lines=order)
    return None


def _date(lines: Sequence[Line], order: Sequence[Line]) -> Field | None:
    """开票日期: the date after its label, else the first date on the page."""
    for line, _, end in find_label(lines, LABELS["date"]):
        for cand in [line, *right_of(line, lines)[:1]]:
            dates = [d for d in find_dates(fold(cand.text)) if cand is not line or d.start >= end]
            if dates:
                d, rule = dates[0], "label-same-line" if cand is line else "label-next-box"
                return make_field("date", d.iso, [Span(cand, d.start, d.end)], rule=f"date/{rule}",
                                  label=NAMES_ZH["date"], reason=f"date after '开票日期' in '{line.text}'",
                                  reliability=RELIABILITY[rule], lines=order)
    return None


def party_of(line: Line, lines: Sequence[Line]) -> tuple[str, str] | None:
    """(party, rule): the side label (购买方 / 销售方) nearest to ``line`` on its left, or None.

    Paper invoices stack the buyer's block over the seller's; digital ones (全电发票) set them side
    by side: the nearest label on the left, by horizontal plus vertical distance, serves both.
    """
    best = None
    for party, labels in PARTY_LABELS.items():
        for side, _, _ in find_label(lines, labels):
            if "章" in side.text or side is line:
                continue  # the seller's stamp box at the foot, not a block label
            dx = line.x0 - side.x1
            dist = max(dx, 0) + abs(side.cy - line.cy) + (0 if dx >= -side.height else 1e4)
            if best is None or dist < best[0]:
                best = (dist, party)
    return (best[1], "party-by-side-label") if best else None


def _party_fields(kind: str, lines: Sequence[Line], order: Sequence[Line]) -> list[Field]:
    """名称 or 纳税人识别号 for each party: each labelled value assigned to its nearest side label."""
    hits = sorted(find_label(lines, LABELS[kind]), key=lambda h: (h[0].cy, h[0].x0))
    out, taken = [], set()
    for n, hit in enumerate(hits):
        found = value_after(hit, lines, PATTERNS[kind])
        if not found:
            continue
        span, how = found
        assigned = party_of(hit[0], lines)
        party, rule = assigned if assigned else (("buyer", "seller")[min(n, 1)], "party-by-order")
        name = f"{party}_{kind}"
        if name in taken:
            continue
        taken.add(name)
        value = span.text.strip() if kind == "name" else span.text
        out.append(make_field(name, value, [span], rule=f"{name}/{rule}", label=NAMES_ZH[name],
                              reason=f"value after '{hit[0].text[hit[1]:hit[2]]}' in the {party}'s block "
                                     f"({'nearest side label' if rule == 'party-by-side-label' else 'order on the page'})",
                              reliability=min(RELIABILITY[rule], RELIABILITY[how]), lines=order,
                              mode="mean" if kind == "name" else "min"))
    return out


def _sum_row(lines: Sequence[Line], order: Sequence[Line]) -> list[Field]:
    """金额 and 税额 totals: the amounts on the 合计 row, matched to the 金额 / 税额 column headers."""
    row_label = next((h for h in find_label(lines, LABELS["sum_row"]) if "价税" not in h[0].text), None)
    if row_label is None:
        return []
    line = row_label[0]
    cands = [(o, a) for o in [line, *right_of(line, lines)] for a in find_amounts(fold(o.text))
             if o is not line or a.start >= row_label[2]]
    headers = {name: find_label(lines, (h,)) for name, h in (("amount", "金额"), ("tax", "税额"))}
    out = []
    for i, name in enumerate(("amount", "tax")):
        head = [h for h in headers[name] if h[0].text.strip() == ("金额", "税额")[i]]
        if head and cands:
            hx = head[0][0].cx
            src, am = min(cands, key=lambda c: abs(c[0].x1 - head[0][0].x1) + abs(c[0].cx - hx))
            rule = "sum-row-by-column"
        elif len(cands) >= 2:
            src, am = sorted(cands, key=lambda c: c[0].x0)[i]
            rule = "sum-row-by-order"
        else:
            continue
        out.append(make_field(name, format_amount(am.value), [Span(src, am.start, am.end)], rule=f"{name}/{rule}",
                              label=NAMES_ZH[name],
                              reason=f"amount on the '合计' row under the '{('金额', '税额')[i]}' column",
                              reliability=RELIABILITY[rule], lines=order))
    return out


def _capital(lines: Sequence[Line], order: Sequence[Line]) -> Field | None:
    """价税合计（大写）: the capital-number run after 大写, else anywhere on the page."""
    hits = find_label(lines, LABELS["capital"])
    candidates = [(h[0], h[2], "label-same-line") for h in hits]
    candidates += [(o, 0, "label-next-box") for h in hits for o in right_of(h[0], lines)[:2]]
    candidates += [(o, 0, "capital-anywhere") for o in order]
    for line, start, rule in candidates:
        found = find_capital_amount(line.text[start:])
        if found:
            s, e, value = found
            return make_field("total_capital", format_amount(value), [Span(line, start + s, start + e)],
                              rule=f"total_capital/{rule}", label=NAMES_ZH["total_capital"],
                              reason=f"capital-number amount '{line.text[start + s:start + e]}' parsed to {value}"
                                     + (" after '大写'" if rule != "capital-anywhere" else " (no 大写 label read)"),
                              reliability=RELIABILITY[rule], lines=order)
    return None


def _figures(lines: Sequence[Line], order: Sequence[Line]) -> Field | None:
    """价税合计（小写）: the amount after 小写 (on its line or the next box)."""
    for line, _, end in find_label(lines, LABELS["figures"]):
        for cand in [line, *right_of(line, lines)[:1]]:
            amounts = [a for a in find_amounts(fold(cand.text)) if cand is not line or a.start >= end]
            if amounts:
                a, rule = amounts[0], "label-same-line" if cand is line else "label-next-box"
                return make_field("total", format_amount(a.value), [Span(cand, a.start, a.end)], rule=f"total/{rule}",
                                  label=NAMES_ZH["total"], reason=f"amount after '小写' in '{line.text}'",
                                  reliability=RELIABILITY[rule], lines=order)
    return None


def extract_vat_invoice(lines: Sequence[Line]) -> tuple[dict[str, Field], dict[str, Any]]:
    """All invoice fields, and the cross-checks (大写 = 小写, 金额 + 税额 = 价税合计)."""
    from ocr.fields.invoice_checks import cross_check

    order = reading_order(lines)
    found: list[Field | None] = [_labelled("invoice_code", lines, order), _labelled("invoice_number", lines, order),
                                 _date(lines, order), *_party_fields("name", lines, order),
                                 *_party_fields("tax_id", lines, order), *_sum_row(lines, order),
                                 _capital(lines, order), _figures(lines, order)]
    fields = {f.name: f for f in found if f is not None}
    checks = cross_check(fields, order)
    return fields, checks
