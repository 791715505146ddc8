"""The cascade-engine study's arithmetic (``training.cascade_engines``): which lines a pairing re-reads, what it
scores and what it costs, on a hand-made slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.cascade_engines import SYNTHETIC, Reading, pairing
from training.real_data import RealLine


def line(set_name: str, label: str) -> RealLine:
    return RealLine(set_name, Path("x.png"), label, label, "page")


def test_a_pairing_rereads_the_unsure_lines_and_counts_their_cost():
    lines = [line("en_receipts_sroie_train_lines", "ABCDEFGHIJ")] * 4  # 10 chars each
    # the fast model misreads the two lines it is unsure of; the accurate one reads all but one char
    fast = Reading(np.array([0, 0, 3, 3, 5]), np.array([0.99, 0.98, 0.5, 0.6, 0.4]),
                   {"en_receipts_sroie_train_lines": 0.4, SYNTHETIC: 9.0})
    accurate = Reading(np.array([0, 0, 1, 0, 1]), np.ones(5), {"en_receipts_sroie_train_lines": 2.0, SYNTHETIC: 9.0})
    got = pairing(lines, fast, accurate, accurate, synthetic_chars=10)
    assert 0.6 < got["threshold"] <= 0.98  # the lowest that reaches the accurate model's 39 / 40
    assert got["reread_share"] == 0.5
    assert got["char_accuracy"] == {"en_receipts_sroie_train_lines": 97.5, SYNTHETIC: 90.0}  # synthetic re-read too
    # the fast pass (0.4 s) + half of the accurate pass (1.0 s) over 4 lines; the synthetic pass is not a line's cost
    assert got["ms_per_validation_line"] == 350.0
