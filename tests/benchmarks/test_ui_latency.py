"""The demo-latency report (the measuring itself drives a served app: ``python -m benchmarks.ui_latency``)."""

from __future__ import annotations

from benchmarks.ui_latency import START, END, pipeline_seconds, to_markdown


def test_report_gives_overheads_and_the_burst():
    row = {"image": "a.png", "lines": 3, "ocr_s": 1.4, "pipeline_s": 1.0, "cached_s": 0.2, "change_s": 1.1,
           "change_pipeline_s": 0.9, "explain_s": 2.2, "explanation_s": 2.0}
    text = to_markdown([row, {**row, "explanation_s": None}], {"clients": 16, "served": 16, "last_s": 9.5,
                                                             "image": "a.png"}, "python -m benchmarks.ui_latency", 2,
                       (1.25, 0.5))
    assert "| a.png | 3 | 1.40 | 1.00 | +0.40 | 0.20 |" in text and "+0.20 |" in text and "| — | — |" in text
    assert "16 served" in text and "Load average 1.25 at the start, 0.50 at the end" in text and START.startswith("<!--") and END.startswith("<!--")


def test_pipeline_time_comes_from_the_answers_json():
    assert pipeline_seconds(["", None, None, None, {"timings_ms": {"total": 250}}]) == 0.25
    assert pipeline_seconds(["", None, None, None, None]) == 0.0
