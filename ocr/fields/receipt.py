"""English receipts: company, date, address and total from lines and their layout.

Receipts follow one pattern: a header (company, registration number, address, phone, tax ID),
the items, then a block of totals with a keyword on the left and the amount on the right of
the same row, then payment (cash, change). Each rule below reads one part of that pattern.
"""

from __future__ import annotations

import re
from typing import Sequence

from ocr.fields import lexicon as lx
from ocr.fields.build import make_field
from ocr.fields.lines import Line, Phrase, median_height, phrases, reading_order
from ocr.fields.model import RECEIPT_REVIEW_BELOW, Field, Span, whole
from ocr.fields.normalize import find_dates
from ocr.fields.repair import fold_latin, repair_address
from ocr.fields.receipt_total import find_total

#: how often each rule picks the right lines, measured by ``python -m benchmarks.fields --train --reliability``
#: on the training receipts' ground-truth lines (share of exact matches, rounded down; characters' own doubt is
#: added by their confidences, see confidence.py)
RELIABILITY = {
    "company/legal-form": 0.95, "company/trade-word": 0.95, "company/first-line": 0.8,
    "address/block-after-company": 0.8,
    "date/keyword": 0.98, "date/first-date": 0.95,
}
HEADER_LINES = 8
_TIME = re.compile(r"\b\d{1,2}:\d{2}")
#: "12, JALAN …", "A-16-1, TOWER A": a street number opening the line
_NUMBERED = re.compile(r"^\s*[A-Z]?-?\d+[A-Z]?(-\d+)*\s*[,.]")


def _upper(line: Line) -> str:
    """The line's text upper-cased, full-width forms folded (：→ :, ，→ ,) at the same length."""
    return fold_latin(line.text).upper()


def _address_like(text: str) -> bool:
    """An address line: a postcode, or address words (JALAN, TAMAN, LOT, a state), or "12, ..."."""
    return bool(lx.POSTCODE.search(text) or lx.ADDRESS_WORD.search(text)
                or _NUMBERED.match(text))


def _company_candidate(line: Phrase, rank: int, mh: float) -> tuple[float, str] | None:
    """Score a header phrase as the company name; None when it cannot be one."""
    t = repair_company(fold_latin(line.text))
    legal, trade = lx.COMPANY_LEGAL.search(t), lx.COMPANY_TRADE.search(t)
    if sum(c.isalpha() for c in t) < 3 or lx.REGISTRATION_ONLY.match(t) or lx.REGISTRATION.search(t) and not legal:
        return None
    if lx.NOISE_LINE.search(t) and not legal:
        return None
    if not legal and (lx.POSTCODE.search(t) or len(lx.ADDRESS_WORD.findall(t)) >= 2):
        return None
    score, rule = (3.0, "company/legal-form") if legal else \
        (1.5, "company/trade-word") if trade else (0.0, "company/first-line")
    if line.height > 1.25 * mh:
        score += 0.5
    return score - 0.25 * rank, rule


def repair_company(text: str) -> str:
    """Undo the recogniser's usual slips in a company name, using what a name can contain.

    A legal form is a fixed phrase ("SDN 3HD" can only be "SDN BHD"); a lone "8" between words is
    "&"; inside a word of letters, 0/1/5/8 are O/I/S/B ("B00K" → "BOOK", "1DEA" → "IDEA").
    """
    out = text.upper()
    for pattern, canonical in lx.COMPANY_LEGAL_FUZZY:
        out = pattern.sub(lambda m: m.group() if lx.COMPANY_LEGAL.fullmatch(m.group().rstrip(".")) else canonical, out)
    out = re.sub(r"(?<=[A-Z]) 8 (?=[A-Z])", " & ", out)
    return re.sub(r"\b[A-Z0158]*[A-Z][A-Z0158]*\b", _letters_only, out)


def _letters_only(m: re.Match[str]) -> str:
    word = m.group()
    if sum(ch.isalpha() for ch in word) < 2:
        return word
    return word.translate(str.maketrans("0158", "OISB"))


