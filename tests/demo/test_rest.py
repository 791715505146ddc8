"""The REST API (demo.rest) through FastAPI's TestClient: good inputs, every kind of bad input, busy, logs."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import struct
import sys
import threading
import time
import zlib
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from demo.http_input import MAX_IMAGE_BYTES, check_image_bytes
from demo.rest import create_api
from ocr.imageio import sniff_image_type
from ocr.service import OCRService

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
OCR = "/api/v1/ocr"
EXPLAIN = "/api/v1/explain"


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def client(service) -> TestClient:
    with TestClient(create_api(service, workers=1, queue=8)) as c:
        yield c


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG that *declares* width x height; its pixel data is a few bytes (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def similar(a: str, b: str) -> float:
    norm = lambda s: "".join(s.split()).replace("（", "(").replace("）", ")").replace("：", ":")  # noqa: E731
    return SequenceMatcher(None, norm(a), norm(b)).ratio()


@pytest.fixture(scope="module")
def line_png(latin_font) -> tuple[bytes, str]:
    from training.synth import render_text

    text = "Invoice 2025-03-18 Total 1234.56"
    return png_bytes(render_text(text, latin_font, size=32).image), text


@pytest.fixture(scope="module")
def example_page() -> tuple[bytes, dict]:
    entries = [json.loads(line) for line in (EXAMPLES / "index.jsonl").read_text(encoding="utf-8").splitlines() if line]
    entry = next(e for e in entries if e["image"].startswith("receipt_en") and e["kind"] == "page")
    return (EXAMPLES / entry["image"]).read_bytes(), entry


def assert_error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False
    assert set(body["error"]) >= {"code", "message"}
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body


# ---------------------------------------------------------------- health and docs


def test_health(client):
    body = client.get("/api/v1/health").json()
    assert body["success"] is True and body["model_loaded"] is True
    assert len(body["weights_sha256"]) == 64
    assert body["max_image_bytes"] == MAX_IMAGE_BYTES


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {OCR, EXPLAIN, "/api/v1/health"} <= set(paths)
    assert "multipart/form-data" in paths[OCR]["post"]["requestBody"]["content"]
    # what the black-box pass found missing: the errors, raw bodies, and the form options the server takes
    for path in (OCR, EXPLAIN):
        post = paths[path]["post"]
        assert {"400", "413", "415", "422", "503", "504"} <= set(post["responses"])
        error = post["responses"]["413"]["content"]["application/json"]["schema"]
        assert set(error["properties"]) == {"success", "error"}
        assert {"image/*", "application/pdf"} <= set(post["requestBody"]["content"])
        assert "preprocess" in post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert "include_maps" in paths[EXPLAIN]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"][
        "properties"]


def test_api_module_does_not_import_gradio():
    import subprocess

    code = ("import sys, demo.rest, ocr.service, ocr.pipeline, explain; "
            "assert 'gradio' not in sys.modules, 'gradio imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


# ---------------------------------------------------------------- good inputs


def test_ocr_line_json(client, line_png):
    data, text = line_png
    resp = client.post(OCR, json={"image_base64": b64(data)})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True
    assert similar(body["text"], text) > 0.8, body["text"]
    assert 0 < body["confidence"] <= 1 and body["processing_time_ms"] >= 0
    line = body["lines"][0]
    assert set(line) >= {"box", "text", "confidence", "chars"} and len(line["box"]) == 8
    char = line["chars"][0]
    assert set(char) >= {"char", "confidence", "box"}


def test_ocr_data_url_and_kind_line(client, line_png):
    data, text = line_png
    resp = client.post(OCR, json={"image_base64": "data:image/png;base64," + b64(data), "kind": "line"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(body["lines"]) == 1 and similar(body["text"], text) > 0.8
    assert body["lines"][0]["box"][:2] == [0.0, 0.0]


def test_ocr_page_multipart(client, example_page):
    data, entry = example_page
    resp = client.post(OCR, files={"image": (entry["image"], data, "image/png")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    truth = "\n".join(line["text"] for line in entry["lines"])
    assert len(body["lines"]) >= len(entry["lines"]) // 2
    assert similar(body["text"], truth) > 0.5, body["text"][:200]


def test_ocr_raw_body_and_preprocess_off(client, line_png):
    data, text = line_png
    resp = client.post(OCR, content=data, headers={"content-type": "image/png"})
    assert resp.status_code == 200 and similar(resp.json()["text"], text) > 0.8
    resp = client.post(OCR, json={"image_base64": b64(data), "preprocess": {"mode": "off"}})
    assert resp.status_code == 200 and resp.json()["text"]


def test_ocr_jpeg_and_other_allowed_types(client, line_png):
    rgb = np.asarray(Image.open(io.BytesIO(line_png[0])).convert("RGB"))
    for fmt in ("JPEG", "BMP", "WEBP", "TIFF"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt)
        resp = client.post(OCR, json={"image_base64": b64(buf.getvalue()), "kind": "line"})
        assert resp.status_code == 200, (fmt, resp.text)
        assert resp.json()["text"], fmt


def test_blank_image_reads_nothing(client):
    resp = client.post(OCR, json={"image_base64": b64(png_bytes(np.full((64, 200, 3), 255, np.uint8)))})
    assert resp.status_code == 200, resp.text
    assert resp.json()["lines"] == [] and resp.json()["text"] == ""


# ---------------------------------------------------------------- bad inputs


def test_empty_body_and_empty_image(client):
    assert_error(client.post(OCR, content=b"", headers={"content-type": "application/json"}), 400, "invalid_json")
    assert_error(client.post(OCR, json={"image_base64": ""}), 400, "invalid_image")
    assert_error(client.post(OCR, files={"image": ("x.png", b"", "image/png")}), 400, "invalid_image")


def test_not_json_and_not_an_object(client):
    assert_error(client.post(OCR, content=b"{not json", headers={"content-type": "application/json"}), 400, "invalid_json")
    assert_error(client.post(OCR, json=["image_base64"]), 400, "invalid_json")


def test_missing_field(client):
    assert_error(client.post(OCR, json={}), 422, "missing_field")
    assert_error(client.post(OCR, json={"image": "abc"}), 422, "missing_field")
    assert_error(client.post(OCR, files={"other": ("x.png", b"123", "image/png")}), 422, "missing_field")


def test_not_base64(client):
    assert_error(client.post(OCR, json={"image_base64": "this is *not* base64!"}), 400, "invalid_base64")
    assert_error(client.post(OCR, json={"image_base64": 12345}), 400, "invalid_base64")


def test_not_an_image(client):
    assert_error(client.post(OCR, json={"image_base64": b64(b"hello, I am plain text " * 10)}), 400, "invalid_image")
    assert_error(client.post(OCR, files={"image": ("x.png", b"\x00\x01\x02 junk" * 50, "image/png")}), 400)


def test_truncated_png_is_invalid(client, line_png):
    assert_error(client.post(OCR, json={"image_base64": b64(line_png[0][:200])}), 400, "invalid_image")


@pytest.mark.parametrize("data,kind", [  # PDFs and GIFs are read (tests/demo/test_rest_inputs.py)
    (b"8BPS\x00\x01" + b"\x00" * 40, "psd"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>" + b" " * 40, "svg"),
])
def test_wrong_type(client, data, kind):
    body = assert_error(client.post(OCR, json={"image_base64": b64(data)}), 415, "unsupported_media_type")
    assert kind in body["error"]["message"]
    assert_error(client.post(OCR, files={"image": (f"x.{kind}", data, "application/octet-stream")}), 415)


def test_too_large_json_and_multipart(client):
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_IMAGE_BYTES + 1)
    assert_error(client.post(OCR, json={"image_base64": b64(big)}), 413, "payload_too_large")
    assert_error(client.post(OCR, files={"image": ("big.png", big, "image/png")}), 413, "payload_too_large")
    assert_error(client.post(OCR, content=big, headers={"content-type": "image/png"}), 413, "payload_too_large")


def test_size_checked_before_decoding(client, monkeypatch):
    import demo.http_input

    def boom(*args, **kwargs):
        raise AssertionError("decoded an oversized image")

    monkeypatch.setattr(demo.http_input.base64, "b64decode", boom)
    big = "A" * ((MAX_IMAGE_BYTES // 3 + 10) * 4)
    assert_error(client.post(OCR, json={"image_base64": big}), 413, "payload_too_large")


def test_decompression_bomb(client):
    bomb = png_header_only(50_000, 50_000)
    body = assert_error(client.post(OCR, json={"image_base64": b64(bomb)}), 400, "image_too_large")
    assert "megapixel" in body["error"]["message"] or "too large" in body["error"]["message"]
    assert_error(client.post(OCR, files={"image": ("bomb.png", bomb, "image/png")}), 400, "image_too_large")


def test_image_url_is_refused_without_fetching(client, monkeypatch):
    """OCR_ALLOW_URLS is off by default: url_disabled, nothing fetched (on: tests/demo/test_rest_inputs.py)."""
    def no_network(*args, **kwargs):
        raise AssertionError("the API tried to open a connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    for url in ("http://127.0.0.1:7860/api/v1/health", "http://169.254.169.254/latest/meta-data", "file:///etc/passwd"):
        body = assert_error(client.post(OCR, json={"image_url": url}), 400, "url_disabled")
        assert "turned off" in body["error"]["message"]
    assert_error(client.post(OCR, data={"image_url": "http://127.0.0.1/"},
                             files={"x": ("a", b"1", "text/plain")}), 400, "url_disabled")


def test_bad_options(client, line_png):
    data = b64(line_png[0])
    assert_error(client.post(OCR, json={"image_base64": data, "kind": "poster"}), 422, "invalid_field")
    assert_error(client.post(OCR, json={"image_base64": data, "preprocess": {"mode": "magic"}}), 422, "invalid_field")
    assert_error(client.post(OCR, json={"image_base64": data, "preprocess": {"denoise": {"h": 1000}}}), 422)


def test_request_log_line(client, line_png, caplog):
    with caplog.at_level(logging.INFO, logger="demo.rest"):
        client.post(OCR, json={"image_base64": b64(line_png[0]), "kind": "line"})
        client.post(OCR, json={"image_base64": "%%%"})
    lines = [r.getMessage() for r in caplog.records if r.name == "demo.rest"]
    assert any("status=200" in m and "latency_ms=" in m and "client=" in m and "bytes=" in m for m in lines), lines
    assert any("status=400" in m and "invalid_base64" in m for m in lines), lines
    assert not any(b64(line_png[0])[:40] in m for m in lines)


# ---------------------------------------------------------------- busy


class _SlowPipeline:
    def __init__(self, recognizer) -> None:
        self.recognizer = recognizer
        self.started = threading.Event()
        self.release = threading.Event()

    def run(self, image, preprocess=None, use_cache=True, model=None, lm=None):
        self.started.set()
        self.release.wait(60)
        from ocr.pipeline import PageResult

        return PageResult([], 10, 10)


def test_busy_answers_503_instead_of_hanging(service, line_png):
    slow = _SlowPipeline(service.recognizer)
    app = create_api(OCRService(slow, weights_sha256="x"), workers=1, queue=0, wait_seconds=30)
    data = {"image_base64": b64(line_png[0])}
    with TestClient(app) as c:
        first: dict = {}
        t = threading.Thread(target=lambda: first.setdefault("resp", c.post(OCR, json=data)))
        t.start()
        assert slow.started.wait(60)
        t0 = time.monotonic()
        body = assert_error(c.post(OCR, json=data), 503, "busy")
        assert time.monotonic() - t0 < 30  # answered, not queued behind the slow call
        assert "busy" in body["error"]["message"]
        slow.release.set()
        t.join(60)
        assert first["resp"].status_code == 200
        assert c.post(OCR, json=data).status_code == 200  # the slot was released


def test_requests_queue_while_the_expected_wait_is_short_and_get_retry_after_beyond(service, line_png):
    """With calls timed at ~4 s, a second and third request wait (4 s, 8 s expected); a fourth would
    wait 12 s > 10 s: 503 at once with Retry-After 12; once the calls end, requests are admitted again."""
    slow = _SlowPipeline(service.recognizer)
    app = create_api(OCRService(slow, weights_sha256="x"), workers=1, queue=32, wait_seconds=60)
    app.state.limiter.mean_call_seconds = 4.0
    data = {"image_base64": b64(line_png[0])}
    with TestClient(app) as c:
        answers: list = []
        threads = [threading.Thread(target=lambda: answers.append(c.post(OCR, json=data))) for _ in range(3)]
        for t in threads:
            t.start()
        assert slow.started.wait(60)
        deadline = time.monotonic() + 30
        while app.state.limiter.admitted < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.limiter.admitted == 3  # all three admitted: queued, not refused
        assert app.state.limiter.expected_wait() == pytest.approx(12.0, abs=0.01)
        refused = c.post(OCR, json=data)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "busy"
        assert refused.headers["Retry-After"] == "12" and "12 s" in refused.json()["error"]["message"]
        # health says busy whenever a request would be refused, not only when every slot is taken (3 < 33)
        assert c.get("/api/v1/health").json()["busy"] is True
        slow.release.set()
        for t in threads:
            t.join(60)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert c.post(OCR, json=data).status_code == 200


def test_abandoned_work_that_reports_progress_stops_and_frees_its_slot():
    """An explanation past the timeout used to run on for minutes, its slot held, every other request 503
    (found by a black-box pass). Work reporting progress through ``stop_if_abandoned`` ends at its next report."""
    import asyncio

    from demo.limiter import AbandonedError, RequestTimeoutError, WorkLimiter, stop_if_abandoned

    limiter = WorkLimiter(workers=1, queue=0, timeout_seconds=0.3)
    ended: dict = {}

    def long_work() -> None:
        started = time.monotonic()
        try:
            while time.monotonic() - started < 30:  # 30 s of "explaining", reporting as it goes
                stop_if_abandoned(0.5)
                time.sleep(0.01)
        except AbandonedError:
            ended["after"] = time.monotonic() - started
            raise

    async def scenario() -> int:
        with pytest.raises(RequestTimeoutError):
            await limiter.run(long_work)
        held = limiter.admitted  # the client has its 504; the work still holds the slot
        deadline = time.monotonic() + 10
        while limiter.admitted and time.monotonic() < deadline:  # the server's loop goes on
            await asyncio.sleep(0.02)
        return held

    assert asyncio.run(scenario()) == 1
    assert limiter.admitted == 0 and ended["after"] < 5
    stop_if_abandoned(1.0)  # outside a limited call: nothing to stop

    # work that notices the deadline a moment before the wait times out is a timeout too (504), never a 500
    def noticed_first() -> None:
        raise AbandonedError("the request timed out; its work stops here")

    with pytest.raises(RequestTimeoutError):
        asyncio.run(WorkLimiter(workers=1, queue=0, timeout_seconds=5.0).run(noticed_first))


def test_slow_calls_are_not_admitted_on_the_strength_of_fast_ones():
    """The expected wait is learnt per kind of call: after many 10 ms page reads, explanations that take
    0.3 s each fill the 0.5 s budget after one in the queue, where one mean of all calls admitted all four."""
    import asyncio

    from demo.limiter import BusyError, WorkLimiter

    async def scenario() -> list:
        limiter = WorkLimiter(workers=1, queue=8, wait_seconds=60, max_wait=0.5)
        for _ in range(10):
            await limiter.run(time.sleep, 0.01, kind="read")
        await limiter.run(time.sleep, 0.3, kind="explain:ig,occlusion")
        assert limiter.mean_call_seconds < 0.2 < limiter.expected_seconds("explain:ig,occlusion")
        calls = [limiter.run(time.sleep, 0.3, kind="explain:ig,occlusion") for _ in range(4)]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert [isinstance(o, BusyError) for o in outcomes] == [False, False, True, True]
    assert outcomes[2].retry_after == 1  # ceil of the 0.6 s it would have waited


# ---------------------------------------------------------------- explain

def _decoded_png(value) -> np.ndarray:
    if isinstance(value, dict):
        value = value["png_base64"]
    img = Image.open(io.BytesIO(base64.b64decode(value)))
    assert img.format == "PNG"
    return np.asarray(img)


def _find_images(obj, out=None) -> list:
    out = [] if out is None else out
    if isinstance(obj, dict):
        if "png_base64" in obj:
            out.append(obj)
        else:
            for v in obj.values():
                _find_images(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _find_images(v, out)
    return out


def test_explain_line(client, line_png):
    resp = client.post(EXPLAIN, json={"image_base64": b64(line_png[0]), "kind": "line",
                                      "methods": ["gradcam", "alignment"], "char_index": 0})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True and body["processing_time_ms"] >= 0
    images = _find_images(body)
    assert images, "no explanation image in the answer"
    for img in images:
        assert _decoded_png(img).ndim in (2, 3)
    text = json.dumps(body)
    assert "alignment" in text


def test_explain_kind_line_explains_the_reading_of_the_lm_asked_for(client, service):
    """``kind=line`` used to be read again inside the explainer with the default ``lm``: with ``lm`` off, /explain
    explained the language model's reading, not the one /ocr returned (found by a black-box pass)."""
    from ocr.imageio import load_image

    rgb = load_image(EXAMPLES / "receipt_en.png")
    off, on = (service.ocr(rgb, model="fast", lm=lm) for lm in (False, True))
    crops = [a.crop for a, b in zip(off.lines, on.lines) if a.text != b.text]
    assert crops, "the receipt has a line the language model reads differently"
    crop = b64(png_bytes(crops[0]))
    texts = {}
    for lm in (False, True):
        fields = {"image_base64": crop, "kind": "line", "model": "fast", "lm": lm}
        read = client.post(OCR, json=fields).json()
        explained = client.post(EXPLAIN, json={**fields, "methods": ["alignment"]}).json()
        assert explained["text"] == read["text"], (lm, explained["text"], read["text"])
        assert explained["lm"] is read["lm"] is lm  # the answer says how the explained reading was decoded
        texts[lm] = read["text"]
    assert texts[False] != texts[True]


