"""Values in one canonical form: dates as ISO yyyy-mm-dd, amounts as Decimal strings, text for comparing.

Both the extractor's answers and ground truth go through these, so a receipt that prints
"18-11-18" and an annotation that says "18/11/2018" compare equal, and "RM 9.00" equals "9.00".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from ocr.textdist import normalize

MONTHS = {"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9,
          "OCT": 10, "NOV": 11, "DEC": 12}
_MON = r"(JAN(?:UARY)?|FEB(?:RUARY)?|MAR(?:CH)?|APR(?:IL)?|MAY|JUNE?|JULY?|AUG(?:UST)?|SEPT?(?:EMBER)?|OCT(?:OBER)?|NOV(?:EMBER)?|DEC(?:EMBER)?)"
#: a date ends at a non-digit, or where a time glued to it begins ("10/03/20185:41:06": the reader dropped the space)
_END = r"(?:(?!\d|[-/.]\d)|(?=-?\d{1,2}[:.]\d{2}:)|(?=-?\d{1,2}:\d{2}))"
# each pattern names its groups d, m (number), mon (name), y; (?<!\d) / (?!\d) keep them off longer numbers
DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("y年m月d日", re.compile(r"(?P<y>(?:19|20)\d{2})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日")),
    ("yyyy-mm-dd", re.compile(r"(?<![0-9A-Za-z])(?P<y>(?:19|20)\d{2})\s?[-/.]\s?(?P<m>\d{1,2})\s?[-/.]\s?(?P<d>\d{1,2})" + _END)),
    ("dd-mm-yyyy", re.compile(r"(?<![0-9A-Za-z])(?P<d>\d{1,2})\s?(?P<sep>[-/.])\s?(?P<m>\d{1,2})\s?(?P=sep)\s?(?P<y>(?:19|20)\d{2}|\d{2})" + _END)),
    ("dd mon yyyy", re.compile(rf"(?<!\d)(?P<d>\d{{1,2}})\s?[-/ .]?\s?(?P<mon>{_MON})\.?\s?[-/ .,]?\s?(?P<y>(?:19|20)\d{{2}}|\d{{2}})" + _END, re.I)),
    ("mon dd, yyyy", re.compile(rf"(?<![A-Z])(?P<mon>{_MON})\.?\s?(?P<d>\d{{1,2}})\s?,?\s?(?P<y>(?:19|20)\d{{2}})" + _END, re.I)),
)


@dataclass(frozen=True)
class DateMatch:
    """A date found in a text: where it is, what it says, and which pattern read it."""

    start: int
    end: int
    iso: str
    pattern: str


def _year(text: str) -> int:
    y = int(text)
    return y + 2000 if y < 100 else y


def _valid(y: int, m: int, d: int) -> str | None:
    """ISO string when the date exists and the year is plausible for a receipt or invoice."""
    if not 1990 <= y <= 2069:
        return None
    try:
        return date(y, m, d).isoformat()
    except ValueError:
        return None


def _iso_from(match: re.Match[str], pattern: str) -> str | None:
    """ISO date from one regex match; day-first unless that is impossible and month-first is not."""
    g = match.groupdict()
    y = _year(g["y"])
    if g.get("mon"):
        return _valid(y, MONTHS[g["mon"].upper()[:3]], int(g["d"]))
    d, m = int(g["d"]), int(g["m"])
    if pattern == "dd-mm-yyyy" and m > 12 >= d:
        d, m = m, d  # 12/25/2018: a US month-first date
    return _valid(y, m, d)


def find_dates(text: str) -> list[DateMatch]:
    """Every valid date in ``text``, in order, overlapping readings resolved by pattern priority."""
    found: list[DateMatch] = []
    taken: list[tuple[int, int]] = []
    for name, pattern in DATE_PATTERNS:
        for m in pattern.finditer(text):
            iso = _iso_from(m, name)
            if iso and not any(m.start() < e and s < m.end() for s, e in taken):
                found.append(DateMatch(m.start(), m.end(), iso, name))
                taken.append((m.start(), m.end()))
    return sorted(found, key=lambda dm: dm.start)


def normalize_date(text: str) -> str | None:
    """The first date in ``text`` as yyyy-mm-dd, or None."""
    found = find_dates(text or "")
    return found[0].iso if found else None


_AMOUNT = re.compile(
    r"(?<![\d.,])(?P<neg>-)?\s?(?:RM|MYR|USD|SGD|\$|¥|￥)?\s?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{2})|\d+)(?![\d])",
    re.I)


@dataclass(frozen=True)
class AmountMatch:
    """A money amount found in a text, with its position and whether it had decimals."""

    start: int
    end: int
    value: Decimal
    decimals: bool


def _to_decimal(num: str) -> Decimal | None:
    """Decimal from "1,234.56", "31,00" (a decimal comma) or "1234"."""
    if re.fullmatch(r"\d+,\d{2}", num):
        num = num.replace(",", ".")
    try:
        return Decimal(num.replace(",", ""))
    except InvalidOperation:
        return None


def find_amounts(text: str, *, decimals_only: bool = True) -> list[AmountMatch]:
    """Money amounts in ``text``; by default only those printed with cents (receipts always do)."""
    out = []
    for m in _AMOUNT.finditer(text):
        num = m.group("num")
        if text[m.end():m.end() + 2].lstrip().startswith("%") or text[max(0, m.start() - 1):m.start()] == "@":
            continue  # a rate (6.00%) or a unit price (@ 13.69), not an amount of money
        has_dec = bool(re.search(r"[.,]\d{1,2}$", num)) and not re.fullmatch(r"\d{1,3}(,\d{3})+", num)
        if decimals_only and not has_dec:
            continue
        value = _to_decimal(num)
        if value is None:
            continue
        if m.group("neg"):
            value = -value
        out.append(AmountMatch(m.start("num") if not m.group("neg") else m.start(), m.end(), value, has_dec))
    return out


def format_amount(value: Decimal) -> str:
    """Two decimals, no grouping: the canonical amount string ("1234.50")."""
    return str(value.quantize(Decimal("0.01")))


def normalize_amount(text: str) -> str | None:
    """The amount in ``text`` ("RM 9.00", "$7.60", "¥1,234.56", "9") as a Decimal string, or None."""
    cleaned = (text or "").replace(" ", "")
    found = find_amounts(cleaned, decimals_only=False)
    return format_amount(found[0].value) if found else None


def normalize_text(text: str) -> str:
    """Comparable text: the project's ``upper`` protocol (NFKC, upper case, no whitespace), so a name
    matches its truth exactly when the page benchmark would score its line as read right."""
    return normalize(text, "upper")


def normalize_field(name: str, value: str | None) -> str:
    """Canonical form of a field value for exact-match scoring, by field kind.

    Dates and amounts compare by meaning (falling back to their text when they cannot be parsed),
    everything else by normalised text.
    """
    if not value:
        return ""
    if "date" in name:
        return normalize_date(value) or normalize_text(value)
    if name in AMOUNT_FIELDS:
        return normalize_amount(value) or normalize_text(value)
    return normalize_text(value)


#: fields whose values are money amounts
AMOUNT_FIELDS = frozenset({"total", "amount", "tax", "total_capital", "subtotal"})
