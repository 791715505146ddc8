"""A field's confidence from the characters it rests on and the rule that chose it.

Identifiers, dates and amounts are wrong if any one character is wrong, so they take the weakest
character; names and addresses survive a doubtful letter, so they take the mean. The rule's
reliability (how often that rule picked the right value on the training receipts) scales it.
"""

from __future__ import annotations

from typing import Sequence

from ocr.fields.model import Span


def chars_confidence(spans: Sequence[Span], mode: str = "min") -> float:
    """Confidence of the characters under ``spans``: their minimum ("min") or mean ("mean")."""
    confs = [c for sp in spans for _, c in sp.confidences()]
    if not confs:
        return 0.0
    return min(confs) if mode == "min" else sum(confs) / len(confs)


def field_confidence(spans: Sequence[Span], reliability: float, mode: str = "min") -> float:
    """Rule reliability × character confidence, in [0, 1]."""
    return max(0.0, min(1.0, reliability * chars_confidence(spans, mode)))


def agreeing(confidences: Sequence[float]) -> float:
    """Confidence when independent readings agree (大写 = 小写): 1 - Π(1 - c).

    Two readings that agree are only both wrong if each is wrong, so agreement raises it.
    """
    miss = 1.0
    for c in confidences:
        miss *= 1.0 - max(0.0, min(1.0, c))
    return 1.0 - miss
