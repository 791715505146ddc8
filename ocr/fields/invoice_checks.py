"""The invoice's own arithmetic as evidence: 大写 must equal 小写, and 金额 + 税额 must equal both.

When two independent readings agree, each is very likely right (confidence raised); when they
disagree, at least one is wrong (both marked, and the flag says which check failed). A missing
total is filled from its agreeing counterpart, with the derivation stated.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Sequence

from ocr.fields.build import make_field
from ocr.fields.confidence import agreeing
from ocr.fields.lines import Line
from ocr.fields.model import Field

#: a value whose cross-check failed keeps at most this confidence
FAILED_CHECK_CAP = 0.4


def _dec(f: Field | None) -> Decimal | None:
    return Decimal(f.value) if f is not None and f.value else None


def _agree(a: Field, b: Field, check: str) -> None:
    """Both readings agree: raise both confidences (independent evidence) and record it."""
    both = agreeing([a.confidence, b.confidence])
    for f in (a, b):
        f.confidence = max(f.confidence, both)
        f.checks[check] = True


def _disagree(fields: Sequence[Field], check: str) -> None:
    for f in fields:
        f.confidence = min(f.confidence, FAILED_CHECK_CAP)
        f.checks[check] = False


def _derive(name: str, source: Field, value: Decimal, how: str, order: Sequence[Line]) -> Field:
    """A total not read on the page, taken from the readings it must equal."""
    f = make_field(name, str(value), list(source.spans), rule=f"{name}/derived", reason=how,
                   reliability=0.9, lines=order, label=source.label if name == source.name else "")
    f.confidence = min(f.confidence, source.confidence)
    f.checks["derived"] = True
    return f


def cross_check(fields: dict[str, Field], order: Sequence[Line]) -> dict[str, Any]:
    """Check 大写 against 小写 and 金额 + 税额 against the total; adjust confidences; fill a missing total."""
    checks: dict[str, Any] = {}
    cap, fig = fields.get("total_capital"), fields.get("total")
    if cap is not None and fig is not None:
        ok = _dec(cap) == _dec(fig)
        checks["capital_equals_figures"] = ok
        (_agree(cap, fig, "capital_equals_figures") if ok else _disagree([cap, fig], "capital_equals_figures"))
    elif cap is not None:
        fields["total"] = _derive("total", cap, _dec(cap), "小写 amount not read; taken from the parsed 大写 amount",
                                  order)
        fields["total"].label = "价税合计（小写）"
    amount, tax = _dec(fields.get("amount")), _dec(fields.get("tax"))
    total = _dec(fields.get("total"))
    if amount is not None and tax is not None and total is not None:
        ok = amount + tax == total
        checks["amount_plus_tax_equals_total"] = ok
        parts = [fields["amount"], fields["tax"]]
        if ok:
            for f in parts:
                f.checks["amount_plus_tax_equals_total"] = True
                f.confidence = max(f.confidence, agreeing([f.confidence, fields["total"].confidence]))
        else:
            _disagree(parts, "amount_plus_tax_equals_total")
    if checks:
        checks["all_passed"] = all(v for v in checks.values() if isinstance(v, bool))
    return checks
