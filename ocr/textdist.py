"""The one edit distance of the project: scoring (benchmarks), training accuracy and error explanations."""

from __future__ import annotations

from typing import Sequence


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
