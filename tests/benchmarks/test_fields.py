"""benchmarks.fields: scoring, the BENCHMARKS.md section, and the rules on the training receipts."""

from __future__ import annotations

import pytest

from benchmarks import fields as bench

NAMES = ("company", "total")


def test_score_counts_exact_precision_recall():
    preds = [{"company": "Acme  trading", "total": "RM 9.00"}, {"company": "WRONG"}, {}]
    truths = [{"company": "ACME TRADING", "total": "9"}, {"company": "OTHER", "total": "1.00"}, {"company": "X"}]
    s = bench.score(preds, truths, NAMES)
    assert (s["company"]["correct"], s["company"]["answered"], s["company"]["n"]) == (1, 2, 3)
    assert s["company"]["exact"] == pytest.approx(1 / 3) and s["company"]["precision"] == pytest.approx(0.5)
    assert s["company"]["f1"] == pytest.approx(0.4)
    assert (s["total"]["correct"], s["total"]["answered"], s["total"]["n"]) == (1, 1, 2)
    assert s["all"]["correct"] == 2 and s["all"]["n"] == 5 and s["all"]["answered"] == 3


def _data(right: bool) -> dict:
    """A run's figures: one SROIE page (every target field right or wrong) and one example invoice."""
    names = tuple(bench.TARGETS)
    truth = {n: "1.00" if right else "2.00" for n in names}
    sroie = {m: bench.score([dict.fromkeys(names, "1.00")], [truth], names) for m in ("rules", "baseline")}
    invoice = {m: bench.score([{"total": "1.00"}], [{"total": "1.00"}], ("total",)) for m in ("rules", "baseline")}
    return {"date": "2026-12-06 17:00 UTC", "threads": 1, "limit": None, "sets": [
        {"name": bench.SROIE_PAGES, "n": 1, "kind": "receipt", "fields": list(names), "results": sroie,
         "kind_detected": 1, "extract_ms": [20.0], "low_confidence": 0, "answered": 4},
        {"name": "examples/ zh_vat_invoice", "n": 1, "kind": "zh_vat_invoice", "fields": ["total"],
         "results": invoice, "kind_detected": 1, "extract_ms": [15.0], "low_confidence": 1, "answered": 1,
         "checks_passed": 1}]}


def test_section_has_tables_targets_and_keeps_the_rest_of_the_file(tmp_path):
    body = bench.render_section(_data(right=True))
    assert body.startswith("## Key fields") and "| total | 1 | 1/1 = 100.0% | 100.0% |" in body
    assert "| total | ≥ 85% | 100.0% | met |" in body and "all passed on 1/1" in body
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nkept above\n", encoding="utf-8")
    bench.write_section(out, body)
    bench.write_section(out, body)  # rewritten in place, not appended twice
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nkept above\n") and text.count(bench.MARK_START) == 1


def test_a_missed_target_is_reported():
    assert "| total | ≥ 85% | 0.0% | NOT MET |" in bench.render_section(_data(right=False))


def test_rules_on_the_training_receipts():
    """The development figures of ocr/fields/README.md (167 receipts, annotated lines) still hold."""
    folder = bench.EVAL_ROOT.parent / "train" / bench.TRAIN_SET
    if not (folder / "key_fields.jsonl").exists():
        pytest.skip(f"{folder} not here")
    receipts = bench.load_train_receipts(folder)
    assert len(receipts) == 167
    preds = bench.run_methods([r["lines"] for r in receipts])
    truths = [r["truth"] for r in receipts]
    rules, base = (bench.score(preds[m], truths, bench.FIELD_NAMES["receipt"]) for m in ("rules", "baseline"))
    floor = {"company": 0.95, "date": 0.99, "address": 0.75, "total": 0.98}
    for name, minimum in floor.items():
        assert rules[name]["exact"] >= minimum, (name, rules[name])
        assert rules[name]["exact"] >= base[name]["exact"], name


def test_a_cache_read_by_another_reader_is_read_again(tmp_path):
    """``--ocr-lines`` caches its readings; after the weights, decoder or language model change the
    old readings must not be scored as the new reader's."""
    import json

    import cv2
    import numpy as np

    image = np.full((40, 160, 3), 255, np.uint8)
    cv2.putText(image, "TOTAL", (6, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), image)
    (tmp_path / "labels.tsv").write_text("images/a.png\tTOTAL\n", encoding="utf-8")
    cache = tmp_path / "reads.json"
    cache.write_text(json.dumps({"key": "an older reader", "reads": {"images/a.png": {
        "text": "STALE", "confidence": 1.0, "chars": []}}}), encoding="utf-8")
    receipts = [{"lines": [{"image": "images/a.png"}]}]
    line = bench.read_train_lines(receipts, tmp_path, cache)[0]["lines"][0]
    assert line["text"] != "STALE" and line["chars"]
    assert json.loads(cache.read_text(encoding="utf-8"))["key"] == bench.reader_key()
    again = bench.read_train_lines(receipts, tmp_path, cache)[0]["lines"][0]  # now from the cache
    assert again["text"] == line["text"]