def test_explain_page_line_multipart(client, example_page):
    data, entry = example_page
    resp = client.post(EXPLAIN, files={"image": (entry["image"], data, "image/png")},
                       data={"line": "1", "methods": "gradcam,alignment"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["line"] == 1 and _find_images(resp.json())
    assert isinstance(resp.json()["lm"], bool)  # the model's default, said (a black-box pass found it null)


def test_explain_without_explanations_wired_is_501(service, line_png):
    """A service built without an explainer answers /explain with 501, and still reads."""
    bare = OCRService(service.pipeline, weights_sha256="x")
    with TestClient(create_api(bare, workers=1, queue=2)) as c:
        data = b64(line_png[0])
        assert_error(c.post(EXPLAIN, json={"image_base64": data, "kind": "line"}), 501, "not_available")
        assert c.post(OCR, json={"image_base64": data, "kind": "line"}).status_code == 200
        assert c.get("/api/v1/health").json()["explain_available"] is False


def test_explain_bad_inputs(client, line_png):
    data = b64(line_png[0])
    assert_error(client.post(EXPLAIN, json={}), 422, "missing_field")
    assert_error(client.post(EXPLAIN, json={"image_url": "http://127.0.0.1/x.png"}), 400, "url_disabled")
    assert_error(client.post(EXPLAIN, json={"image_base64": "@@@"}), 400, "invalid_base64")
    assert_error(client.post(EXPLAIN, json={"image_base64": b64(png_header_only(50_000, 50_000))}), 400,
                 "image_too_large")
    assert_error(client.post(EXPLAIN, json={"image_base64": data, "line": "first"}), 422, "invalid_field")
    assert_error(client.post(EXPLAIN, json={"image_base64": data, "line": 999}), 400, "invalid_line")
    assert_error(client.post(EXPLAIN, json={"image_base64": data, "methods": ["astrology"]}), 422, "invalid_field")
    blank = b64(png_bytes(np.full((64, 200, 3), 255, np.uint8)))
    assert_error(client.post(EXPLAIN, json={"image_base64": blank}), 422, "no_text")


# ---------------------------------------------------------------- the byte checks themselves


def test_sniffing():
    assert sniff_image_type(b"\x89PNG\r\n\x1a\n....") == ("png", True)
    assert sniff_image_type(b"\xff\xd8\xff\xe0....") == ("jpeg", True)
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("webp", True)
    assert sniff_image_type(b"II*\x00\x08\x00\x00\x00") == ("tiff", True)
    assert sniff_image_type(b"BM" + b"\x00" * 40) == ("bmp", True)
    assert sniff_image_type(b"GIF87a....") == ("gif", True)
    assert sniff_image_type(b"8BPS\x00\x01") == ("psd", False)
    assert sniff_image_type(b"%PDF-1.4") == ("pdf", False)
    assert sniff_image_type(b"hello") == (None, False)
    with pytest.raises(Exception):
        check_image_bytes(b"")


# ---------------------------------------------------------------- the model choice (issue 16)


@pytest.mark.parametrize("model", ["best", 3, ["fast"]])
def test_a_bad_model_is_422(client, line_png, model):
    r = client.post(OCR, json={"image_base64": b64(line_png[0]), "kind": "line", "model": model})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field"
    assert "fast, accurate, auto" in r.json()["error"]["message"]


def test_each_line_says_which_model_read_it(client, line_png):
    body = client.post(OCR, json={"image_base64": b64(line_png[0]), "kind": "line", "model": "accurate"}).json()
    assert body["success"] and body["model"] == "accurate"
    assert [(ln["model"], ln["reread"]) for ln in body["lines"]] == [("accurate", False)]
    form = client.post(OCR, files={"image": ("l.png", line_png[0], "image/png")}, data={"kind": "line"}).json()
    assert form["model"] == "auto" and form["lines"][0]["model"] in ("fast", "accurate")  # the default (OCR_MODEL unset)
    assert client.get("/api/v1/health").json()["default_model"] == "auto"


# ---------------------------------------------------------------- the language model switch (issue 14)


@pytest.mark.parametrize("lm", ["maybe", 2, ["on"]])
def test_a_bad_lm_is_422(client, line_png, lm):
    r = client.post(OCR, json={"image_base64": b64(line_png[0]), "kind": "line", "lm": lm})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field"
    assert "lm must be true or false" in r.json()["error"]["message"]


def test_the_answer_says_whether_the_language_model_decoded(client, line_png):
    on = client.post(OCR, json={"image_base64": b64(line_png[0]), "kind": "line", "lm": True}).json()
    off = client.post(OCR, files={"image": ("l.png", line_png[0], "image/png")},
                      data={"kind": "line", "lm": "off"}).json()
    assert on["success"] and on["lm"] is True
    assert off["success"] and off["lm"] is False
    assert on["text"] and off["text"]


# ---------------------------------------------------------------- black-box findings: always the JSON error format


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,  # nesting deeper than the parser's recursion
    '{"image_base64": "%s", "line": ' + "9" * 5000 + "}",  # over Python's 4300-digit int limit
], ids=["deep_nesting", "5000_digits"])
def test_valid_json_the_parser_refuses_is_400(client, line_png, body):
    body = body.replace("%s", b64(line_png[0])) if "%s" in body else body
    for path in (OCR, EXPLAIN):
        assert_error(client.post(path, content=body, headers={"content-type": "application/json"}), 400,
                     "invalid_json")


