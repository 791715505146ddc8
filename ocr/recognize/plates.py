"""Chinese licence plates given in their written form: ``京A·12345`` is read ``京A12345``.

Why: a plate carries a dot between the issuing office (province + letter) and the serial, and both
networks read it faithfully (``·``, ``.``, ``-``), but a plate *number* is written without it: in
registries, on tickets and in every plate dataset's labels (CCPD, LPRNet). Plates also never issue
the letters I and O in the serial, so an ``O`` or ``I`` read there is a ``0`` or ``1``.

Only a reading that is a plate as a whole is touched: a province abbreviation, one letter, at most
one separator, then a serial of five or six letters / digits, or four and one special-use suffix
(挂 trailer, 学 learner, 警 police, 港 / 澳 cross-border, 领 / 使 consular). Spaces inside it
are dropped. Anything else, Chinese names with ``·`` included, keeps its reading.

A reading with every mark of a plate (letter, separator, serial) but an ideograph that is not a
province first (``黄D·SK411``: 冀 misread) gets the province its frames find most probable
(``province_guess``): the grammar says a province must stand there.
"""

from __future__ import annotations

import re
from typing import Callable

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
SUFFIXES = "挂学警港澳领使"
SEPARATORS = "·•・.。-—"
#: letters never issued in a serial, and the digits they are misreadings of
SERIAL_MISREADS = str.maketrans({"O": "0", "I": "1"})

SERIAL = rf"([A-Z0-9]{{5,6}}|[A-Z0-9]{{4}}[{SUFFIXES}])"
PLATE = re.compile(rf"^([{PROVINCES}][A-Z])[{re.escape(SEPARATORS)}]?{SERIAL}$")
#: a plate but for its first character, an ideograph (the separator is required: it is what says "plate")
UNSURE_PROVINCE = re.compile(rf"^[\u4e00-\u9fff][A-Z][{re.escape(SEPARATORS)}]{SERIAL}$")


def plate_text(reading: str, province_guess: Callable[[], str] | None = None) -> str | None:
    """The written form of ``reading`` if it is a licence plate (module docstring), else None
    (also when it already is in that form). ``province_guess``: the most probable province for the
    first character, asked only for a reading that is a plate but for it."""
    compact = "".join(reading.split())
    match = PLATE.match(compact)
    if match is None and province_guess is not None and UNSURE_PROVINCE.match(compact):
        match = PLATE.match(province_guess() + compact[1:])
    if match is None:
        return None
    written = match.group(1) + match.group(2).translate(SERIAL_MISREADS)
    return None if written == reading else written
