"""Fields from a read page: receipts (company, date, address, total) and Chinese VAT invoices (发票).

    from ocr.fields import extract_fields
    fields = extract_fields(page)          # page: ocr.results.PageResult or anything with .lines
    fields.kind, fields.value("total"), fields.to_dict()
    fields_for_answer(answer)              # the REST / CLI JSON answer (a dict with "lines") -> fields JSON

Layout rules, patterns and lexicons only (no model, no web or training imports). Each field keeps
its normalised value, the lines and boxes it came from, a confidence built from its characters'
confidences and its rule's reliability, and why it was chosen. ``baseline_fields`` is the plain
comparison the benchmark reports beside it.
"""

from __future__ import annotations

from typing import Any

from ocr.errors import OCRError
from ocr.fields.baseline import baseline_invoice, baseline_receipt
from ocr.fields.invoice_zh import extract_vat_invoice
from ocr.fields.kind import FIELD_NAMES, RECEIPT, UNKNOWN, VAT_INVOICE, detect_kind
from ocr.fields.lines import Line, as_lines
from ocr.fields.model import LOW_CONFIDENCE, Field, FieldSet
from ocr.fields.normalize import normalize_amount, normalize_date, normalize_field, normalize_text
from ocr.fields.receipt import extract_receipt
from ocr.fields.zh_amount import parse_chinese_amount

__all__ = ["extract_fields", "fields_for_answer", "baseline_fields", "InvalidAnswerError", "detect_kind", "as_lines",
           "Field", "FieldSet", "Line", "FIELD_NAMES", "LOW_CONFIDENCE", "RECEIPT", "VAT_INVOICE", "UNKNOWN",
           "normalize_amount", "normalize_date", "normalize_field", "normalize_text", "parse_chinese_amount"]


def _kind(lines: list[Line], kind: str | None) -> tuple[str, str]:
    if kind in (RECEIPT, VAT_INVOICE):
        return kind, "given by the caller"
    return detect_kind(lines)


def extract_fields(page: Any, kind: str | None = None) -> FieldSet:
    """The fields of ``page`` by layout rules; ``kind`` forces receipt / zh_vat_invoice."""
    lines = as_lines(page)
    kind, reason = _kind(lines, kind)
    out = FieldSet(kind, reason, method="rules")
    if kind == VAT_INVOICE:
        found, checks = extract_vat_invoice(lines)
        out.checks = checks
    elif kind == RECEIPT:
        found = extract_receipt(lines)
    else:
        found = {}
    for f in found.values():
        out.add(f)
    return out


def baseline_fields(page: Any, kind: str | None = None) -> FieldSet:
    """The plain baseline's fields (first line, first date, largest amount …), for comparison."""
    lines = as_lines(page)
    kind, reason = _kind(lines, kind)
    found = baseline_invoice(lines) if kind == VAT_INVOICE else baseline_receipt(lines) if kind == RECEIPT else {}
    out = FieldSet(kind, reason, method="baseline")
    for f in found.values():
        out.add(f)
    return out


def fields_for_answer(answer: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
    """The ``fields`` object of an answer already made: the REST ``/api/v1/ocr`` JSON or a line of
    ``python -m ocr page --json`` (a dict whose ``lines`` hold ``box``, ``text``, ``confidence`` and
    ``chars``). For the batch runner, which keeps answers, not page objects: the same fields
    ``"fields": true`` would have added, with no second reading of the image.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("lines"), list):
        raise InvalidAnswerError("fields need an OCR answer: a dict with a 'lines' list (an error answer has none)")
    try:
        return extract_fields(answer, kind).to_dict()
    except (TypeError, ValueError) as exc:  # a line without a box, a box of 5 values ...
        raise InvalidAnswerError(f"the answer's lines are not readable: {exc}") from None


class InvalidAnswerError(OCRError):
    """``fields_for_answer`` was given something other than an OCR answer's JSON."""

    code = "invalid_answer"
    default_message = "not an OCR answer"
