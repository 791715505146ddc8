"""training.study_cascade_signal: the candidate scores, and the rule that would let one replace the geometric mean."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from training.real_data import RealLine
from training.study_cascade_signal import compare, mean_low2, min_char


def reading(line_conf: float, chars: list[float]) -> SimpleNamespace:
    return SimpleNamespace(confidence=line_conf, chars=[SimpleNamespace(confidence=c) for c in chars])


def test_the_scores_see_the_one_doubtful_character_the_geometric_mean_hides():
    long_line = reading(0.957, [0.99] * 20 + [0.5])
    assert min_char(long_line) == 0.5
    assert abs(mean_low2(long_line) - (0.5 * 0.99) ** 0.5) < 1e-12
    assert min_char(reading(0.3, [])) == 0.3  # an empty reading: its line confidence


def test_a_candidate_replaces_the_geometric_mean_only_if_it_rereads_fewer_columns(tmp_path):
    lines = [RealLine("en_receipts_sroie_train_lines", tmp_path / f"{i}.jpg", "AB", "AB", f"r{i}") for i in range(4)]
    # line 0 is misread by the fast model; the accurate model reads every line right
    fast_edits, accurate_edits = np.array([1, 0, 0, 0]), np.zeros(4, int)
    # the geometric mean flags line 0 only below a threshold that also catches the wide lines 2 and 3
    fast = [reading(0.80, [0.99, 0.40]), reading(0.99, [0.99, 0.99]), reading(0.70, [0.70, 0.70]),
            reading(0.75, [0.75, 0.75])]
    columns = np.array([160.0, 160.0, 800.0, 800.0])
    out = compare(lines, fast, fast_edits, accurate_edits, columns)
    assert out["geomean"]["reread_share"] == 0.75 and out["min_char"]["reread_share"] == 0.25
    assert out["min_char"]["replaces_geomean"] and not out["geomean"]["replaces_geomean"]