def _clean_company(text: str) -> str:
    """Company text repaired, without 'owned by' prefixes, and cut after its legal form.

    What follows the legal form on the same line is a registration number, a former name or the
    branch: "99 SPEED MART S/B (519537-X)" is the company "99 SPEED MART S/B".
    """
    out = repair_company(text.strip())
    for pattern in lx.COMPANY_STRIP[2:]:
        out = pattern.sub("", out)
    legal = lx.COMPANY_LEGAL.search(out)
    if legal:
        out = out[:legal.end()]
    for pattern in lx.COMPANY_STRIP[:2]:
        out = pattern.sub("", out)
    return out.strip(" ,;:")


def _continues(upper: Phrase, lower: Phrase) -> bool:
    """Whether ``lower`` directly continues ``upper`` (stacked, close, overlapping in x)."""
    gap = lower.y0 - upper.y1
    overlap = min(upper.x1, lower.x1) - max(upper.x0, lower.x0)
    return gap < 1.0 * max(upper.height, lower.height) and overlap > 0


def _is_continuation(text: str) -> bool:
    """A line that starts mid-name: a legal form or trade word first, or a ')' closing an earlier '('."""
    t = _clean_company(text.upper())
    closes = t.find(")") != -1 and (t.find("(") == -1 or t.find(")") < t.find("("))
    return bool(lx.COMPANY_CONTINUATION.search(t)) or closes


def _company_block(ph: Sequence[Phrase], pos: int) -> list[Phrase]:
    """The chosen phrase plus the phrases above (and one below) that the name runs over."""
    block = [ph[pos]]
    i = pos
    while i > 0 and _is_continuation(block[0].text) and _continues(ph[i - 1], block[0]) \
            and not lx.NOISE_LINE.search(fold_latin(ph[i - 1].text).upper()):
        i -= 1
        block.insert(0, ph[i])
    nxt = pos + 1
    if nxt < len(ph) and _continues(ph[pos], ph[nxt]) and _is_continuation(ph[nxt].text) \
            and not lx.COMPANY_LEGAL.search(ph[pos].text.upper()) and len(ph[nxt].text) <= 25:
        block.append(ph[nxt])
    return block


def find_company(order: Sequence[Line], ph: Sequence[Phrase]) -> tuple[Field | None, int]:
    """Company: the header phrase with a legal form or trade word, else the first plausible one.

    Returns the field and the index of its last phrase (the address follows it).
    """
    mh = median_height(order)
    scored = [(c, i) for i, p in enumerate(ph[:HEADER_LINES]) if (c := _company_candidate(p, i, mh)) is not None]
    if not scored:
        return None, -1
    (score, rule), pos = max(scored, key=lambda s: s[0][0])
    block = _company_block(ph, pos)
    raw = " ".join(p.text for p in block)
    why = {"company/legal-form": "it carries a legal form (SDN BHD, BHD, S/B, LTD …)",
           "company/trade-word": "it carries a trade word (TRADING, RESTAURANT, HARDWARE …)",
           "company/first-line": "no header line names a legal form or trade; first plausible header line"}[rule]
    reason = f"header line {pos + 1} of the page chosen because {why}" + (
        f"; joined with {len(block) - 1} adjacent line(s) the name runs over" if len(block) > 1 else "")
    if repair_company(raw) != raw.upper():
        reason += f"; misread letters repaired ('{raw.upper()}' → '{repair_company(raw)}')"
    spans = [whole(ln) for p in block for ln in p.lines]
    return make_field("company", _clean_company(raw), spans, rule=rule, reason=reason,
                      reliability=RELIABILITY[rule], lines=order, mode="mean"), ph.index(block[-1])


def _address_stop(text: str) -> bool:
    """A phrase that ends an address block: phone, tax or registration ID, document title …"""
    return bool(lx.ADDRESS_STOP.search(text) or lx.REGISTRATION_ONLY.match(text) or lx.REGISTRATION.search(text)
                or (":" in text and not _address_like(text)))


