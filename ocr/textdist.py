"""The one edit distance and the one text normalisation of the project.

Used by scoring (benchmarks), training accuracy, error explanations and the field extractor
(``ocr.fields`` compares names and addresses under the ``upper`` protocol), so the runtime and the
benchmark can never disagree about when two texts are the same.
"""

from __future__ import annotations

import unicodedata
from typing import Sequence

#: the scoring protocols of ``../shared/eval/INDEX.md``
PROTOCOLS = ("zh", "upper", "alnum")
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")


def normalize(text: str | None, protocol: str) -> str:
    """``text`` normalised for ``protocol`` (``zh``, ``upper`` or ``alnum``).

    * ``zh``: Unicode NFKC (full-width ASCII -> half-width), all whitespace
      removed, case kept;
    * ``upper``: as ``zh``, then upper-cased;
    * ``alnum``: NFKC, lower-cased, only ``[0-9a-z]`` kept. (NFKC is not in
      the scene-text protocol itself; it only lets full-width letters and
      ligatures such as ``ﬁ`` count as their ASCII selves.)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    text = unicodedata.normalize("NFKC", text or "")
    if protocol == "alnum":
        return "".join(c for c in text.lower() if c in _ALNUM)
    text = "".join(c for c in text if not c.isspace())
    return text.upper() if protocol == "upper" else text


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Edit distance (insert, delete, substitute all cost 1) of two strings or sequences."""
    if a == b:
        return 0
    # A common prefix or suffix never changes the distance: drop it.
    start, shortest = 0, min(len(a), len(b))
    while start < shortest and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a  # the DP row runs over the shorter one
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b):
            cost = prev[j] + (ca != cb)  # substitute (or keep)
            if prev[j + 1] + 1 < cost:  # delete from a
                cost = prev[j + 1] + 1
            if cur[j] + 1 < cost:  # insert into a
                cost = cur[j] + 1
            cur.append(cost)
        prev = cur
    return prev[-1]
