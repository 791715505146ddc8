"""Which kind of document a page is: a Chinese VAT invoice (发票) or a receipt.

The kinds differ in script and in fixed printed labels, so counting those labels is enough: a VAT
invoice prints 发票代码, 纳税人识别号, 价税合计 …; a receipt prints TOTAL, CASH, GST, amounts.
"""

from __future__ import annotations

import re
from typing import Sequence

from ocr.fields.lines import Line

INVOICE_LABELS = ("发票", "发票代码", "发票号码", "开票日期", "纳税人识别号", "价税合计", "购买方", "销售方",
                  "税额", "税率", "大写", "小写", "密码区", "开户行")
RECEIPT_WORDS = re.compile(r"\b(TOTAL|SUBTOTAL|CASH|CHANGE|RECEIPT|INVOICE|GST|TAX|QTY|AMOUNT|RM|PRICE|ITEM|DATE"
                           r"|CASHIER|THANK)\b")
RECEIPT = "receipt"
VAT_INVOICE = "zh_vat_invoice"
UNKNOWN = "unknown"
#: the fields each kind yields, in the order a reader expects them (the benchmark scores these; a
#: panel lists the ones not found as missing rather than leaving them out silently)
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    RECEIPT: ("company", "date", "address", "total"),
    VAT_INVOICE: ("invoice_code", "invoice_number", "date", "buyer_name", "buyer_tax_id", "seller_name",
                  "seller_tax_id", "amount", "tax", "total_capital", "total"),
    UNKNOWN: (),
}


def detect_kind(lines: Sequence[Line]) -> tuple[str, str]:
    """(kind, reason): zh_vat_invoice with ≥ 2 invoice labels, receipt with mostly Latin text and
    ≥ 2 receipt words, else unknown."""
    text = "\n".join(ln.text for ln in lines)
    labels = [w for w in INVOICE_LABELS if w in text]
    if len(labels) >= 2:
        return VAT_INVOICE, f"invoice labels found: {', '.join(labels[:6])}"
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    latin = sum(ch.isascii() and ch.isalpha() for ch in text)
    words = sorted({m.group(1) for m in RECEIPT_WORDS.finditer(text.upper())})
    if latin > 2 * han and len(words) >= 2:
        return RECEIPT, f"Latin text with receipt words: {', '.join(words[:6])}"
    return UNKNOWN, f"{len(labels)} invoice label(s), {len(words)} receipt word(s): neither layout recognised"
