"""Confidence calibration (benchmarks.calibration): scoring, bands, ECE and the CLI on rendered lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import calibration as cal
from demo.render import conf_class
from ocr.results import HIGH_CONFIDENCE, LOW_CONFIDENCE


def test_each_reported_character_is_right_where_the_alignment_matches_it():
    chars = [("T", 0.99), ("0", 0.55), ("T", 0.98), ("A", 0.97), ("L", 0.96)]
    scored, missed = cal.scored_chars(chars, "TOTAL", "upper")
    assert scored == [(0.99, True), (0.55, False), (0.98, True), (0.97, True), (0.96, True)]
    assert missed == 0


def test_unscored_characters_are_left_out_and_missing_ones_counted():
    # a space is not scored under "upper"; the reading lacks the label's last "L"
    scored, missed = cal.scored_chars([("t", 0.9), (" ", 0.2), ("o", 0.8), ("t", 0.7), ("a", 0.6)], "TOTAL", "upper")
    assert [c for c, _ in scored] == [0.9, 0.8, 0.7, 0.6]
    assert all(right for _, right in scored)
    assert missed == 1
    # punctuation is not scored under "alnum"
    scored, _ = cal.scored_chars([("$", 0.1), ("5", 0.9)], "5", "alnum")
    assert scored == [(0.9, True)]


def test_bands_split_at_the_ui_bounds():
    pairs = [(0.2, False), (0.69, True), (LOW_CONFIDENCE, True), (0.89, False), (HIGH_CONFIDENCE, True), (1.0, True)]
    rows = cal.band_rows(pairs, [lo for _, lo in cal.UI_BANDS] + [1.0])
    assert [r["n"] for r in rows] == [2, 2, 2]
    assert [r["accuracy"] for r in rows] == [0.5, 0.5, 1.0]
    # the benchmark's bands are the UI's colours, class by class
    for (conf, _), row_index in zip(pairs, (0, 0, 1, 1, 2, 2)):
        assert cal.UI_BANDS[row_index][0].split()[-1] in conf_class(conf)


def test_ece_is_zero_when_confidence_is_accuracy_and_grows_with_overconfidence():
    calibrated = [(0.75, True)] * 3 + [(0.75, False)] + [(0.25, True)] + [(0.25, False)] * 3
    assert cal.ece(calibrated) == pytest.approx(0.0)
    overconfident = [(0.95, True)] * 5 + [(0.95, False)] * 5
    assert cal.ece(overconfident) == pytest.approx(0.45)
    assert cal.ece([]) is None


@pytest.fixture(scope="module")
def tiny_eval_root(tmp_path_factory, latin_font) -> Path:
    from training.synth import render_text

    root = tmp_path_factory.mktemp("eval")
    name = "en_iiit5k_test"
    (root / name / "images").mkdir(parents=True)
    rows = []
    for i, text in enumerate(["HELLO", "TOTAL", "2024", "PAID"]):
        Image.fromarray(render_text(text, latin_font, size=32).image).save(root / name / f"images/{i}.png")
        rows.append(f"images/{i}.png\t{text}")
    (root / name / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_cli_writes_its_own_section(tiny_eval_root, tmp_path):
    out = tmp_path / "BENCH.md"
    out.write_text("# Benchmarks\n\nkept\n", encoding="utf-8")
    json_path = tmp_path / "calib.json"
    cal.main(["--models", "fast", "--root", str(tiny_eval_root), "--sets", "en_iiit5k_test", "--threads", "1",
              "--out", str(out), "--json", str(json_path)])
    text = out.read_text(encoding="utf-8")
    assert "kept" in text and cal.MARK_START in text and cal.MARK_END in text
    assert "### `fast`" in text and "en_iiit5k_test" in text
    got = json.loads(json_path.read_text())["fast"]["all"]
    # clean rendered words, read right: all 18 label characters reported, each in one band, all right
    assert (got["lines"], got["chars"], got["missed"], got["label_chars"]) == (4, 18, 0, 18)
    assert sum(r["n"] for r in got["ui_bands"]) == 18
    assert all(r["accuracy"] == 1.0 for r in got["ui_bands"] if r["n"])
    assert got["line_bands"][-1]["accuracy"] == 1.0