def _address_tail(phrase: Phrase) -> list[Span]:
    """The address part in front of a stop word ("81750 JOHOR, TEL NO.: 07-…"), box by box."""
    out: list[Span] = []
    for line in phrase.lines:
        t = fold_latin(line.text).upper()
        if not _address_stop(t):
            out.append(whole(line))
            continue
        m = lx.ADDRESS_STOP.search(t)
        head = line.text[:m.start()] if m else ""
        if m and len(head.strip(" ,.;:")) >= 3 and _address_like(head.upper()):
            out.append(Span(line, 0, len(head.rstrip(" ,;:"))))
        break
    return out if out and _address_like(" ".join(sp.text for sp in out).upper()) else []


def _address_block(ph: Sequence[Phrase], after: int, mh: float) -> list[Span]:
    """Spans of the address: from the first street-level phrase after the company up to a stop phrase."""
    block: list[Span] = []
    last: Phrase | None = None
    for p in ph[after + 1: after + 1 + 12]:
        t = fold_latin(p.text).upper()
        if last is None:
            if lx.ADDRESS_START.search(t) and _address_like(t) and not _address_stop(t):
                block, last = [whole(ln) for ln in p.lines], p
            continue
        if p.y0 - last.y1 > 1.6 * mh or len(block) >= 8:
            break
        if _address_stop(t):
            block += _address_tail(p)
            break
        block += [whole(ln) for ln in p.lines]
        last = p
    return block


def find_address(order: Sequence[Line], ph: Sequence[Phrase], after: int) -> Field | None:
    """Address: the run of address phrases after the company, up to a phone / tax-ID / gap phrase.

    Some receipts print the owner's name under the address; with no address after the company,
    the block is looked for from the top of the page.
    """
    mh = median_height(order)
    block, where = _address_block(ph, after, mh), "after the company"
    if not block and after >= 0:
        block, where = _address_block(ph[:after], -1, mh), "above the company"
    if not block:
        return None
    raw = " ".join(sp.text.strip() for sp in block)
    value, repairs = repair_address(raw)
    reason = (f"{len(block)} box(es) {where}, from the first street-level line "
              f"('{block[0].line.text}') up to a phone, tax-ID or registration line or a gap")
    if repairs:
        reason += "; misread words repaired: " + ", ".join(f"{a} → {b}" for a, b in repairs)
    rule = "address/block-after-company"
    return make_field("address", value, block, rule=rule, reason=reason,
                      reliability=RELIABILITY[rule], lines=order, mode="mean")


def find_date(order: Sequence[Line]) -> Field | None:
    """Date: a date next to DATE/TARIKH wins, else the first date on the page; expiry dates lose."""
    best: tuple[float, Line, object, bool] | None = None
    for rank, line in enumerate(order):
        t = _upper(line)
        left = [o for o in order if o is not line and abs(o.cy - line.cy) < 0.5 * line.height and o.x1 <= line.x0 + 2]
        keyword = bool(lx.DATE_KEYWORD.search(t) or any(lx.DATE_KEYWORD.search(_upper(o)) for o in left))
        for dm in find_dates(t):
            timed = bool(_TIME.search(t[dm.end:dm.end + 12]))
            score = (2.0 if keyword else 0.0) + (0.5 if timed else 0.0) - (3.0 if lx.DATE_AVOID.search(t) else 0.0) \
                - 0.01 * rank
            if best is None or score > best[0]:
                best = (score, line, dm, keyword)
    if best is None:
        return None
    _, line, dm, keyword = best
    rule = "date/keyword" if keyword else "date/first-date"
    reason = (f"'{dm.pattern}' date next to a DATE keyword in '{line.text}'" if keyword
              else f"first '{dm.pattern}' date on the page, in '{line.text}' (no DATE keyword found)")
    return make_field("date", dm.iso, [Span(line, dm.start, dm.end)], rule=rule, reason=reason,
                      reliability=RELIABILITY[rule], lines=order)


def extract_receipt(lines: Sequence[Line]) -> dict[str, Field]:
    """company, date, address and total of a receipt (fields not found are left out)."""
    order = reading_order(lines)
    ph = phrases(order)
    company, end = find_company(order, ph)
    out = {"company": company, "address": find_address(order, ph, end) if company else None,
           "date": find_date(order), "total": find_total(order)}
    found = {k: v for k, v in out.items() if v is not None}
    for name, f in found.items():
        f.review_below = RECEIPT_REVIEW_BELOW[name]
    return found
