"""training.samples: the demo's sample set is deterministic, well-formed and matches the committed examples/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training import samples
from benchmarks.evaluate import score_pages
from ocr.manifest import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("samples")
    return out, samples.generate(out)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    names = ["invoice_zh_tilt", "receipt_en_shadow", "invoice_zh_jpeg"]
    samples.generate(tmp_path / "a", names)
    samples.generate(tmp_path / "b", names)
    for name in (tmp_path / "a").iterdir():
        assert name.read_bytes() == (tmp_path / "b" / name.name).read_bytes(), name.name


def test_index_lists_every_sample_and_each_file_exists(generated: tuple[Path, list[dict]]) -> None:
    out, records = generated
    index = read_jsonl(out / "index.jsonl")
    assert index == records
    assert [Path(r["image"]).stem for r in index] == list(samples.SAMPLES)
    for record in index:
        assert (out / record["image"]).is_file()
        assert json.loads((out / f"{Path(record['image']).stem}.json").read_text(encoding="utf-8")) == record
    assert (out / "invoice_zh_jpeg.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_lines_have_text_and_boxes_inside_the_image(generated: tuple[Path, list[dict]]) -> None:
    out, records = generated
    for record in records:
        assert record["kind"] in ("page", "line") and record["description"]
        with Image.open(out / record["image"]) as im:
            w, h = im.size
        assert record["lines"], record["image"]
        for line in record["lines"]:
            assert line["text"].strip(), record["image"]
            box = line["box"]
            assert len(box) == 8
            assert all(0 <= x <= w for x in box[0::2]) and all(0 <= y <= h for y in box[1::2]), (record["image"], line)
            assert max(box[0::2]) - min(box[0::2]) > 4 and max(box[1::2]) - min(box[1::2]) > 4


def test_boxes_hold_the_drawn_ink(generated: tuple[Path, list[dict]]) -> None:
    out, records = generated
    for record in records:
        if record["image"] not in ("invoice_zh.png", "receipt_en.png", "shipping_label.png", "invoice_zh_tilt.png"):
            continue
        gray = np.asarray(Image.open(out / record["image"]).convert("L"), np.float32)
        for line in record["lines"]:
            pts = np.asarray(line["box"]).reshape(4, 2)
            x1, y1 = np.floor(pts.min(0)).astype(int)
            x2, y2 = np.ceil(pts.max(0)).astype(int)
            crop = gray[y1:y2, x1:x2]
            assert crop.min() < 150, (record["image"], line["text"])  # dark or red ink inside the box
            # the rows just outside a tight box are (almost) blank paper; table rules may cross them
            if "tilt" not in record["image"]:
                for edge in (gray[y1 - 2, x1:x2], gray[y2 + 1, x1:x2]):
                    assert (edge < 150).mean() < 0.5, (record["image"], line["text"])


def test_sample_contents(generated: tuple[Path, list[dict]]) -> None:
    out, records = generated
    by_name = {Path(r["image"]).stem: r for r in records}
    invoice = [line["text"] for line in by_name["invoice_zh"]["lines"]]
    for pattern in (r"^增值税普通发票$", r"^发票代码：\d{12}$", r"^发票号码：\d{8}$", r"^开票日期：2025年03月18日$",
                    r"^纳税人识别号：[0-9A-Z]{18}$", r"^货物或应税劳务名称$", r"^（小写）¥1,234\.56$", r"^收款人："):
        assert any(re.search(pattern, t) for t in invoice), pattern
    receipt = {line["text"] for line in by_name["receipt_en"]["lines"]}
    assert {"SUBTOTAL", "TAX 6%", "TOTAL", "CASH", "CHANGE", "THANK YOU!"} <= receipt
    label = " ".join(line["text"] for line in by_name["shipping_label"]["lines"])
    assert "收件人 / To:" in label and "TRK" in label and "1.25 kg" in label
    line = by_name["line_zh"]
    assert line["kind"] == "line" and len(line["lines"]) == 1
    with Image.open(out / line["image"]) as im:
        assert 48 <= im.height <= 64
    # geometric variants keep the labels, only boxes move; pixel-only variants keep the boxes too
    for name in ("invoice_zh_blur", "invoice_zh_jpeg"):
        assert by_name[name]["lines"] == by_name["invoice_zh"]["lines"]
    assert [x["text"] for x in by_name["invoice_zh_tilt"]["lines"]] == invoice
    with Image.open(out / "invoice_zh.png") as a, Image.open(out / "invoice_zh_tilt.png") as b:
        assert b.width > a.width and b.height > a.height


def test_every_label_character_is_in_the_charset(generated: tuple[Path, list[dict]], charset) -> None:
    _, records = generated
    missing = {c for r in records for line in r["lines"] for c in charset.missing(line["text"].replace(" ", ""))}
    assert not missing


def test_labels_score_perfectly_against_themselves(generated: tuple[Path, list[dict]]) -> None:
    out, _ = generated
    pages = read_jsonl(out / "index.jsonl")
    result = score_pages(pages, pages, "zh")
    assert result["char_accuracy"] == 1.0 and result["n_pages"] == len(samples.SAMPLES)


def test_committed_examples_match_the_generator(generated: tuple[Path, list[dict]]) -> None:
    if not samples.preferred_fonts_installed():
        pytest.skip("the preferred fonts are not installed, so boxes differ from the committed examples")
    out, records = generated
    assert (EXAMPLES / "index.jsonl").is_file(), "run: python -m training.samples --out examples/"
    assert read_jsonl(EXAMPLES / "index.jsonl") == records, "examples/ is stale: python -m training.samples --out examples/"
    for record in records:
        stem = Path(record["image"]).stem
        assert json.loads((EXAMPLES / f"{stem}.json").read_text(encoding="utf-8")) == record
        assert (EXAMPLES / record["image"]).is_file()
