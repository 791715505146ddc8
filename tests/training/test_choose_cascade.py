"""The cascade's choice: the rule picks the lowest threshold that keeps every set close to the accurate
model, and the shipped constants are what that rule chose on the validation slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ocr.recognize import cascade_choice
from ocr.recognize.models import SPECS
from training.choose_cascade import MARGIN, PADS, choose_threshold, page_halves
from training.real_data import RealLine


def _line(set_name: str, label: str) -> RealLine:
    return RealLine(set_name, Path("x.png"), label, label, "src")


def test_the_lowest_threshold_that_keeps_every_set_within_the_margin():
    lines = [_line("en_scene_ic15_train", "abcd")] * 3 + [_line("en_receipts_sroie_train_lines", "ABCD")] * 2
    conf = np.array([0.2, 0.6, 0.95, 0.3, 0.99])
    fast = np.array([1, 1, 0, 0, 0])  # the two unsure ic15 words are misread by the fast model
    accurate = np.array([0, 0, 0, 0, 1])  # the accurate model misreads a confident receipt line
    threshold, acc = choose_threshold(lines, conf, fast, accurate)
    assert threshold == 0.605  # both misread words re-read; the 0.99 receipt line kept from the fast model
    assert acc["en_scene"] == 1.0 and acc["en_receipts_sroie_train_lines"] == 1.0


def test_the_second_reading_is_held_to_the_float_model():
    """An int8 second reading that misreads what float reads right cannot reach the float target by re-reading
    more: the rule then re-reads everything (1.0) and predicts what that gives, not the float figure."""
    lines = [_line("en_receipts_sroie_train_lines", "ABCD")] * 4
    conf = np.array([0.2, 0.5, 0.97, 0.99])
    fast = np.array([1, 1, 0, 0])
    floating = np.zeros(4, int)
    assert choose_threshold(lines, conf, fast, floating)[0] == 0.505
    int8 = np.array([0, 1, 0, 0])  # the second unsure line stays misread
    threshold, acc = choose_threshold(lines, conf, fast, int8, target=floating)
    assert threshold == 1.0 and acc["en_receipts_sroie_train_lines"] == 1 - 1 / 16
    close = np.array([0, 0, 0, 0])
    assert choose_threshold(lines, conf, fast, close, target=floating)[0] == 0.505


def test_the_scene_word_sets_are_judged_as_one_domain():
    """26 SVT words cannot carry a 0.5-point rule of their own: a misread SVT word may stay when the
    scene words as a whole are within the margin."""
    lines = [_line("en_scene_svt_train", "abcd")] + [_line("en_scene_ic15_train", "abcd")] * 199
    conf = np.array([0.9] + [0.99] * 199)
    fast = np.array([1] + [0] * 199)
    accurate = np.zeros(200, int)
    threshold, by_domain = choose_threshold(lines, conf, fast, accurate)
    assert threshold == 0.0 and set(by_domain) == {"en_scene"}
    assert by_domain["en_scene"] == 1 - 1 / 800


def test_the_bound_must_hold_on_each_half_of_the_slice():
    """A misread kept on one half's few pages may pass on the whole slice and not on that half: the rule
    re-reads until both halves are within the margin too."""
    lines = ([RealLine("en_receipts_sroie_train_lines", Path("x.png"), "A" * 100, "A" * 100, "page-a")] * 3
             + [RealLine("en_receipts_sroie_train_lines", Path("x.png"), "A" * 100, "A" * 100, "page-b")] * 3)
    halves = np.array([0, 0, 0, 1, 1, 1])
    conf = np.array([0.3, 0.99, 0.99, 0.8, 0.99, 0.99])
    fast = np.array([2, 0, 0, 2, 0, 0])  # one misread line on each half: 2 of 300 characters there
    accurate = np.zeros(6, int)
    assert choose_threshold(lines, conf, fast, accurate)[0] == 0.305  # 2 of 600 left: within 0.5 points
    assert choose_threshold(lines, conf, fast, accurate, halves=halves)[0] == 0.805  # 2 of 300 are not
    assert set(page_halves(lines)) <= {0, 1} and page_halves(lines)[0] == page_halves(lines)[2]


def test_the_shipped_choice_obeys_its_rule():
    figures = cascade_choice.FIGURES
    assert SPECS["accurate"].pad_min_width == cascade_choice.ACCURATE_PAD_WIDTH in PADS
    accurate = figures[f"accurate_pad{cascade_choice.ACCURATE_PAD_WIDTH}"]["char_accuracy"]
    assert set(accurate) == set(figures["auto"]["char_accuracy"]) and len(accurate) == 5
    for name, value in figures["auto"]["by_domain_predicted"].items():
        assert value >= figures["auto"]["by_domain_accurate"][name] - MARGIN, name
    assert 0.0 < cascade_choice.THRESHOLD <= 1.0 and 0.0 < figures["auto"]["reread_share"] < 1.0