@pytest.mark.parametrize("name", ["line", "char_index", "page"])
@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "1e400", "NaN"])
def test_an_infinite_number_is_422(client, line_png, name, number):
    body = '{"image_base64": "%s", "kind": "line", "%s": %s}' % (b64(line_png[0]), name, number)
    r = client.post(EXPLAIN, content=body, headers={"content-type": "application/json"})
    assert f"{name} must be an integer" in assert_error(r, 422, "invalid_field")["error"]["message"]


@pytest.mark.parametrize("path,options", [
    (EXPLAIN, {"methods": ["\ud800"]}),
    (OCR, {"preprocess": {"\ud800": 1}}),
])
def test_a_lone_surrogate_is_answered_as_json(client, line_png, path, options):
    body = json.dumps({"image_base64": b64(line_png[0]), "kind": "line", **options})  # ensure_ascii: \ud800
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.headers["content-type"].startswith("application/json")
    assert_error(r, 422, "invalid_field")


def test_any_json_answer_survives_unencodable_text():
    from demo.http_input import JSONAnswer, error_body

    body = json.loads(JSONAnswer(error_body("invalid_field", "bad \ud800 name"), status_code=422).body)
    assert body["error"]["message"] == "bad \ufffd name"


@pytest.mark.parametrize("value", [2, "maybe", ["true"]])
def test_a_bad_fields_flag_is_422(client, line_png, value):
    r = client.post(OCR, json={"image_base64": b64(line_png[0]), "kind": "line", "fields": value})
    assert "fields must be true or false" in assert_error(r, 422, "invalid_field")["error"]["message"]


