"""``"fields": true`` on /api/v1/ocr: the key fields appear when asked, never otherwise, and agree with
what the batch runner gets from ``ocr.fields.fields_for_answer`` on the same answer."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from demo.rest import create_api
from ocr.fields import fields_for_answer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TRUTH = json.loads((EXAMPLES / "fields.json").read_text(encoding="utf-8"))
OCR = "/api/v1/ocr"


@pytest.fixture(scope="module")
def client(service) -> TestClient:
    with TestClient(create_api(service, workers=1, queue=8)) as c:
        yield c


def post_file(client: TestClient, name: str, **form: str) -> dict:
    data = (EXAMPLES / name).read_bytes()
    resp = client.post(OCR, files={"image": (name, data, "image/png")}, data=form)
    assert resp.status_code == 200, resp.text
    return resp.json()


def post_json(client: TestClient, name: str, **options: object) -> dict:
    body = {"image_base64": base64.b64encode((EXAMPLES / name).read_bytes()).decode("ascii"), **options}
    resp = client.post(OCR, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_no_fields_unless_asked(client):
    assert "fields" not in post_file(client, "receipt_en.png")
    assert "fields" not in post_file(client, "receipt_en.png", fields="false")
    assert "fields" not in post_json(client, "receipt_en.png", fields=False)


def test_receipt_fields_in_a_multipart_answer(client):
    body = post_file(client, "receipt_en.png", fields="true")
    fs = body["fields"]
    assert fs["kind"] == "receipt" and fs["method"] == "rules" and fs["missing"] == []
    truth = TRUTH["receipt_en.png"]["fields"]
    assert fs["fields"]["total"]["value"] == truth["total"] and fs["fields"]["date"]["value"] == truth["date"]
    for name, f in fs["fields"].items():
        assert {"value", "raw", "label", "confidence", "low_confidence", "lines", "boxes", "explanation"} <= set(f)
        # the boxes are the answer's own line boxes: a client can highlight them without another request
        assert f["boxes"] == [body["lines"][i]["box"] for i in f["lines"]], name
        assert f["explanation"]["rule"].startswith(name) and f["explanation"]["reason"]


def test_invoice_fields_in_a_json_answer(client):
    fs = post_json(client, "invoice_zh.png", fields=True)["fields"]
    assert fs["kind"] == "zh_vat_invoice"
    truth = TRUTH["invoice_zh.png"]["fields"]
    for name in ("invoice_code", "invoice_number", "date", "total_capital", "total"):
        assert fs["fields"][name]["value"] == truth[name], name
    assert fs["checks"]["all_passed"] is True


def test_batch_hook_gives_the_rest_fields(client):
    """The batch runner keeps answers: fields_for_answer on the answer equals what "fields": true returns."""
    body = post_json(client, "receipt_en.png", fields=True)
    from_answer = fields_for_answer({k: v for k, v in body.items() if k != "fields"})
    assert {k: f["value"] for k, f in from_answer["fields"].items()} == \
        {k: f["value"] for k, f in body["fields"]["fields"].items()}
    assert [f["lines"] for f in from_answer["fields"].values()] == [f["lines"] for f in body["fields"]["fields"].values()]


def test_openapi_documents_the_option_on_ocr_only(client):
    paths = client.get("/openapi.json").json()["paths"]
    ocr_props = paths[OCR]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    explain_props = paths["/api/v1/explain"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert ocr_props["fields"]["type"] == "boolean" and "fields" not in explain_props
