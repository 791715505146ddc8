"""benchmarks.scale: rescaling keeps labels on the ink; a one-page, one-scale run end to end."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.scale import MARK_END, MARK_START, main, rescale_page


def test_rescale_page_moves_boxes_with_the_image():
    rgb = np.zeros((100, 200, 3), np.uint8)
    page = {"image": "x.png", "lines": [{"box": [10, 20, 110, 20, 110, 40, 10, 40], "text": "t"}]}
    img, label = rescale_page(rgb, page, 0.5)
    assert img.shape == (50, 100, 3)
    assert label["lines"][0]["box"] == [5, 10, 55, 10, 55, 20, 5, 20] and label["lines"][0]["text"] == "t"
    assert page["lines"][0]["box"][0] == 10  # the input is not changed


def test_cli_one_page_one_scale(tmp_path, capsys):
    from benchmarks.scale import EXAMPLES_INDEX
    from ocr.manifest import read_jsonl

    index = tmp_path / "index.jsonl"
    page = next(p for p in read_jsonl(EXAMPLES_INDEX) if p["image"] == "line_zh.png")
    page = {**page, "image": str(EXAMPLES_INDEX.parent / page["image"])}
    index.write_text(json.dumps(page, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "B.md"
    out.write_bytes(b"keep\r\n")
    assert main(["--detectors", "small", "--scales", "1", "--index", str(index), "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {(r["policy"], r["scale"]) for r in data["rows"]} == {("max960", 1.0), ("min736", 1.0)}
    assert all(r["char_accuracy"] > 0.8 for r in data["rows"])
    text = out.read_bytes().decode()
    assert text.startswith("keep\r\n\n" + MARK_START) and text.endswith(MARK_END + "\n") and "| small |" in text
