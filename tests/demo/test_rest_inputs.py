"""REST inputs beyond one uploaded image: PDFs and multi-page TIFFs (every page; explain one page) and
``image_url`` (off by default; when on, fetched from public addresses only), and the HTTP status of every
``url_*`` / ``pdf_*`` / ``tiff_*`` refusal. URLs are served by a server this test starts on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from demo.http_input import ocr_error_to_api
from demo.rest import create_api
from ocr import errors
from ocr.service import OCRService
from ocr.settings import Settings
from ocr.url_fetch import UrlPolicy
from tests.ocr.test_pdf import encrypted
from tests.ocr.test_tiff import PAGE_WORDS, text_pages, tiff_bytes

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
OCR = "/api/v1/ocr"
EXPLAIN = "/api/v1/explain"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pdf_of(*images: Image.Image) -> bytes:
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=list(images[1:]), resolution=150)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pages() -> tuple[Image.Image, Image.Image]:
    receipt = Image.open(EXAMPLES / "receipt_en.png").convert("RGB").crop((0, 0, 420, 260))
    line = Image.open(EXAMPLES / "line_zh.png").convert("RGB")
    return receipt, line


@pytest.fixture(scope="module")
def two_pages(pages) -> bytes:
    return pdf_of(*pages)


def service_with(service: OCRService, **settings) -> OCRService:
    """The session's loaded model behind other settings (no second model load)."""
    return OCRService(service.pipeline, explainer=service.explainer, settings=Settings(**settings))


@pytest.fixture(scope="module")
def client(service) -> TestClient:
    with TestClient(create_api(service, workers=1, queue=8)) as c:
        yield c


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert "Traceback" not in body["error"]["message"]
    return body


# ---------------------------------------------------------------- GIFs


def test_an_animated_gif_is_read_as_its_first_frame(client, pages) -> None:
    """REST refused GIF (415) while the UI and the CLI read its first frame (black-box pass): now every way of
    sending it answers what the first frame alone, sent as PNG, answers."""
    line = pages[1]
    blank = Image.new("RGB", line.size, "white")
    gif, png = io.BytesIO(), io.BytesIO()
    line.save(gif, format="GIF", save_all=True, append_images=[blank], duration=100, loop=0)
    line.convert("P", palette=Image.Palette.ADAPTIVE).convert("RGB").save(png, format="PNG")  # the GIF's colours
    expected = client.post(OCR, content=png.getvalue(), headers={"content-type": "image/png"}).json()
    assert expected["text"]
    for answer in (client.post(OCR, content=gif.getvalue(), headers={"content-type": "image/gif"}),
                   client.post(OCR, json={"image_base64": b64(gif.getvalue())}),
                   client.post(OCR, files={"image": ("anim.gif", gif.getvalue(), "image/gif")})):
        assert answer.status_code == 200, answer.text
        assert answer.json()["text"] == expected["text"]


# ---------------------------------------------------------------- PDFs


def test_pdf_every_page_in_each_way_of_sending(client, two_pages) -> None:
    ways = [dict(content=two_pages, headers={"content-type": "application/pdf"}),
            dict(files={"image": ("scan.pdf", two_pages, "application/pdf")}),
            dict(json={"image_base64": b64(two_pages)})]
    answers = []
    for way in ways:
        resp = client.post(OCR, **way)
        assert resp.status_code == 200, resp.text
        answers.append(resp.json())
    body = answers[0]
    assert body["success"] is True and body["page_count"] == 2 and len(body["pages"]) == 2
    single = client.post(OCR, content=(EXAMPLES / "line_zh.png").read_bytes(),
                         headers={"content-type": "image/png"}).json()
    assert "pages" not in single and "page_count" not in single  # the single-image answer is unchanged
    for page in body["pages"]:
        assert set(page) == set(single)  # each page: the single-image answer's fields
    assert "GREENLEAF" in body["pages"][0]["text"].replace(" ", "")
    # the line, stored as JPEG in the PDF and rendered back: the same words (a bracket may change width)
    assert "价税合计" in body["pages"][1]["text"] and "1,234.56" in body["pages"][1]["text"]
    assert [p["text"] for a in answers for p in a["pages"]] == [p["text"] for p in body["pages"]] * 3


