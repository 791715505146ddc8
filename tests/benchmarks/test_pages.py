"""benchmarks.pages: the CLI end to end on a tiny page set (no ../shared access) and the markdown writer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.pages import MARK_END, MARK_START, render_section, write_section
from ocr.manifest import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TINY = ("line_zh.png", "shipping_label.png")


@pytest.fixture(scope="module")
def tiny_eval_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    set_dir = root / "tiny_pages"
    set_dir.mkdir()
    pages = [p for p in read_jsonl(EXAMPLES / "index.jsonl") if p["image"] in TINY]
    assert len(pages) == len(TINY)
    with open(set_dir / "page.jsonl", "w", encoding="utf-8") as f:
        for page in pages:
            shutil.copy(EXAMPLES / page["image"], set_dir / page["image"])
            f.write(json.dumps(page, ensure_ascii=False) + "\n")
    return root


@pytest.fixture(scope="module")
def cli_run(tiny_eval_root, tmp_path_factory):
    out_md = tmp_path_factory.mktemp("md") / "B.md"
    before = "# Bench\n\r\nintro kept\n<!-- bench:lines:start -->\nother person's table\n<!-- bench:lines:end -->\ntail"
    out_md.write_bytes(before.encode())
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.pages", "--systems", "crnn", "--sets", "tiny_pages:zh",
         "--eval-root", str(tiny_eval_root), "--threads", "2", "--json", "--out", str(out_md), "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), out_md, before


def test_cli_reports_accuracy_and_timing(cli_run):
    data, _, _ = cli_run
    assert data["missing"] == {}
    crnn = data["systems"]["crnn"]
    entry = crnn["sets"]["tiny_pages"]
    s = entry["scores"]
    assert entry["n_pages"] == 2 and s["n_pages"] == 2
    for key in ("char_accuracy", "line_accuracy", "precision", "recall", "f1"):
        assert 0.0 <= s[key] <= 1.0, (key, s)
    assert s["char_accuracy"] > 0.5  # two clean examples the pipeline reads well
    for key in ("median_s", "p90_s", "mean_s", "total_s"):
        assert entry[key] > 0, key
    assert entry["p90_s"] >= entry["median_s"]
    assert sorted(p["image"] for p in entry["pages"]) == sorted(TINY)
    assert all(p["seconds"] > 0 for p in entry["pages"])
    assert set(entry["stage_median_s"]) >= {"preprocess", "detect", "recognize", "total"}
    assert crnn["load_s"] > 0 and crnn["rss_peak_mb"] > 0 and crnn["threads"] == 2
    assert data["sets"]["tiny_pages"]["protocol"] == "zh"
    assert data["machine"]["nproc"] >= 1 and "onnxruntime" in data["machine"]


def test_cli_writes_only_between_its_markers(cli_run):
    _, out_md, before = cli_run
    text = out_md.read_bytes().decode()
    start, end = text.index(MARK_START), text.index(MARK_END) + len(MARK_END)
    assert text[:start] == before + "\n\n"  # appended at the end: a newline, a blank line, the block
    assert text[end:] == "\n"
    assert "tiny_pages (zh, 2)" in text[start:end] and "| crnn |" in text[start:end]


def test_write_section_preserves_everything_outside(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    head = "# Benchmarks\r\n\r\n<!-- bench:lines:start -->\nlines ✓\n<!-- bench:lines:end -->\n\nmiddle\n"
    tail = "\n\ntrailing text, no final newline"
    path.write_bytes((head + f"{MARK_START}\nold\n{MARK_END}" + tail).encode())
    write_section(path, "new body\n")
    text = path.read_bytes().decode()
    assert text == head + f"{MARK_START}\nnew body\n{MARK_END}" + tail
    write_section(path, "newer")  # idempotent on the outside
    assert path.read_bytes().decode() == head + f"{MARK_START}\nnewer\n{MARK_END}" + tail

    fresh = tmp_path / "new.md"
    write_section(fresh, "x")
    assert fresh.read_text() == f"# Benchmarks\n\n{MARK_START}\nx\n{MARK_END}\n"

    broken = tmp_path / "broken.md"
    broken.write_text(f"only {MARK_START} here\n")
    with pytest.raises(ValueError):
        write_section(broken, "x")
    assert broken.read_text() == f"only {MARK_START} here\n"


def test_render_section_handles_missing_systems_and_sets():
    data = {
        "date": "2026-01-01T00:00:00+00:00", "wall_s": 1.0, "threads": 2, "limit": None,
        "machine": {"nproc": 2, "cpu": "cpu", "python": "3.11", "torch": "2", "onnxruntime": "1",
                    "rapidocr": None, "loadavg_start": [1.0, 1.0, 1.0], "loadavg_end": [1.0, 1.0, 1.0]},
        "sets": {"gone": {"protocol": "zh", "missing": "x not found"}},
        "systems": {}, "missing": {"rapidocr": "rapidocr is not installed"},
    }
    md = render_section(data)
    assert "rapidocr**: missing — rapidocr is not installed" in md
    assert "missing: x not found" in md
    assert "shared and noisy" in md


def test_merge_rounds_keeps_each_pages_fastest_round():
    from benchmarks.pages import merge_rounds

    def run(load, secs, edits):
        pages = [{"image": f"p{i}.png", "seconds": s} for i, s in enumerate(secs)]
        scores = {"edits": edits, "matched": 3, "n_preds": 4}
        return {"load_s": load, "first_call_s": load, "rss_peak_mb": 100 + load, "worker_wall_s": 9,
                "other_cpu_cores": 0.5, "sets": {"s": {"scores": scores, "median_s": 9, "pages": pages}}}

    merged = merge_rounds([run(2.0, [1.0, 4.0, 3.0], 5), run(1.0, [2.0, 2.0, None], 5)])
    entry = merged["sets"]["s"]
    assert [p["seconds"] for p in entry["pages"]] == [1.0, 2.0, 3.0]
    assert entry["median_s"] == 2.0 and entry["total_s"] == 6.0 and entry["median_s_rounds"] == [9, 9]
    assert entry["deterministic"] is True
    assert merged["load_s"] == 1.0 and merged["rss_peak_mb"] == 102.0 and merged["rounds"] == 2
    assert merge_rounds([run(1, [1], 5), run(1, [1], 6)])["sets"]["s"]["deterministic"] is False


def test_cli_detector_and_limit(tiny_eval_root):
    """--detector picks crnn's detector (named in the report); --limit N keeps the first N pages, writes nothing."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.pages", "--systems", "crnn", "--sets", "tiny_pages:zh", "--rounds", "1",
         "--eval-root", str(tiny_eval_root), "--threads", "2", "--json", "--detector", "small", "--limit", "1", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert "markdown" not in data and data["detector"] == "small" and data["limit"] == 1
    info = data["systems"]["crnn"]["info"]
    assert info["detector_variant"] == "small"
    assert data["systems"]["crnn"]["sets"]["tiny_pages"]["n_pages"] == 1
    md = render_section(data)
    assert "detector='small'" in md and "PP-OCRv6 small" in md


def test_the_snapshot_holds_every_checksummed_weight_file():
    """The workers read a copy of ``weights/``: a file the runtime checks against SHA256SUMS but the copy lacks
    fails the run (the word list did, once: every ``crnn`` row came out "missing")."""
    from benchmarks.pages import snapshot_weights
    from ocr.settings import WEIGHTS_DIR

    listed = {line.split()[1] for line in (WEIGHTS_DIR / "SHA256SUMS").read_text().splitlines() if line.strip()}
    assert listed <= set(snapshot_weights())
    essentials = {"crnn.pt", "crnn.onnx", "det_small.int8.onnx", "lexicon_en.txt.gz", "SHA256SUMS"}
    assert essentials <= set(snapshot_weights(WEIGHTS_DIR))
