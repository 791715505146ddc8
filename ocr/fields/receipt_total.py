"""A receipt's total: the amount beside the keyword that names the amount finally paid.

Receipts print several totals (sub-total, tax, total before and after rounding, a tax-summary
table) and the payment (cash, change). Candidates are amounts beside a TOTAL-type keyword, ranked
by how final the keyword is; an amount that equals cash minus change is confirmed by arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from ocr.fields import lexicon as lx
from ocr.fields.build import make_field
from ocr.fields.lines import Line, right_of
from ocr.fields.model import Field, Span
from ocr.fields.normalize import AmountMatch, format_amount
from ocr.fields.normalize import find_amounts as _find_amounts

#: keyword class → base score; the class order in lexicon.TOTAL_FINAL, strongest first
CLASS_SCORE = {"rounded total": 5.0, "net/grand total": 4.0, "total incl. tax": 3.5, "total amount": 3.0, "total": 2.5}
#: measured like receipt.RELIABILITY (rules with fewer than 10 uses on the training receipts capped)
RELIABILITY = {"total/keyword": 0.93, "total/subtotal": 0.7, "total/keyword+cash-change": 0.99,
               "total/cash-change": 0.9, "total/largest-amount": 0.6}


#: "7-00": a decimal point read as a dash (one or two digits, dash, two digits, nothing more)
_DASH_DECIMAL = re.compile(r"(?<![\d-])(\d{1,4})-(\d{2})(?![\d-])")


def find_amounts(text: str) -> list[AmountMatch]:
    """Amounts with cents, also where the recogniser read the decimal point as a dash ("7-00")."""
    return _find_amounts(_DASH_DECIMAL.sub(r"\1.\2", text))


@dataclass
class Candidate:
    score: float
    value: Decimal
    span: Span
    keyword_line: Line
    keyword_class: str
    notes: list[str]


def _keyword_class(text: str) -> str | None:
    """The class of total keyword in ``text``, None when it names a sub-total, tax, quantity …"""
    if not lx.TOTAL_KEYWORD.search(text) or lx.TOTAL_EXCLUDE.search(text):
        return None
    for name, pattern in lx.TOTAL_FINAL:
        if pattern.search(text):
            return name
    return None


def _amount_beside(line: Line, order: Sequence[Line]) -> tuple[Line, AmountMatch] | None:
    """The amount printed after the keyword on its line, else the rightmost one on its row."""
    t = line.text.upper()
    kw = lx.TOTAL_KEYWORD.search(t)
    own = [a for a in find_amounts(line.text) if kw is None or a.start >= kw.end()]
    if own:
        return line, own[-1]
    for other in reversed(right_of(line, order)):
        if lx.TOTAL_KEYWORD.search(other.text.upper()) or lx.CASH_KEYWORD.search(other.text.upper()):
            continue
        found = find_amounts(other.text)
        if found:
            return other, found[-1]
    return _amount_near_row(line, order)


def _amount_near_row(line: Line, order: Sequence[Line]) -> tuple[Line, AmountMatch] | None:
    """A slanted scan: the amount to the right whose centre is within 0.8 line heights, nearest first."""
    near = [o for o in order if o is not line and o.x0 > line.x1 and abs(o.cy - line.cy) < 0.8 * line.height
            and not lx.TOTAL_KEYWORD.search(o.text.upper())]
    for other in sorted(near, key=lambda o: abs(o.cy - line.cy)):
        found = find_amounts(other.text)
        if found:
            return other, found[-1]
    return None


def _labelled_amount(order: Sequence[Line], pattern) -> Decimal | None:
    """The amount beside the first line matching ``pattern`` (cash paid, change)."""
    for line in order:
        if pattern.search(line.text.upper()):
            found = find_amounts(line.text) or [a for o in right_of(line, order) for a in find_amounts(o.text)]
            if found:
                return found[-1].value
    return None


def _candidates(order: Sequence[Line]) -> list[Candidate]:
    """Every amount beside a total keyword, scored by keyword class and position."""
    summary_y = min((ln.y0 for ln in order if lx.TAX_SUMMARY.search(ln.text.upper())), default=float("inf"))
    rounding = [ln for ln in order if lx.ROUNDING.search(ln.text.upper()) and _keyword_class(ln.text.upper()) is None]
    out = []
    for line in order:
        cls = _keyword_class(line.text.upper())
        if cls is None:
            continue
        hit = _amount_beside(line, order)
        if hit is None or hit[1].value <= 0:
            continue
        src, am = hit
        score, notes = CLASS_SCORE[cls], []
        if line.y0 > summary_y:
            score -= 2.5
            notes.append("inside a tax summary table (demoted)")
        if any(0 < line.y0 - r.y0 < 4 * line.height for r in rounding):
            score += 2.0
            notes.append("just after the rounding adjustment")
        out.append(Candidate(score, am.value, Span(src, am.start, am.end), line, cls, notes))
    return out


def _rounded_totals(order: Sequence[Line], cands: list[Candidate]) -> list[Candidate]:
    """"ROUNDING  45.35" under "TOTAL 45.34": a rounding line whose amount is a total, not an adjustment.

    An adjustment is a few cents; an amount beside ROUNDING within 5 cents of a total is the
    total after rounding (printed so by some tills).
    """
    out = []
    for line in order:
        if not lx.ROUNDING.search(line.text.upper()) or _keyword_class(line.text.upper()) is not None:
            continue
        hit = _amount_beside(line, order)
        if hit is None or hit[1].value < 1:
            continue
        src, am = hit
        if any(abs(am.value - c.value) <= Decimal("0.05") and c.keyword_line.y0 < line.y0 for c in cands):
            out.append(Candidate(CLASS_SCORE["rounded total"], am.value, Span(src, am.start, am.end), line,
                                 "rounded total", ["a ROUNDING line carrying the rounded total"]))
    return out


def _cash_minus_change(order: Sequence[Line]) -> Decimal | None:
    cash = _labelled_amount(order, lx.CASH_KEYWORD)
    change = _labelled_amount(order, lx.CHANGE_KEYWORD)
    if cash is None or change is None or change >= cash:
        return None
    return cash - change


def _subtotal(order: Sequence[Line]) -> Field | None:
    """Only a SUBTOTAL is printed (no total line): its amount is what was paid."""
    for line in order:
        if lx.SUBTOTAL.search(line.text.upper()):
            hit = _amount_beside(line, order)
            if hit is not None and hit[1].value > 0:
                src, am = hit
                return make_field("total", format_amount(am.value), [Span(src, am.start, am.end)],
                                  rule="total/subtotal", reason=f"no total line; amount beside '{line.text}'",
                                  reliability=RELIABILITY["total/subtotal"], lines=order)
    return None


def _fallback(order: Sequence[Line], paid: Decimal | None) -> Field | None:
    """No total keyword: cash − change, else a lone SUBTOTAL, else the largest amount on the page."""
    if paid is None and (sub := _subtotal(order)) is not None:
        return sub
    amounts = [(a, ln) for ln in order for a in find_amounts(ln.text) if a.value > 0]
    if not amounts:
        return None
    match = [(a, ln) for a, ln in amounts if paid is not None and a.value == paid]
    rule = "total/cash-change" if match else "total/largest-amount"
    a, ln = match[0] if match else max(amounts, key=lambda p: p[0].value)
    reason = ("no TOTAL keyword; the amount equal to cash paid minus change" if match
              else "no TOTAL keyword and no cash/change; the largest amount on the page")
    return make_field("total", format_amount(a.value), [Span(ln, a.start, a.end)], rule=rule, reason=reason,
                      reliability=RELIABILITY[rule], lines=order)


def find_total(order: Sequence[Line]) -> Field | None:
    """The total paid: best-scored keyword candidate, confirmed by cash − change when printed."""
    paid = _cash_minus_change(order)
    cands = _candidates(order)
    cands += _rounded_totals(order, cands)
    if not cands:
        return _fallback(order, paid)
    for c in cands:
        if paid is not None and c.value == paid:
            c.score += 2.0
            c.notes.append(f"equals cash − change ({format_amount(paid)})")
        if sum(o.value == c.value for o in cands) > 1:
            c.score += 0.5
            c.notes.append("repeated beside another total keyword")
    best = max(cands, key=lambda c: (c.score, c.span.line.y0))
    rule = "total/keyword+cash-change" if paid is not None and best.value == paid else "total/keyword"
    reason = f"amount beside '{best.keyword_line.text}' (keyword class: {best.keyword_class})"
    if best.notes:
        reason += "; " + "; ".join(best.notes)
    spans = [best.span] if best.span.line is best.keyword_line else [best.span]
    f = make_field("total", format_amount(best.value), spans, rule=rule, reason=reason,
                   reliability=RELIABILITY[rule], lines=order)
    f.checks["keyword_line"] = best.keyword_line.index
    if paid is not None:
        f.checks["cash_minus_change"] = format_amount(paid)
    return f
