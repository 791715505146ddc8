"""``python -m ocr page`` on PDFs and multi-page TIFFs (every page) and ``page`` / ``recognize`` on links (only with
OCR_ALLOW_URLS=1, public addresses only); links are served by a server started on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from ocr.__main__ import main
from ocr.settings import Settings
from ocr.url_fetch import UrlPolicy
from tests.ocr.test_tiff import PAGE_WORDS, text_pages, tiff_bytes

ROOT = Path(__file__).resolve().parents[2]
LINE = ROOT / "examples" / "line_zh.png"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        body = LINE.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def link():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/line.png", server
    server.shutdown()
    server.server_close()


def test_page_reads_every_pdf_page(tmp_path, capsys):
    pdf = tmp_path / "two.pdf"
    line = Image.open(LINE).convert("RGB")
    line.save(pdf, format="PDF", save_all=True, append_images=[line], resolution=150)
    assert main(["--threads", "1", "page", "--json", str(pdf)]) == 0
    rows = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    assert [(r["image"], r["page"]) for r in rows] == [(str(pdf), 1), (str(pdf), 2)]
    assert all("1,234.56" in r["text"] for r in rows)
    assert main(["--threads", "1", "page", str(pdf)]) == 0
    assert f"== {pdf} page 2 ==" in capsys.readouterr().out
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    assert main(["--threads", "1", "page", str(tmp_path / "bad.pdf")]) == 1  # one error line, no traceback
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.pdf'}\terror: the PDF cannot be opened" in err and "Traceback" not in err


def test_page_reads_every_tiff_page_and_recognize_points_to_it(tmp_path, capsys):
    """A 3-page TIFF: ``page`` prints each page, numbered, each with its own text; ``recognize`` says what it is
    and points to ``page`` (it used to read page 1 alone); a single-page TIFF stays an image for both."""
    fax = tmp_path / "fax.tif"
    fax.write_bytes(tiff_bytes(text_pages()))
    assert main(["--threads", "1", "page", "--json", str(fax)]) == 0
    rows = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    assert [(r["image"], r["page"]) for r in rows] == [(str(fax), 1), (str(fax), 2), (str(fax), 3)]
    for row, word in zip(rows, PAGE_WORDS):
        assert word in row["text"].replace(" ", ""), row["text"]
    assert main(["--threads", "1", "page", str(fax)]) == 0
    assert f"== {fax} page 3 ==" in capsys.readouterr().out
    assert main(["--threads", "1", "recognize", str(fax)]) == 1
    err = capsys.readouterr().err
    assert f"{fax}\terror: it is a TIFF of 3 pages" in err and "python -m ocr page" in err
    one = tmp_path / "one.tiff"
    one.write_bytes(tiff_bytes([Image.open(LINE).convert("RGB")]))
    assert main(["--threads", "1", "recognize", str(one)]) == 0
    assert "1,234.56" in capsys.readouterr().out
    assert main(["--threads", "1", "page", "--json", str(one)]) == 0
    (row,) = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    assert "page" not in row and "1,234.56" in row["text"]


def test_page_prints_the_pages_after_a_damaged_one(tmp_path, capsys):
    """Page 2 of 3 over the pixel limit: pages 1 and 3 are printed, page 2 is one error line, exit status 1
    (the pages after the damaged one used to be lost)."""
    receipt, _, label = text_pages()
    fax = tmp_path / "fax.tif"
    fax.write_bytes(tiff_bytes([receipt, Image.new("1", (8000, 6000), 1), label]))
    assert main(["--threads", "1", "page", "--json", str(fax)]) == 1
    out, err = capsys.readouterr()
    rows = [json.loads(r) for r in out.splitlines()]
    assert [r["page"] for r in rows] == [1, 3] and PAGE_WORDS[2] in rows[1]["text"].replace(" ", "")
    assert f"{fax} page 2\terror: page 2 of the TIFF" in err and "Traceback" not in err


def test_links_are_off_by_default(link, monkeypatch, capsys):
    url, server = link
    monkeypatch.delenv("OCR_ALLOW_URLS", raising=False)
    before = len(server.seen)
    assert main(["recognize", url]) == 1
    assert "OCR_ALLOW_URLS=1" in capsys.readouterr().err
    assert len(server.seen) == before


def test_links_on_refuse_private_addresses(link, monkeypatch, capsys):
    url, server = link
    monkeypatch.setenv("OCR_ALLOW_URLS", "1")
    before = len(server.seen)
    assert main(["recognize", url]) == 1  # our loopback server: refused, never asked
    assert "not allowed" in capsys.readouterr().err and len(server.seen) == before


def test_links_are_read_when_allowed(link, monkeypatch, capsys):
    """The fetch itself, with the test-only loopback switch: the link reads like the file."""
    url, server = link
    monkeypatch.setattr(Settings, "url_policy", lambda self: UrlPolicy(enabled=True, allow_loopback=True))
    assert main(["recognize", "--json", url]) == 0
    by_link = json.loads(capsys.readouterr().out)
    assert main(["recognize", "--json", str(LINE)]) == 0
    assert by_link["text"] == json.loads(capsys.readouterr().out)["text"] and by_link["image"] == url
    assert main(["--threads", "1", "page", url]) == 0
    assert "1,234.56" in capsys.readouterr().out
