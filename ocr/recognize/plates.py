"""Chinese licence plates given in their written form: ``京A·12345`` is read ``京A12345``.

Why: a plate carries a dot between the issuing office (province + letter) and the serial, and both
networks read it faithfully (``·``, ``.``, ``-``), but a plate *number* is written without it: in
registries, on tickets and in every plate dataset's labels (CCPD, LPRNet). Plates also never issue
the letters I and O in the serial, so an ``O`` or ``I`` read there is a ``0`` or ``1``.

Only a reading that is a plate as a whole is touched: a province abbreviation, one letter, at most
one separator, then a serial of five or six letters / digits, or four and one special-use suffix
(挂 trailer, 学 learner, 警 police, 港 / 澳 cross-border, 领 / 使 consular). Spaces inside it
are dropped. Anything else, Chinese names with ``·`` included, keeps its reading.

A reading with every mark of a plate (letter, separator, a serial with at least two digits) but an
unsure first character gets the province its frames find most probable (``province_guess``), where they
find one at all: the grammar says a province must stand there. The first character may be an ideograph
that is not a province (``黄D·SK411``: 冀 misread), a Latin letter (``AY·7J981``: 贵 read as A) or missing
(``L·05175``: the province dropped; its frames are then the ones before the letter). A mark read from the
plate's frame or a bolt at either end (``|``, ``/``, ``]``), or one or two stray marks (not ideographs: a
caption's words stay) before a plate whose separator was read (``7粤H·JX273``), are not part of it; a
``」`` read for the office letter is a J.
"""

from __future__ import annotations

import re
from typing import Callable

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
SUFFIXES = "挂学警港澳领使"
#: the dot between office and serial, as the networks read it (a colon too: the dot beside the frame's edge)
SEPARATORS = "·•・.。-—:："
#: marks a plate's frame or bolts are read as, at either end of the reading
EDGE_MARKS = "|/\\[](){}'\"`,;_"
#: letters never issued in a serial, and the digits they are misreadings of
SERIAL_MISREADS = str.maketrans({"O": "0", "I": "1"})
#: a plate's J, hook and bar, read as the CJK corner bracket (never part of a plate, so always safe to read back)
LOOKALIKES = str.maketrans({"」": "J"})

SERIAL = rf"([A-Z0-9]{{5,6}}|[A-Z0-9]{{4}}[{SUFFIXES}])"
PLATE = re.compile(rf"^([{PROVINCES}][A-Z])[{re.escape(SEPARATORS)}]?{SERIAL}$")
#: a plate with its separator read, after one or two stray marks (a bolt or the frame read as ``7``, ``J``; never
#: an ideograph: ``车牌沪A·12345`` is a caption with its words, not a plate with strays)
AFTER_STRAYS = re.compile(rf"^[^\u4e00-\u9fff]{{1,2}}([{PROVINCES}][A-Z])[{re.escape(SEPARATORS)}]{SERIAL}$")
#: a plate but for its first character: an ideograph, a Latin letter or nothing where the province stands (the
#: separator is required: it is what says "plate")
UNSURE_PROVINCE = re.compile(rf"^([\u4e00-\u9fffA-Za-z]?)[A-Z][{re.escape(SEPARATORS)}]{SERIAL}$")
#: digits an unsure plate's serial must hold (every issued serial has some; receipt words such as U.PRICE none)
MIN_SERIAL_DIGITS = 2


def _compact(reading: str) -> str:
    """The reading without spaces, the frame's marks at its ends, or look-alikes."""
    return "".join(reading.split()).strip(EDGE_MARKS).translate(LOOKALIKES)


def _unsure_first(compact: str) -> str | None:
    """What stands where the province should ("" if nothing) in a plate but for its province, else None."""
    unsure = UNSURE_PROVINCE.match(compact)
    if unsure and sum(c.isdigit() for c in unsure.group(2)) >= MIN_SERIAL_DIGITS:
        return unsure.group(1)
    return None


def looks_like_plate(reading: str) -> bool:
    """Whether ``reading`` is a plate, or one but for its province (what ``plate_text`` would ask about)."""
    compact = _compact(reading)
    return bool(PLATE.match(compact) or AFTER_STRAYS.match(compact)) or _unsure_first(compact) is not None


def plate_text(reading: str, province_guess: Callable[[bool], str] | None = None) -> str | None:
    """The written form of ``reading`` if it is a licence plate (module docstring), else None
    (also when it already is in that form). ``province_guess(replaces_first)``: the most probable
    province where the first character stands (True) or before it (False, the province dropped), ""
    if the frames show none; asked only for a reading that is a plate but for it."""
    compact = _compact(reading)
    match = PLATE.match(compact) or AFTER_STRAYS.match(compact)
    first = _unsure_first(compact) if match is None and province_guess is not None else None
    if first is not None:
        province = province_guess(bool(first))  # type: ignore[misc]
        match = PLATE.match(province + compact[len(first):]) if province else None
    if match is None:
        return None
    written = match.group(1) + match.group(2).translate(SERIAL_MISREADS)
    return None if written == reading else written
