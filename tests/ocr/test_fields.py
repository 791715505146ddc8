"""Field extraction (ocr.fields): normalisation, 大写 amounts, kind detection, receipts and invoices."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from ocr.fields import (
    RECEIPT,
    UNKNOWN,
    VAT_INVOICE,
    as_lines,
    baseline_fields,
    detect_kind,
    extract_fields,
    normalize_amount,
    normalize_date,
    normalize_field,
    parse_chinese_amount,
)
from ocr.fields.normalize import find_amounts
from ocr.fields.receipt import repair_company
from ocr.fields.repair import repair_address

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example(name: str) -> dict:
    """The ground-truth lines of one sample page (examples/index.jsonl)."""
    for row in open(EXAMPLES / "index.jsonl", encoding="utf-8"):
        item = json.loads(row)
        if item["image"] == name:
            return item
    raise KeyError(name)


TRUTH = json.loads((EXAMPLES / "fields.json").read_text(encoding="utf-8"))


# --- normalisation ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, iso", [
    ("18-11-18", "2018-11-18"),
    ("DATE: 09/01/2019 8:01:11 PM", "2019-01-09"),
    ("01-NOV-2017", "2017-11-01"),
    ("14/JUN/2017", "2017-06-14"),
    ("24 MAR 18", "2018-03-24"),
    ("2016/05/01", "2016-05-01"),
    ("12/25/2018", "2018-12-25"),  # month-first only when day-first is impossible
    ("Date:10/03/20185:41:06", "2018-03-10"),  # the reader dropped the space before the time
    ("开票日期：2025年03月18日", "2025-03-18"),
    ("Mar 5, 2019", "2019-03-05"),
])
def test_dates_normalise_to_iso(text, iso):
    assert normalize_date(text) == iso


@pytest.mark.parametrize("text", ["31/02/2018", "TEL 03-3271 9872", "HD03-04-06 5/40", "31.00 12.00", ""])
def test_non_dates_are_not_dates(text):
    assert normalize_date(text) is None


@pytest.mark.parametrize("text, value", [
    ("RM 9.00", "9.00"), ("$7.60", "7.60"), ("¥1,234.56", "1234.56"), ("31,00", "31.00"), ("9", "9.00"),
    ("RM29.30", "29.30"), ("-0.02", "-0.02"),
])
def test_amounts_normalise_to_decimal_strings(text, value):
    assert normalize_amount(text) == value


def test_rates_and_unit_prices_are_not_amounts():
    assert [a.value for a in find_amounts("TOTAL SALES INCLUSIVE GST @6.00%: 63.80")] == [Decimal("63.80")]
    assert [a.value for a in find_amounts("3PC @13.69 41.07")] == [Decimal("41.07")]


def test_field_normalisation_compares_meaning():
    assert normalize_field("date", "18/11/2018") == normalize_field("date", "18-11-18")
    assert normalize_field("total", "RM 9.00") == normalize_field("total", "9")
    assert normalize_field("company", "ABC  ho trading") == "ABCHOTRADING"


# --- 大写 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("壹仟贰佰叁拾肆元伍角陆分", "1234.56"),
    ("壹仟贰佰叁拾肆圆伍角陆分", "1234.56"),
    ("⊗壹仟贰佰叁拾肆圆伍角陆分", "1234.56"),
    ("壹万零伍拾圆整", "10050.00"),
    ("拾圆整", "10.00"),
    ("壹亿贰仟万圆整", "120000000.00"),
    ("叁拾万零贰佰圆零伍分", "300200.05"),
    ("伍角", "0.50"),
])
def test_capital_amounts_parse(text, value):
    assert parse_chinese_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["壹贰叁", "价税合计（大写）", "壹佰圆伍角陆", "", "1234.56"])
def test_malformed_capital_amounts_are_refused(text):
    assert parse_chinese_amount(text) is None


# --- repairs ---------------------------------------------------------------------------------------

def test_company_repairs_only_certain_misreads():
    assert repair_company("SUPER SEVEN CASH & CARRY SDN 3HD") == "SUPER SEVEN CASH & CARRY SDN BHD"
    assert repair_company("99 SPEED MART 5/8") == "99 SPEED MART S/B"
    assert repair_company("POPULAR B00K CO. (M) SDN BHD") == "POPULAR BOOK CO. (M) SDN BHD"
    assert repair_company("7-ELEVEN MALAYSIA SDN BHD") == "7-ELEVEN MALAYSIA SDN BHD"


def test_address_repairs_are_reported():
    value, repairs = repair_address("KAMASAN PERINDUSTR1AN, 433OO SERI KEMBANGAN, SS21/39")
    assert value == "KAWASAN PERINDUSTRIAN, 43300 SERI KEMBANGAN, SS21/39"
    assert ("433OO", "43300") in repairs and ("KAMASAN", "KAWASAN") in repairs
    assert repair_address("128 Harbour Street Portland, OR 97204") == ("128 Harbour Street Portland, OR 97204", [])


# --- kind --------------------------------------------------------------------------------------

def test_kind_detection():
    assert detect_kind(as_lines(example("invoice_zh.png")))[0] == VAT_INVOICE
    assert detect_kind(as_lines(example("receipt_en.png")))[0] == RECEIPT
    assert detect_kind(as_lines(example("shipping_label.png")))[0] == UNKNOWN
    assert extract_fields(example("shipping_label.png")).fields == {}


# --- a synthetic receipt ---------------------------------------------------------------------------

@dataclass
class Char:
    char: str
    confidence: float


@dataclass
class FakeLine:
    """Shaped like ocr.pipeline.PageLine: what the extractor reads by duck typing."""
    text: str
    box: list[float]
    confidence: float = 0.99
    chars: list[Char] = field(default_factory=list)


@dataclass
class FakePage:
    lines: list[FakeLine]


def _line(text: str, x: float, y: float, conf: float = 0.99, weak: dict[int, float] | None = None) -> FakeLine:
    w, h = 14 * len(text), 24
    chars = [Char(c, (weak or {}).get(i, conf)) for i, c in enumerate(text)]
    return FakeLine(text, [x, y, x + w, y, x + w, y + h, x, y + h], conf, chars)


def synthetic_receipt(total_weak: float | None = None, payment: bool = True) -> FakePage:
    """A Malaysian-style receipt: sub-total, tax, total before and after rounding, cash and change."""
    rows = [
        [("ACME TRADING SDN BHD (123456-X)", 60)], [("NO 12, JALAN MAJU 3,", 90)],
        [("TAMAN SERI, 43300 KAJANG", 80)], [("TEL: 03-1234 5678", 90)], [("TAX INVOICE", 110)],
        [("DATE: 05/06/2018 12:30", 20), ("CASHIER: 01", 330)],
        [("WIDGET", 20), ("2", 250), ("4.72", 400)], [("GADGET", 20), ("1", 250), ("4.71", 400)],
        [("SUBTOTAL", 20), ("9.43", 400)], [("GST 6%", 20), ("0.57", 400)],
        [("TOTAL (INCL GST)", 20), ("10.02", 390)], [("ROUNDING ADJ", 20), ("-0.02", 390)],
        [("TOTAL", 20), ("10.00", 390)], [("CASH", 20), ("20.00", 390)], [("CHANGE", 20), ("10.00", 390)],
        [("THANK YOU", 120)],
    ]
    if not payment:
        rows = [row for row in rows if row[0][0] not in ("CASH", "CHANGE")]
    lines = []
    for r, row in enumerate(rows):
        for text, x in row:
            weak = {1: total_weak} if total_weak is not None and text == "10.00" and r == 12 else None
            lines.append(_line(text, x, 40 + 36 * r, weak=weak))
    return FakePage(lines)


def test_synthetic_receipt_fields():
    fs = extract_fields(synthetic_receipt())
    assert fs.kind == RECEIPT
    assert fs.value("company") == "ACME TRADING SDN BHD"
    assert normalize_field("address", fs.value("address")) == normalize_field(
        "address", "NO 12, JALAN MAJU 3, TAMAN SERI, 43300 KAJANG")
    assert fs.value("date") == "2018-06-05"
    assert fs.value("total") == "10.00"  # after rounding, and equal to cash − change


def test_total_after_rounding_wins_without_payment_lines():
    fs = extract_fields(synthetic_receipt(payment=False))
    assert fs.value("total") == "10.00"
    assert "rounding" in fs.fields["total"].reason


def test_total_points_at_its_box_and_explains_itself():
    page = synthetic_receipt()
    total = extract_fields(page).fields["total"]
    src = page.lines[[i for i, ln in enumerate(page.lines) if ln.text == "10.00"][0]]
    d = total.to_dict()
    assert d["boxes"] == [[round(v, 1) for v in src.box]]
    assert "TOTAL" in d["explanation"]["reason"] and "cash − change" in d["explanation"]["reason"]
    assert d["explanation"]["rule"] == "total/keyword+cash-change"
    json.dumps(extract_fields(page).to_dict(), ensure_ascii=False)  # JSON-ready


def test_confidence_rests_on_the_value_characters():
    sure = extract_fields(synthetic_receipt()).fields["total"]
    doubtful = extract_fields(synthetic_receipt(total_weak=0.3)).fields["total"]
    assert doubtful.value == sure.value
    assert doubtful.confidence < 0.35 < sure.confidence
    assert doubtful.low_confidence and not sure.low_confidence
    weakest = doubtful.to_dict()["explanation"]["weakest_chars"][0]
    assert weakest["char"] == "0" and weakest["confidence"] == pytest.approx(0.3)


def test_baseline_differs_from_the_rules():
    base = baseline_fields(synthetic_receipt())
    assert base.method == "baseline"
    assert base.value("total") == "20.00"  # the largest amount after TOTAL: the cash handed over
    assert base.value("company") == "ACME TRADING SDN BHD (123456-X)"


# --- Chinese VAT invoices ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["invoice_zh.png", "invoice_zh_tilt.png"])
def test_invoice_fields_from_true_lines(name):
    fs = extract_fields(example(name))
    assert fs.kind == VAT_INVOICE
    truth = TRUTH[name]["fields"]
    assert {k: fs.value(k) for k in truth} == truth
    assert fs.checks == {"capital_equals_figures": True, "amount_plus_tax_equals_total": True, "all_passed": True}
    assert fs.fields["buyer_name"].to_dict()["label"] == "购买方名称"


def _with_text(item: dict, old: str, new: str) -> dict:
    lines = [dict(ln, text=ln["text"].replace(old, new)) for ln in item["lines"]]
    return dict(item, lines=lines)


def test_capital_and_figures_disagreeing_are_flagged():
    fs = extract_fields(_with_text(example("invoice_zh.png"), "¥1,234.56", "¥1,243.56"))
    assert fs.checks["capital_equals_figures"] is False
    assert fs.checks["amount_plus_tax_equals_total"] is False
    assert fs.checks["all_passed"] is False
    assert fs.fields["total"].checks["capital_equals_figures"] is False
    assert fs.fields["total"].low_confidence and fs.fields["total_capital"].low_confidence


def test_missing_figures_are_derived_from_the_capitals():
    fs = extract_fields(_with_text(example("invoice_zh.png"), "（小写）¥1,234.56", "（小写）"))
    assert fs.value("total") == "1234.56"
    assert fs.fields["total"].checks.get("derived") is True


def test_invoice_through_the_pipeline():
    from ocr.pipeline import OCRPipeline

    try:
        pipeline = OCRPipeline.load(threads=1)
    except Exception as exc:  # weights missing in a bare checkout
        pytest.skip(f"no pipeline: {exc}")
    fs = extract_fields(pipeline.run(str(EXAMPLES / "invoice_zh.png")))
    truth = TRUTH["invoice_zh.png"]["fields"]
    assert fs.kind == VAT_INVOICE
    for name in ("invoice_code", "invoice_number", "date", "total_capital", "total"):
        assert fs.value(name) == truth[name], name
    assert all(0.0 <= f.confidence <= 1.0 for f in fs.fields.values())


def _box(x: float, y: float, w: float, h: float = 24) -> list[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def test_digital_invoice_side_by_side_parties_and_split_labels():
    """全电发票: buyer and seller blocks side by side, labels in their own boxes, a 20-digit number."""
    rows = [
        ("电子发票（普通发票）", 300, 20, 260), ("发票号码：", 700, 20, 90), ("24442000000012345678", 800, 20, 230),
        ("开票日期：", 700, 50, 90), ("2024年11月05日", 800, 50, 150),
        ("购买方信息", 20, 130, 40), ("名称：", 70, 110, 60), ("甲乙科技有限公司", 140, 110, 200),
        ("统一社会信用代码/纳税人识别号：", 70, 150, 270), ("91110108MA01ABCD2E", 345, 150, 160),
        ("销售方信息", 520, 130, 40), ("名称：", 570, 110, 60), ("丙丁贸易有限公司", 640, 110, 200),
        ("统一社会信用代码/纳税人识别号：", 570, 150, 270), ("91310115MA1HXYZ07K", 845, 150, 160),
        ("合计", 40, 300, 40), ("¥100.00", 600, 300, 80), ("¥6.00", 850, 300, 60),
        ("金额", 620, 200, 40), ("税额", 860, 200, 40),
        ("价税合计（大写）", 40, 340, 140), ("壹佰零陆圆整", 200, 340, 120), ("（小写）¥106.00", 700, 340, 140),
    ]
    page = {"lines": [{"text": t, "box": _box(x, y, w)} for t, x, y, w in rows]}
    fs = extract_fields(page)
    assert fs.kind == VAT_INVOICE
    assert fs.value("invoice_number") == "24442000000012345678"
    assert fs.value("date") == "2024-11-05"
    assert fs.value("buyer_name") == "甲乙科技有限公司" and fs.value("seller_name") == "丙丁贸易有限公司"
    assert fs.value("buyer_tax_id") == "91110108MA01ABCD2E" and fs.value("seller_tax_id") == "91310115MA1HXYZ07K"
    assert (fs.value("amount"), fs.value("tax"), fs.value("total_capital"), fs.value("total")) == (
        "100.00", "6.00", "106.00", "106.00")
    assert fs.checks["all_passed"] is True


def test_receipt_text_folds_latin_accents_and_lookalikes_but_not_chinese():
    from ocr.fields.repair import fold_latin, repair_address

    assert fold_latin("Simpàng Rímbunan dalän") == "Simpang Rimbunan dalan"
    assert fold_latin("KUALA L∪MP∪R，发票") == "KUALA LUMPUR,发票"
    assert len(fold_latin("RESTÄURANTS（1）")) == len("RESTÄURANTS（1）")
    assert repair_address("NO 7, Simpàng Off Batu Village")[0] == "NO 7, Simpang Off Batu Village"
