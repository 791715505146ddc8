"""The re-read oracle (benchmarks.cascade_bound): what it picks, and the CLI on rendered lines."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from benchmarks import cascade_bound as cb


def test_the_oracle_rereads_the_most_edits_saved_per_column_until_within_the_margin():
    fast = np.array([2, 1, 0, 3, 1])
    accurate = np.array([0, 0, 0, 0, 2])  # the last line the accurate model reads worse
    work = np.array([100.0, 100.0, 100.0, 600.0, 100.0])
    # 100 label characters, margin 0.5 points: within 0.5 edits of the accurate model's 2
    chosen = cb.oracle_rereads(fast, accurate, 100, work)
    # per 100 columns line 0 saves 2, line 1 saves 1, line 3 saves 0.5: edits 7 -> 5 -> 4 -> 1 (<= 2.5, stop)
    assert chosen.tolist() == [True, True, False, True, False]
    assert cb.shares(chosen, work) == {"lines": 0.6, "work": 0.8}


def test_nothing_is_reread_when_the_fast_reading_is_already_within_the_margin():
    chosen = cb.oracle_rereads(np.array([1, 0]), np.array([0, 0]), 400, np.array([160.0, 160.0]))
    assert not chosen.any()


def test_cli_measures_both_on_a_tiny_set(tmp_path, latin_font, capsys):
    from training.synth import render_text

    name = "en_iiit5k_test"
    (tmp_path / name / "images").mkdir(parents=True)
    rows = []
    for i, text in enumerate(["HELLO", "PAID"]):
        Image.fromarray(render_text(text, latin_font, size=32).image).save(tmp_path / name / f"images/{i}.png")
        rows.append(f"images/{i}.png\t{text}")
    (tmp_path / name / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cb.main(["--root", str(tmp_path), "--sets", name, "--threads", "1"])
    got = json.loads(capsys.readouterr().out)[name]
    assert got["lines"] == 2
    assert got["oracle"] == {"lines": 0.0, "work": 0.0}  # both read clean words right: nothing to re-read
