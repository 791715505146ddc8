"""Put back characters the recogniser commonly confuses, where the field's vocabulary makes it certain.

Only unambiguous repairs: a five-character postcode holding an O is a postcode with a 0; a word
one edit away from exactly one address word, and not itself a known word, is that address word.
Each repair is reported so the explanation can show it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from ocr.fields.lexicon import ADDRESS_LEXICON
from ocr.textdist import edit_distance

#: a postcode with letters for digits: five of 0-9 / O / I / L, at least two real digits
_POSTCODE_LIKE = re.compile(r"(?=\S*\d\S*\d)[0-9OIL]{5}")
_DIGIT_AS_LETTER = str.maketrans("0158", "OISB")
_SEPARATORS = re.compile(r"([\s,.;:()/&'-]+)")


def fold(text: str) -> str:
    """NFKC per character, keeping the length (full-width ：，（ → :,( ) so indices stay valid."""
    out = []
    for ch in text:
        n = unicodedata.normalize("NFKC", ch)
        out.append(n if len(n) == 1 else ch)
    return "".join(out)


#: look-alikes of capital letters the recogniser's Chinese + Latin vocabulary offers (set union, ...)
_LATIN_LOOKALIKES = {"∪": "U", "Ⅰ": "I", "Ⅴ": "V", "Ⅹ": "X"}


def fold_latin(text: str) -> str:
    """:func:`fold`, then Latin letters stripped of diacritics (``Simpàng`` → ``Simpang``) and letter
    look-alikes made letters, keeping the length: receipts here are printed in plain Latin, so an
    accent is the recogniser's doubt, not the print (its vocabulary holds both scripts' letters)."""
    out = []
    for ch in fold(text):
        ch = _LATIN_LOOKALIKES.get(ch, ch)
        if ord(ch) > 127 and ch.isalpha() and "LATIN" in unicodedata.name(ch, ""):
            base = unicodedata.normalize("NFKD", ch)[0]
            ch = base if base.isascii() else ch
        out.append(ch)
    return "".join(out)


@lru_cache(maxsize=4096)
def nearest_word(token: str) -> str | None:
    """The lexicon word ``token`` is, or the only one nearest within reach (1 edit, 2 for 8+ letters)."""
    if token in ADDRESS_LEXICON:
        return token
    if len(token) < 5:
        return None
    reach = 2 if len(token) >= 8 else 1
    dist = {w: edit_distance(token, w) for w in ADDRESS_LEXICON if abs(len(w) - len(token)) <= reach}
    best = min(dist.values(), default=reach + 1)
    hits = [w for w, d in dist.items() if d == best]
    return hits[0] if best <= reach and len(hits) == 1 else None


def _repair_token(token: str) -> str:
    """One token of an address, repaired when that is unambiguous (case kept when untouched)."""
    up = token.upper()
    if _POSTCODE_LIKE.fullmatch(up):
        return up.translate(str.maketrans("OIL", "011"))
    if len(up) < 4 or sum(ch.isalpha() for ch in up) < 0.6 * len(up):
        return token  # a number or a code ("SS21/39", "1A"), not a word
    fixed = nearest_word(up.translate(_DIGIT_AS_LETTER))
    return token if fixed is None or fixed == up else fixed


def repair_address(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The address with postcodes and misread address words put back, and the repairs made."""
    repairs: list[tuple[str, str]] = []
    parts = _SEPARATORS.split(fold_latin(text))
    for i in range(0, len(parts), 2):  # even items are tokens, odd ones the separators between them
        fixed = _repair_token(parts[i])
        if fixed != parts[i]:
            repairs.append((parts[i], fixed))
            parts[i] = fixed
    return "".join(parts), repairs
