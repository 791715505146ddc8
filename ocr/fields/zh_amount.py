"""Chinese capital-number amounts (大写金额): 壹仟贰佰叁拾肆圆伍角陆分 → Decimal("1234.56").

A VAT invoice prints its grand total twice, in capitals and in figures; reading both and checking
one against the other is the strongest evidence the page offers that the total was read right.
"""

from __future__ import annotations

import re
from decimal import Decimal

DIGITS = {"零": 0, "〇": 0, "壹": 1, "贰": 2, "貳": 2, "叁": 3, "參": 3, "肆": 4, "伍": 5, "陆": 6, "陸": 6,
          "柒": 7, "捌": 8, "玖": 9, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
          "八": 8, "九": 9}
SMALL_UNITS = {"拾": 10, "十": 10, "佰": 100, "百": 100, "仟": 1000, "千": 1000}
BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
YUAN = "圆元圓"
FRACTION_UNITS = {"角": Decimal("0.1"), "分": Decimal("0.01")}
WHOLE = "整正"
CAPITAL_CHARS = set(DIGITS) | set(SMALL_UNITS) | set(BIG_UNITS) | set(YUAN) | set(FRACTION_UNITS) | set(WHOLE)
#: characters only the capital form uses: a run must hold one to count as a 大写 amount
_CAPITAL_ONLY = set("零壹贰貳叁參肆伍陆陸柒捌玖拾佰仟")
_RUN = re.compile("[" + "".join(sorted(CAPITAL_CHARS)) + "]+")


def _parse_integer(text: str) -> int | None:
    """Integer part: sections of 拾/佰/仟 grouped by 万 and 亿 (壹亿贰仟万 = 120,000,000)."""
    total, wan, section, num = 0, 0, 0, None
    for ch in text:
        if ch in DIGITS:
            num = DIGITS[ch]
        elif ch in SMALL_UNITS:
            section += (1 if num is None else num) * SMALL_UNITS[ch]
            num = None
        elif ch == "万" or ch == "萬":
            wan = (section + (num or 0)) * 10_000
            section, num = 0, None
        elif ch in BIG_UNITS:
            total = (total + wan + section + (num or 0)) * BIG_UNITS[ch]
            wan, section, num = 0, 0, None
        else:
            return None
    return total + wan + section + (num or 0)


def _parse_fraction(text: str) -> Decimal | None:
    """角 and 分 after the 圆: 伍角陆分 = 0.56, 零陆分 = 0.06."""
    value, num = Decimal(0), None
    for ch in text:
        if ch in DIGITS:
            num = DIGITS[ch]
        elif ch in FRACTION_UNITS:
            if num is None:
                return None
            value += num * FRACTION_UNITS[ch]
            num = None
        elif ch in WHOLE:
            continue
        else:
            return None
    return value if num in (None, 0) else None


def parse_chinese_amount(text: str) -> Decimal | None:
    """The amount a capital-number string states, or None when it is not a well-formed one."""
    body = re.sub(r"[\s⊗ⓧ×¤]", "", text or "").lstrip("负")
    if not body or not (set(body) & _CAPITAL_ONLY) or set(body) - CAPITAL_CHARS:
        return None
    parts = re.split(f"[{YUAN}]", body, maxsplit=1)
    integer_text, fraction_text = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    if len(parts) == 1 and not set(fraction_text) & set(FRACTION_UNITS):
        return None  # no 圆 and no 角/分: a bare number, not an amount
    integer = _parse_integer(integer_text.rstrip("".join(WHOLE))) if integer_text else 0
    fraction = _parse_fraction(fraction_text)
    if integer is None or fraction is None:
        return None
    value = (Decimal(integer) + fraction).quantize(Decimal("0.01"))
    return -value if (text or "").strip().startswith("负") else value


def find_capital_amount(text: str) -> tuple[int, int, Decimal] | None:
    """The longest run of capital-number characters in ``text`` that parses: (start, end, value)."""
    best: tuple[int, int, Decimal] | None = None
    for m in _RUN.finditer(text or ""):
        value = parse_chinese_amount(m.group())
        if value is not None and (best is None or m.end() - m.start() > best[1] - best[0]):
            best = (m.start(), m.end(), value)
    return best