def test_the_fields_flag_takes_what_lm_takes(client, line_png):
    for value, asked in ((1, True), ("yes", True), (0, False), ("off", False)):
        r = client.post(OCR, json={"image_base64": b64(line_png[0]), "kind": "line", "fields": value})
        assert r.status_code == 200 and ("fields" in r.json()) is asked, (value, r.text)


def test_a_bad_include_maps_flag_is_422(client, line_png):
    r = client.post(EXPLAIN, json={"image_base64": b64(line_png[0]), "kind": "line", "include_maps": "maybe"})
    assert_error(r, 422, "invalid_field")


@pytest.mark.parametrize("method,path,status,allow", [
    ("GET", OCR, 405, "POST"), ("PUT", OCR, 405, "POST"), ("OPTIONS", OCR, 405, "POST"),
    ("DELETE", EXPLAIN, 405, "POST"), ("POST", "/api/v1/health", 405, "GET"),
    ("POST", OCR + "/", 404, None), ("GET", "/api/v1/nothing", 404, None), ("GET", "/api/v1", 404, None),
])
def test_wrong_method_or_path_is_a_json_error(client, method, path, status, allow):
    r = client.request(method, path)
    assert_error(r, status, "method_not_allowed" if status == 405 else "not_found")
    assert r.headers.get("allow") == allow


