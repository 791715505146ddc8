"""The one edit distance of the project, and the scoring protocols of ``../shared/eval/INDEX.md``: scoring
(benchmarks), choices on the validation slice (training), training accuracy and error explanations."""

from __future__ import annotations

import unicodedata
from typing import Any, Sequence


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


PROTOCOLS = ("zh", "upper", "alnum")
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")


def normalize(text: str, protocol: str) -> str:
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


def score_lines(preds: Sequence[str], labels: Sequence[str], protocol: str) -> dict[str, Any]:
    """Char and line accuracy of ``preds`` against ``labels`` (same order, same length).

    Returns ``char_accuracy`` (None if the labels have no characters),
    ``line_accuracy`` (None if there are no items), ``n``, ``chars`` (sum of
    normalised label lengths) and ``edits`` (sum of edit distances).
    """
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    edits = chars = exact = 0
    for pred, label in zip(preds, labels):
        p, t = normalize(pred, protocol), normalize(label, protocol)
        edits += edit_distance(p, t)
        chars += len(t)
        exact += p == t
    n = len(labels)
    return {
        "char_accuracy": 1.0 - edits / chars if chars else None,
        "line_accuracy": exact / n if n else None,
        "n": n,
        "chars": chars,
        "edits": edits,
    }
