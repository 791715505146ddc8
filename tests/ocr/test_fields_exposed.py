"""The fields where users meet them: the service, ``python -m ocr page --fields`` and the batch hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr.errors import OCRError
from ocr.fields import FieldSet, InvalidAnswerError, fields_for_answer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TRUTH = json.loads((EXAMPLES / "fields.json").read_text(encoding="utf-8"))


def test_service_fields_of_a_page_read(service):
    page = service.ocr(EXAMPLES / "invoice_zh.png")
    fs = service.fields(page)
    assert isinstance(fs, FieldSet) and fs.kind == "zh_vat_invoice"
    assert fs.value("invoice_number") == TRUTH["invoice_zh.png"]["fields"]["invoice_number"]
    for name, f in fs.to_dict()["fields"].items():  # every field points at lines of this page …
        assert f["lines"] and all(0 <= i < len(page.lines) for i in f["lines"])
        # … and at its own characters, inside those lines' boxes (a highlight of the value, not the line)
        assert len(f["char_boxes"]) == f["explanation"]["n_chars"], name
        xs = [x for i in f["lines"] for x in page.lines[i].box[0::2]]
        assert all(min(xs) - 1 <= x <= max(xs) + 1 for box in f["char_boxes"] for x in box[0::2]), name
    assert service.fields(page, kind="receipt").kind == "receipt"


def test_cli_text_shows_fields_only_when_asked(capsys):
    from ocr.__main__ import main

    assert main(["page", str(EXAMPLES / "receipt_en.png")]) == 0
    plain = capsys.readouterr().out
    assert "fields:" not in plain
    assert main(["page", "--fields", str(EXAMPLES / "receipt_en.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(plain.rstrip("\n"))  # the page text first, unchanged
    block = out[len(plain):]
    assert "fields: receipt" in block
    assert any(line.split()[:2] == ["total", TRUTH["receipt_en.png"]["fields"]["total"]] for line in block.splitlines())


def test_cli_json_carries_fields_only_when_asked(capsys, tmp_path):
    from ocr.__main__ import main

    image = str(EXAMPLES / "invoice_zh.png")
    assert main(["page", "--json", image]) == 0
    assert "fields" not in json.loads(capsys.readouterr().out)
    assert main(["page", "--json", "--fields", image]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["fields"]["kind"] == "zh_vat_invoice"
    assert row["fields"]["fields"]["total"]["value"] == TRUTH["invoice_zh.png"]["fields"]["total"]
    assert fields_for_answer(row)["fields"]["total"]["value"] == row["fields"]["fields"]["total"]["value"]

    pages, out = tmp_path / "pages.jsonl", tmp_path / "preds.jsonl"
    pages.write_text(json.dumps({"image": str(EXAMPLES / "receipt_en.png"), "lines": []}) + "\n", encoding="utf-8")
    assert main(["page", "--pages", str(pages), "--out", str(out), "--fields"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["fields"]["kind"] == "receipt"


@pytest.mark.parametrize("answer", [{}, {"success": False, "error": {"code": "x"}}, {"lines": "no"},
                                    {"lines": [{"text": "TOTAL 9.00", "box": [1, 2, 3]}]},
                                    {"lines": [{"text": "TOTAL 9.00"}]}])
def test_batch_hook_refuses_what_is_not_an_answer(answer):
    with pytest.raises(InvalidAnswerError) as err:
        fields_for_answer(answer)
    assert isinstance(err.value, OCRError) and err.value.code == "invalid_answer"


def test_missing_fields_are_listed_and_printed():
    answer = {"lines": [{"text": t, "box": [0, 30 * i, 300, 30 * i, 300, 30 * i + 24, 0, 30 * i + 24]}
                        for i, t in enumerate(["ACME TRADING SDN BHD", "TOTAL 9.00", "CASH 10.00", "CHANGE 1.00"])]}
    fs = fields_for_answer(answer)
    assert fs["kind"] == "receipt" and fs["fields"]["total"]["value"] == "9.00"
    assert fs["fields"]["total"]["char_boxes"] == []  # lines without character boxes: the line box only
    assert "date" in fs["missing"] and "total" not in fs["missing"]
    from ocr.fields import extract_fields

    assert "date" in extract_fields(answer).to_text() and "(not found)" in extract_fields(answer).to_text()