def test_text_plain_is_415_naming_the_supported_types(client, line_png):
    for ctype in ("text/plain", "application/xml"):
        r = client.post(OCR, content=line_png[0], headers={"content-type": ctype})
        message = assert_error(r, 415, "unsupported_media_type")["error"]["message"]
        assert ctype in message and "application/json" in message and "multipart/form-data" in message
    r = client.post(OCR, content=json.dumps({"image_base64": b64(line_png[0]), "kind": "line"}),
                    headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text  # JSON sent as text/plain (a "simple" browser request) is still read


def test_two_images_are_refused(client, line_png):
    part = ("l.png", line_png[0], "image/png")
    r = client.post(OCR, files=[("image", part), ("image", part)])
    assert "exactly one image" in assert_error(r, 422, "conflicting_fields")["error"]["message"]
    r = client.post(OCR, files=[("image", part)], data={"image_base64": b64(line_png[0])})
    assert "exactly one image" in assert_error(r, 422, "conflicting_fields")["error"]["message"]


def test_every_413_states_the_documented_image_limit(client):
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_IMAGE_BYTES + 300 * 1024)
    answers = [client.post(OCR, json={"image_base64": b64(big)}),
               client.post(OCR, files={"image": ("big.png", big, "image/png")}),
               client.post(OCR, content=big, headers={"content-type": "image/png"}),
               client.post(OCR, content=b64(big).encode() * 2, headers={"content-type": "application/json"})]
    for r in answers:
        message = assert_error(r, 413, "payload_too_large")["error"]["message"]
        assert "the image" in message and "over the 10 MB limit" in message, message


