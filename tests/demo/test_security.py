"""No path from a request to the server's files or network: Gradio's file routes, event payloads naming server
paths, ``image_url`` (no SSRF), the request size limit before decoding, and no image content in the logs.

All traffic goes to 127.0.0.1 only (a uvicorn server on a free loopback port, or FastAPI's in-process TestClient).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from demo.http_input import MAX_IMAGE_BYTES
from demo.rest import create_api
from tests.support import free_port, png_bytes, serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
WEIGHTS = ROOT / "weights" / "crnn.pt"
OCR = "/api/v1/ocr"


@pytest.fixture(scope="module")
def client(service):
    with TestClient(create_api(service, workers=1, queue=8), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def served(service):
    """The real combined app (REST + mounted Gradio) under uvicorn on 127.0.0.1; yields (url, port, app)."""
    from demo.app import build_app

    app = build_app(service)
    with serve(app) as (url, port):
        yield url, port, app


def gradio_blocks(app):
    from starlette.routing import Mount

    mount = next(r for r in app.routes if isinstance(r, Mount) and hasattr(r.app, "get_blocks"))  # not /docs-assets
    return mount.app.get_blocks()


def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (no client-side ``..`` normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- Gradio file routes

SECRET_TARGETS = {
    "passwd": (Path("/etc/passwd"), b"root:"),
    "weights": (WEIGHTS, WEIGHTS.read_bytes()[:64] if WEIGHTS.exists() else b"\x00never"),
    "sha256sums": (ROOT / "weights" / "SHA256SUMS", b"crnn.pt"),
    "app_source": (ROOT / "app.py", b"def main()"),
}


def _file_paths(target: Path) -> list[str]:
    rel_from_examples = "../" * 1 + str(target.relative_to(ROOT)) if ROOT in target.parents else None
    paths = []
    for prefix in ("/file=", "/gradio_api/file=", "/gradio_api/file/", "/file/"):
        paths.append(prefix + str(target))
        paths.append(prefix + str(target).replace("/", "%2F"))
        paths.append(prefix + "../../../../../../.." + str(target))
        paths.append(prefix + "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e" + str(target))
        if rel_from_examples:  # traversal out of the one allowed directory
            paths.append(prefix + str(EXAMPLES) + "/" + rel_from_examples)
            paths.append(prefix + str(EXAMPLES) + "/%2e%2e/" + str(target.relative_to(ROOT)))
    return paths


@pytest.mark.parametrize("name", sorted(SECRET_TARGETS))
def test_file_routes_refuse_paths_outside_gradio(served, name):
    _, port, _ = served
    target, marker = SECRET_TARGETS[name]
    assert target.exists()
    content = target.read_bytes()
    for path in _file_paths(target):
        status, body = raw_get(port, path)
        assert status in (400, 403, 404, 405), (path, status)
        assert marker not in body and (len(content) < 32 or content[:32] not in body), path


def test_file_route_still_serves_allowed_examples(served):
    """Positive control: the route exists and serves the allowed examples folder, so 403/404 above is a refusal."""
    _, port, _ = served
    example = next(p for p in sorted(EXAMPLES.rglob("*")) if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    status, body = raw_get(port, "/gradio_api/file=" + str(example))
    assert status == 200 and body == example.read_bytes()


def test_allowed_paths_are_minimal(served):
    _, _, app = served
    blocks = gradio_blocks(app)
    allowed = [Path(p).resolve() for p in blocks.allowed_paths]
    assert allowed == [EXAMPLES.resolve()], allowed
    for risky in (ROOT, ROOT / "weights", Path("/"), Path.home(), Path("/etc")):
        assert risky.resolve() not in allowed
    assert blocks.has_launched is True  # turns on Gradio's "was this file uploaded?" check for events
    config = json.dumps(blocks.get_config_file(), default=str)
    assert str(ROOT / "weights") not in config


# ---------------------------------------------------------------- event payloads naming server files


def _run_event(base: str, dep_id: int, path: str, session: str) -> dict:
    payload = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "auto", ["contrast", "deskew"],
                        7, 2.0, 11, 2, 0, "fast", False],
               "fn_index": dep_id, "session_hash": session, "event_data": None, "trigger_id": None}
    joined = httpx.post(base + "/queue/join", json=payload, timeout=30)
    if joined.status_code != 200:
        return {"refused_at_join": joined.status_code, "body": joined.text}
    with httpx.stream("GET", base + "/queue/data", params={"session_hash": session}, timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise AssertionError("the event never completed")


def test_event_payload_naming_server_file_is_refused(served):
    url, _, _ = served
    cfg = httpx.get(url + "/config", timeout=30).json()
    dep = next(d for d in cfg["dependencies"] if d.get("api_name") == "ocr")
    targets = [str(WEIGHTS), "/etc/passwd", str(EXAMPLES) + "/../weights/crnn.pt",
               str(ROOT / "docs" / "screenshot.png")]
    for i, path in enumerate(targets):
        done = _run_event(url + "/gradio_api", dep["id"], path, f"sec-path-{i}")
        if "refused_at_join" in done:
            assert 400 <= done["refused_at_join"] < 500
            continue
        assert done["success"] is False, done
        text = json.dumps(done, ensure_ascii=False)
        assert "root:" not in text and "Traceback" not in text


def test_read_upload_refuses_server_paths(tmp_path):
    from demo.handlers import read_upload
    from ocr.errors import InvalidImageError

    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes(np.full((8, 8, 3), 255, np.uint8)))
    link_dir = tmp_path / "links"
    link_dir.mkdir()
    (link_dir / "to_weights.png").symlink_to(WEIGHTS)
    for value in (str(WEIGHTS), "/etc/passwd", str(EXAMPLES / ".." / "weights" / "crnn.pt"), str(outside),
                  {"path": "/etc/passwd"}, {"path": str(link_dir / "to_weights.png")}, Path("/etc/hostname")):
        with pytest.raises(InvalidImageError, match="not uploaded"):
            read_upload(value)


# ---------------------------------------------------------------- image_url: off by default, never fetched


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Any name resolution or outbound connection fails the test (the in-process TestClient needs neither)."""
    calls: list[tuple] = []

    def refuse(name):
        def fn(*args, **kwargs):
            calls.append((name, args))
            raise NetworkUsed(f"{name} called with {args!r}")
        return fn

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "gethostbyname", refuse("gethostbyname"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    return calls


URLS = ["http://127.0.0.1/", "http://127.0.0.1:7860/api/v1/health", "http://localhost/x.png",
        "http://10.0.0.1/a.png", "http://169.254.169.254/latest/meta-data/", "http://localhost./x.png",
        "http://127.0.0.1.nip.io/x.png", "http://[::1]/x.png", "http://2130706433/", "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO"]


@pytest.mark.parametrize("url", URLS)
def test_image_url_refused_without_network(client, no_network, url):
    png = base64.b64encode(png_bytes(np.full((16, 16, 3), 255, np.uint8))).decode()
    r = client.post(OCR, json={"image_url": url})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "url_disabled"  # OCR_ALLOW_URLS is off by default
    r = client.post(OCR, json={"image_url": url, "image_base64": png})
    assert r.status_code == 422 and r.json()["error"]["code"] == "conflicting_fields"
    r = client.post(OCR, files={"image_url": (None, url)})  # multipart form field
    assert r.status_code == 400 and r.json()["error"]["code"] == "url_disabled"
    r = client.post(OCR, data={"image_url": url})  # url-encoded form: not an accepted content type at all
    assert r.status_code in (400, 415)
    r = client.post("/api/v1/explain", json={"image_url": url})
    assert r.status_code == 400
    assert no_network == []


@pytest.fixture(scope="module")
def urls_on(service):
    """The app as deployed with OCR_ALLOW_URLS=1 (the session's model, other settings)."""
    from ocr.service import OCRService
    from ocr.settings import Settings

    on = OCRService(service.pipeline, explainer=service.explainer, settings=Settings(allow_urls=True))
    with TestClient(create_api(on, workers=1, queue=8), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("url", [u for u in URLS if "localhost" not in u and "nip.io" not in u])
def test_image_url_on_refuses_private_addresses_without_network(urls_on, no_network, url):
    """Turned on, a URL whose host is an address (no lookup needed) or not http(s) is refused
    before any lookup or connection: 403 url_not_allowed, 500 never."""
    for route in (OCR, "/api/v1/explain"):
        r = urls_on.post(route, json={"image_url": url})
        assert r.status_code == 403 and r.json()["error"]["code"] == "url_not_allowed", r.text
    assert no_network == []


# ---------------------------------------------------------------- size limit before decoding


@pytest.fixture
def no_decoding(monkeypatch):
    import demo.http_input
    import ocr.imageio
    import ocr.pipeline
    import ocr.service

    def boom(*args, **kwargs):
        raise AssertionError("the image was decoded although the request is over the limit")

    for module in (demo.http_input, ocr.imageio, ocr.pipeline, ocr.service):
        if hasattr(module, "load_image"):
            monkeypatch.setattr(module, "load_image", boom)
    monkeypatch.setattr(Image, "open", boom)
    monkeypatch.setattr(demo.http_input, "decode_base64_image", boom)


BIG = b"\x89PNG\r\n\x1a\n" + b"\x00" * (12 * 1024 * 1024)


def test_12mb_raw_body_is_413_before_decoding(client, no_decoding):
    r = client.post(OCR, content=BIG, headers={"content-type": "image/png"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_12mb_multipart_is_413_before_decoding(client, no_decoding):
    r = client.post(OCR, files={"image": ("big.png", BIG, "image/png")})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_12mb_image_as_json_is_413_before_decoding(client, no_decoding):
    body = json.dumps({"image_base64": base64.b64encode(BIG).decode()})
    r = client.post(OCR, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_chunked_12mb_without_content_length_is_413(client, no_decoding):
    def chunks():
        for i in range(0, len(BIG), 1 << 20):
            yield BIG[i:i + (1 << 20)]

    r = client.post(OCR, content=chunks(), headers={"content-type": "image/png"})
    assert r.status_code == 413


def test_lying_content_length_is_413(client, no_decoding):
    r = client.post(OCR, content=b"{}", headers={"content-type": "application/json",
                                                 "content-length": str(MAX_IMAGE_BYTES * 3)})
    assert r.status_code in (400, 413)


# ---------------------------------------------------------------- logs


def test_logs_carry_no_image_content(client, caplog, latin_font):
    from training.synth import render_text

    data = png_bytes(render_text("Hello 2025", latin_font, size=32).image)
    encoded = base64.b64encode(data).decode()
    garbage = base64.b64encode(b"SECRETPAYLOAD-" * 40).decode()
    with caplog.at_level(logging.DEBUG):
        assert client.post(OCR, json={"image_base64": encoded, "kind": "line"}).status_code == 200
        assert client.post(OCR, json={"image_base64": encoded}).status_code == 200
        assert client.post(OCR, json={"image_base64": garbage}).status_code == 400
        assert client.post(OCR, files={"image": ("x.png", data, "image/png")}).status_code == 200
    assert any(rec.name == "demo.rest" for rec in caplog.records), "the API logged nothing: is the logger renamed?"
    text = "\n".join(rec.getMessage() + (rec.exc_text or "") for rec in caplog.records) + caplog.text
    for secret in (encoded, garbage):
        for i in range(0, len(secret) - 24, 24):
            assert secret[i:i + 24] not in text
    assert "SECRETPAYLOAD" not in text