def test_pdf_explain_one_page(client, two_pages) -> None:
    resp = client.post(EXPLAIN, json={"image_base64": b64(two_pages), "page": 1, "methods": ["alignment"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["page"] == 1 and resp.json()["line"] == 0
    by_form = client.post(EXPLAIN, files={"image": ("s.pdf", two_pages, "application/pdf")},
                          data={"page": "1", "methods": "alignment"})
    assert by_form.status_code == 200 and by_form.json()["page"] == 1
    assert_error(client.post(EXPLAIN, json={"image_base64": b64(two_pages), "page": 2}), 400, "invalid_page")
    assert_error(client.post(EXPLAIN, json={"image_base64": b64(two_pages), "page": -1}), 400, "invalid_page")
    png = b64((EXAMPLES / "line_zh.png").read_bytes())
    assert_error(client.post(EXPLAIN, json={"image_base64": png, "kind": "line", "page": 1}), 400, "invalid_page")
    assert "page" not in client.post(EXPLAIN, json={"image_base64": png, "kind": "line",
                                                    "methods": ["alignment"]}).json()


def test_pdf_refusals(service, client, two_pages) -> None:
    assert_error(client.post(OCR, content=b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
                             headers={"content-type": "application/pdf"}), 400, "pdf_invalid")
    assert_error(client.post(OCR, json={"image_base64": b64(encrypted(two_pages))}), 415, "pdf_encrypted")
    with TestClient(create_api(service_with(service, pdf_max_pages=1), workers=1, queue=2)) as one_page:
        body = assert_error(one_page.post(OCR, content=two_pages, headers={"content-type": "application/pdf"}),
                            413, "pdf_too_many_pages")
        assert "2 pages" in body["error"]["message"]
        assert one_page.get("/api/v1/health").json()["max_pdf_pages"] == 1


# ---------------------------------------------------------------- multi-page TIFFs


@pytest.fixture(scope="module")
def three_tiff() -> bytes:
    return tiff_bytes(text_pages(), compression="tiff_lzw")


def test_tiff_every_page_and_explain_one(client, three_tiff) -> None:
    """A 3-page TIFF is a document as a PDF is: three page answers, each the single-image answer's fields;
    ``page`` picks the page /explain explains; a single-page TIFF is answered as an image."""
    ways = [dict(content=three_tiff, headers={"content-type": "image/tiff"}),
            dict(files={"image": ("fax.tif", three_tiff, "image/tiff")}),
            dict(json={"image_base64": b64(three_tiff)})]
    answers = [client.post(OCR, **way) for way in ways]
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    body = answers[0].json()
    assert body["success"] is True and body["page_count"] == 3 and len(body["pages"]) == 3
    for page, word in zip(body["pages"], PAGE_WORDS):
        assert word in page["text"].replace(" ", ""), page["text"]
    assert [p["text"] for r in answers for p in r.json()["pages"]] == [p["text"] for p in body["pages"]] * 3
    explained = client.post(EXPLAIN, json={"image_base64": b64(three_tiff), "page": 2, "methods": ["alignment"]})
    assert explained.status_code == 200, explained.text
    assert explained.json()["page"] == 2 and explained.json()["text"] == body["pages"][2]["lines"][0]["text"]
    assert_error(client.post(EXPLAIN, json={"image_base64": b64(three_tiff), "page": 3}), 400, "invalid_page")
    single = client.post(OCR, content=tiff_bytes(text_pages()[1:2]), headers={"content-type": "image/tiff"}).json()
    assert "pages" not in single and PAGE_WORDS[1] in single["text"]


def test_tiff_refusals(service, three_tiff) -> None:
    with TestClient(create_api(service_with(service, pdf_max_pages=2), workers=1, queue=2)) as two_pages:
        body = assert_error(two_pages.post(OCR, content=three_tiff, headers={"content-type": "image/tiff"}),
                            413, "tiff_too_many_pages")
        assert "limit of 2" in body["error"]["message"]


def test_a_damaged_page_does_not_lose_the_other_pages(client) -> None:
    """A 3-page scan whose page 2 is over the pixel limit: pages 1 and 3 are answered, page 2 is an error entry
    in its place (the whole document used to be one 413); a document with no readable page is still refused."""
    receipt, _, label = text_pages()
    huge = Image.new("1", (8000, 6000), 1)  # 48 MP, over the 40 MP limit: refused on its declared size
    body = client.post(OCR, content=tiff_bytes([receipt, huge, label], compression="tiff_deflate"),
                       headers={"content-type": "image/tiff"})
    assert body.status_code == 200, body.text
    pages = body.json()["pages"]
    assert body.json()["page_count"] == 3 and [p["success"] for p in pages] == [True, False, True]
    assert PAGE_WORDS[0] in pages[0]["text"].replace(" ", "") and PAGE_WORDS[2] in pages[2]["text"].replace(" ", "")
    assert pages[1]["error"]["code"] == "image_too_large" and "page 2" in pages[1]["error"]["message"]
    assert_error(client.post(OCR, content=tiff_bytes([huge, huge], compression="tiff_deflate"),
                             headers={"content-type": "image/tiff"}), 400, "image_too_large")


# ---------------------------------------------------------------- image_url


def _png_bytes() -> bytes:
    return (EXAMPLES / "line_zh.png").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        if self.path == "/slow.png":
            time.sleep(2)
        body, ctype, status = {"/line.png": (_png_bytes(), "image/png", 200),
                               "/page.html": (b"<html>login</html>", "text/html", 200),
                               "/slow.png": (_png_bytes(), "image/png", 200)}.get(self.path, (b"no", "text/plain", 404))
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass


@pytest.fixture(scope="module")
def image_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.seen = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_image_url_off_by_default(client, image_server, monkeypatch) -> None:
    def no_lookup(*args, **kwargs):
        raise AssertionError("a name was looked up while URLs are off")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    before = len(image_server.seen)
    url = url_of(image_server, "/line.png")
    body = assert_error(client.post(OCR, json={"image_url": url}), 400, "url_disabled")
    assert "turned off" in body["error"]["message"]
    assert_error(client.post(OCR, files={"image_url": (None, url)}), 400, "url_disabled")
    assert_error(client.post(EXPLAIN, json={"image_url": url}), 400, "url_disabled")
    assert_error(client.post(OCR, json={"image_url": url, "image_base64": b64(_png_bytes())}), 422,
                 "conflicting_fields")
    assert len(image_server.seen) == before and client.get("/api/v1/health").json()["image_url_enabled"] is False


def test_image_url_on_refuses_private_addresses(service, image_server) -> None:
    """``OCR_ALLOW_URLS=1`` as deployed: our own loopback server is refused (403) and never asked."""
    before = len(image_server.seen)
    with TestClient(create_api(service_with(service, allow_urls=True), workers=1, queue=2)) as on:
        assert on.get("/api/v1/health").json()["image_url_enabled"] is True
        for url in (url_of(image_server, "/line.png"), "http://169.254.169.254/latest/meta-data/",
                    "http://[::1]/x.png", "http://10.0.0.1/a.png", "file:///etc/passwd", "http://2130706433/"):
            assert_error(on.post(OCR, json={"image_url": url}), 403, "url_not_allowed")
        assert_error(on.post(EXPLAIN, json={"image_url": "http://127.0.0.1/x.png"}), 403, "url_not_allowed")
    assert len(image_server.seen) == before


def test_image_url_fetched_and_read_like_an_upload(service, image_server) -> None:
    """With the test-only loopback switch: the URL's image gives the upload's answer; each failure its status."""
    loopback = service_with(service, allow_urls=True)
    loopback.url_policy = UrlPolicy(enabled=True, allow_loopback=True, total_timeout=0.8, connect_timeout=0.5)
    with TestClient(create_api(loopback, workers=1, queue=2)) as on:
        by_url = on.post(OCR, json={"image_url": url_of(image_server, "/line.png")})
        assert by_url.status_code == 200, by_url.text
        upload = on.post(OCR, content=_png_bytes(), headers={"content-type": "image/png"})
        assert by_url.json()["text"] == upload.json()["text"] and by_url.json()["lines"] == upload.json()["lines"]
        explained = on.post(EXPLAIN, json={"image_url": url_of(image_server, "/line.png"), "kind": "line",
                                           "methods": ["alignment"]})
        assert explained.status_code == 200, explained.text
        assert_error(on.post(OCR, json={"image_url": url_of(image_server, "/page.html")}), 415, "url_not_image")
        assert_error(on.post(OCR, json={"image_url": url_of(image_server, "/missing.png")}), 400, "url_fetch_failed")
        assert_error(on.post(OCR, json={"image_url": url_of(image_server, "/slow.png")}), 504, "url_timeout")
    loopback.url_policy = UrlPolicy(enabled=True, allow_loopback=True, max_bytes=1000)
    with TestClient(create_api(loopback, workers=1, queue=2)) as small:
        assert_error(small.post(OCR, json={"image_url": url_of(image_server, "/line.png")}), 413, "url_too_large")


# ---------------------------------------------------------------- statuses


def test_every_url_pdf_and_tiff_error_has_a_status_below_500() -> None:
    want = {errors.UrlDisabledError: 400, errors.UrlNotAllowedError: 403, errors.UrlTooLargeError: 413,
            errors.UrlNotImageError: 415, errors.UrlTimeoutError: 504, errors.UrlFetchError: 400,
            errors.PdfInvalidError: 400, errors.PdfEncryptedError: 415, errors.PdfTooLargeError: 413,
            errors.PdfTooManyPagesError: 413, errors.PdfTimeoutError: 504,
            errors.TiffInvalidError: 400, errors.TiffTooManyPagesError: 413}
    for error, status in want.items():
        api = ocr_error_to_api(error())
        assert (api.status, api.code) == (status, error.code), error