def test_explain_on_a_blank_image_is_no_text(client):
    blank = b64(png_bytes(np.full((1, 1, 3), 255, np.uint8)))
    r = client.post(EXPLAIN, json={"image_base64": blank})
    assert assert_error(r, 422, "no_text")["error"]["message"] == "no text line was found in this image"


@pytest.fixture(scope="module")
def full_client(service) -> TestClient:
    """The combined app (REST + the Gradio UI mounted at "/"), as ``python app.py`` serves it."""
    from demo.app import build_app

    with TestClient(build_app(service)) as c:
        yield c


def test_wrong_method_under_the_ui_mount_is_a_json_405(full_client):
    """Gradio's mount at "/" must not answer /api/v1 paths with its own {"detail": "Not Found"}."""
    r = full_client.get(OCR)
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    assert_error(full_client.post("/api/v1/health"), 405, "method_not_allowed")
    assert_error(full_client.post(OCR + "/"), 404, "not_found")
    assert full_client.get("/api/v1/health").status_code == 200


def test_no_docs_page_needs_a_cdn(full_client):
    assert "cdn.jsdelivr.net" not in full_client.get("/docs").text
    r = full_client.get("/redoc")
    assert "cdn.jsdelivr.net" not in r.text and "redoc" not in r.text.lower()


def test_explain_methods_all_means_every_method():
    """The /docs schema says ``methods`` may be "all" (as ``python -m explain --method all``); it was a 422."""
    from demo.http_input import APIError
    from demo.payloads import methods_field

    known = ("alignment", "gradcam", "saliency", "occlusion", "ig")
    assert methods_field({"methods": "all"}, known) == known
    assert methods_field({"methods": ["ig", "all"]}, known) == ("ig", "alignment", "gradcam", "saliency", "occlusion")
    with pytest.raises(APIError):
        methods_field({"methods": "everything"}, known)


def test_an_unknown_field_is_refused_not_ignored(client, line_png):
    """``"modle": "accurate"`` was read with the default model and a 200 (black-box pass): now 422, naming it,
    in JSON, multipart and a raw body's query string; the documented fields are exactly the ones read."""
    from demo.payloads import EXPLAIN_BODY, EXPLAIN_FIELDS, IMAGE_BODY, OCR_FIELDS

    body = assert_error(client.post(OCR, json={"image_base64": b64(line_png[0]), "modle": "accurate"}),
                        422, "unknown_field")
    assert "'modle'" in body["error"]["message"] and "model" in body["error"]["message"]
    assert_error(client.post(OCR, files={"image": ("x.png", line_png[0], "image/png")}, data={"knd": "line"}),
                 422, "unknown_field")
    assert_error(client.post(OCR + "?kind=line&lang=en", content=line_png[0], headers={"content-type": "image/png"}),
                 422, "unknown_field")
    assert_error(client.post(EXPLAIN, json={"image_base64": b64(line_png[0]), "fields": True}), 422, "unknown_field")
    for route_body, known in ((IMAGE_BODY, OCR_FIELDS), (EXPLAIN_BODY, EXPLAIN_FIELDS)):
        documented = set(route_body["content"]["application/json"]["schema"]["properties"])
        assert documented == set(known), (documented ^ set(known))


def test_an_option_given_twice_is_refused(client, line_png):
    """``?kind=line&kind=page`` was read as a page, silently (black-box pass)."""
    body = assert_error(client.post(OCR + "?kind=line&kind=page", content=line_png[0],
                                    headers={"content-type": "image/png"}), 422, "invalid_field")
    assert "'kind'" in body["error"]["message"]
    assert_error(client.post(OCR, files={"image": ("x.png", line_png[0], "image/png")},
                             data={"kind": ["line", "page"]}), 422, "invalid_field")


def test_the_first_slow_explanation_is_expected_to_be_slow():
    """Before any explanation has been timed, a request queued behind one with occlusion was told to retry after
    the page reads' mean (~0.2 s; black-box pass): an explanation's kind now starts from its own first guess."""
    import asyncio
    import threading

    from demo.limiter import FIRST_GUESS_SLOW_EXPLAIN_SECONDS, BusyError, WorkLimiter, first_guess

    assert first_guess("ocr") == 0.0 < first_guess("explain:alignment,gradcam") < first_guess("explain:occlusion")
    release = threading.Event()

    async def scenario() -> BusyError:
        limiter = WorkLimiter(workers=1, queue=4, wait_seconds=60, max_wait=5.0)
        for _ in range(5):
            await limiter.run(time.sleep, 0.01, kind="ocr")
        slow = asyncio.ensure_future(limiter.run(release.wait, 30, kind="explain:alignment,occlusion"))
        await asyncio.sleep(0.05)
        try:
            await limiter.run(time.sleep, 0.01, kind="ocr")
        except BusyError as exc:
            return exc
        finally:
            release.set()
            await slow
        raise AssertionError("admitted behind an explanation expected to take seconds")

    refused = asyncio.run(scenario())
    assert refused.retry_after >= FIRST_GUESS_SLOW_EXPLAIN_SECONDS
