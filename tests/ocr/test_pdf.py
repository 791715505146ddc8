"""ocr.pdf: PDFs built here with PIL (no binary fixtures) rendered page by page under every limit."""

from __future__ import annotations

import inspect
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocr.errors import (InvalidImageError, OCRError, PdfEncryptedError, PdfInvalidError, PdfTimeoutError,
                        PdfTooLargeError, PdfTooManyPagesError)
from ocr.pdf import PdfLimits, is_pdf, page_count, render_page, render_pages, render_scale

ROOT = Path(__file__).resolve().parents[2]
INVOICE = ROOT / "examples" / "invoice_zh.png"


def pdf_bytes(images: list[Image.Image], resolution: float = 100.0) -> bytes:
    """A PDF with one page per image (PIL embeds each image; ``resolution`` sets the page size)."""
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=images[1:], resolution=resolution)
    return buf.getvalue()


def encrypted(data: bytes) -> bytes:
    """``data`` with an incremental update adding a Standard-handler /Encrypt whose password is not empty."""
    prev = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    size = int(re.findall(rb"/Size (\d+)", data)[-1])
    root = re.findall(rb"/Root (\d+) 0 R", data)[-1].decode()
    obj = (f"{size} 0 obj\n<< /Filter /Standard /V 1 /R 2 /O <{'ab' * 32}> /U <{'cd' * 32}> /P -4 >>\n"
           "endobj\n").encode()
    xref_at = len(data) + len(obj)
    tail = (f"xref\n{size} 1\n{len(data):010d} 00000 n \ntrailer\n<< /Size {size + 1} /Root {root} 0 R "
            f"/Prev {prev} /Encrypt {size} 0 R /ID [<{'00' * 16}><{'00' * 16}>] >>\nstartxref\n{xref_at}\n%%EOF\n")
    return data + obj + tail.encode()


def is_red(pixel: np.ndarray) -> bool:
    """PIL stores RGB pages as JPEG, so pure red comes back within a few levels."""
    r, g, b = (int(v) for v in pixel)
    return r > 240 and g < 16 and b < 16


@pytest.fixture(scope="module")
def invoice() -> Image.Image:
    return Image.open(INVOICE).convert("RGB")


@pytest.fixture(scope="module")
def three_pages(invoice) -> bytes:
    return pdf_bytes([invoice, invoice.rotate(90, expand=True), Image.new("RGB", (300, 200), (255, 0, 0))])


def test_sniff() -> None:
    assert is_pdf(b"%PDF-1.7\n...") and is_pdf(b"\r\n  %PDF-1.4")
    assert not is_pdf(INVOICE.read_bytes()) and not is_pdf(b"") and not is_pdf(b"PDF-1.4")


def test_pages_stream_in_order_at_their_scans_own_size(three_pages, invoice) -> None:
    gen = render_pages(three_pages)
    assert inspect.isgenerator(gen)
    pages = list(gen)
    assert len(pages) == page_count(three_pages) == 3
    for rgb in pages:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.flags.c_contiguous
    # each page is one image covering it (a scan): rendered at the image's own pixels, not at 200 dpi
    # (which made 2000x1400 of the 1000x700 px invoice: its lines then read differently from the image's);
    # drawn pages keep the 200 dpi / 2000 px rule: tests/ocr/test_pdf_scan.py
    assert pages[0].shape[:2] == (700, 1000) and pages[1].shape[:2] == (1000, 700)
    # the red page: RGB order, not PDFium's native BGR
    assert pages[2].shape[:2] == (200, 300) and is_red(pages[2][100, 150])
    page = np.asarray(pages[0], dtype=np.float32)
    assert np.abs(page - np.asarray(invoice, dtype=np.float32)).mean() < 4  # the same pixels (PIL stored a JPEG)


def test_render_scale_limits() -> None:
    assert render_scale(595, 842) == pytest.approx(2000 / 842)  # A4: the 2000 px side binds
    assert render_scale(144, 72) == pytest.approx(200 / 72)     # a small receipt: 200 dpi binds
    with pytest.raises(PdfInvalidError):
        render_scale(0, 100)


def test_one_page_by_index(three_pages) -> None:
    assert is_red(render_page(three_pages, 2)[10, 10])
    with pytest.raises(PdfInvalidError, match="no page 4"):
        render_page(three_pages, 3)


@pytest.mark.parametrize("limits, error, code", [
    (PdfLimits(max_pages=2), PdfTooManyPagesError, "pdf_too_many_pages"),
    (PdfLimits(max_bytes=1000), PdfTooLargeError, "pdf_too_large"),
    (PdfLimits(timeout_s=0.0), PdfTimeoutError, "pdf_timeout"),
])
def test_limits(three_pages, limits, error, code) -> None:
    with pytest.raises(error) as info:
        list(render_pages(three_pages, limits))
    assert info.value.code == code and "Traceback" not in str(info.value)


def test_too_many_pages_is_refused_before_any_page(three_pages) -> None:
    gen = render_pages(three_pages, PdfLimits(max_pages=2))
    with pytest.raises(PdfTooManyPagesError, match="3 pages, over the limit of 2"):
        next(gen)


@pytest.mark.parametrize("make", [
    lambda good: good[: len(good) // 2],  # truncated
    lambda good: b"%PDF-1.4\n%%EOF\n",       # a header and nothing else
    lambda good: b"hello, world",            # not a PDF at all
    lambda good: b"",                        # empty
])
def test_broken_pdfs_are_invalid(three_pages, make) -> None:
    with pytest.raises(PdfInvalidError) as info:
        list(render_pages(make(three_pages)))
    assert info.value.code == "pdf_invalid"
    assert isinstance(info.value, InvalidImageError)  # callers that map image errors need no change


def test_encrypted(three_pages) -> None:
    with pytest.raises(PdfEncryptedError) as info:
        page_count(encrypted(three_pages))
    assert info.value.code == "pdf_encrypted" and "password" in str(info.value)


def test_an_unencrypted_pdf_is_never_called_encrypted_after_one_that_is(three_pages) -> None:
    """PDFium keeps its last error code process-wide: a PDF that fails without setting one (no page at all) used
    to be answered with the previous request's "password-protected"."""
    body = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    no_page = body + (b"xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n"
                      b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % len(body))
    with pytest.raises(PdfEncryptedError):
        page_count(encrypted(three_pages))
    with pytest.raises(PdfInvalidError) as info:
        page_count(no_page)
    assert info.value.code == "pdf_invalid" and "password" not in str(info.value)


def test_codes_are_distinct() -> None:
    errors = [PdfInvalidError, PdfEncryptedError, PdfTooLargeError, PdfTooManyPagesError, PdfTimeoutError]
    assert all(issubclass(e, OCRError) for e in errors)
    assert len({e.code for e in errors}) == len(errors)


def test_document_of_pdf_bytes_and_paths(three_pages, tmp_path) -> None:
    """``ocr.document.document_of`` (which replaced ``pdf_data``): a PDF as bytes or a path, anything else None."""
    from ocr.document import document_of

    (tmp_path / "scan.pdf").write_bytes(three_pages)
    for source in (three_pages, tmp_path / "scan.pdf", str(tmp_path / "scan.pdf")):
        doc = document_of(source)
        assert doc is not None and doc.kind == "pdf" and doc.data == three_pages
    for not_pdf in (INVOICE, str(INVOICE), INVOICE.read_bytes(), np.zeros((4, 4, 3), np.uint8), "x" * 5000, "a\0b",
                    tmp_path / "missing.pdf"):
        assert document_of(not_pdf) is None
    with pytest.raises(PdfTooLargeError):
        document_of(tmp_path / "scan.pdf", PdfLimits(max_bytes=100))


def test_service_pages_of_an_upload(service, three_pages, tmp_path) -> None:
    """What the UI's page picker calls: an upload (bytes or a file path) that may be a PDF -> pages."""
    from ocr.service import InvalidPageError

    (tmp_path / "scan.pdf").write_bytes(three_pages)
    for source in (three_pages, str(tmp_path / "scan.pdf")):
        pages = service.load_pages(source)
        assert service.page_count(source) == 3 and len(pages) == 3
        assert all(p.ndim == 3 and p.dtype == np.uint8 for p in pages) and is_red(pages[2][10, 10])
        assert np.array_equal(service.load_page(source, 2), pages[2])
    image = service.load_pages(INVOICE)
    assert len(image) == 1 and service.page_count(INVOICE) == 1 and service.load_page(INVOICE, 0) == INVOICE
    for source, index in ((three_pages, 3), (three_pages, -1), (INVOICE, 1)):
        with pytest.raises(InvalidPageError):
            service.load_page(source, index)


def test_keep_going_renders_the_pages_after_one_pdfium_cannot(three_pages, monkeypatch) -> None:
    """A page PDFium fails on ends the pages by default; with ``keep_going`` it is yielded as its error in its
    place and the next page is rendered (PDFium's failure is simulated on page 2: a real one is rare to make)."""
    import pypdfium2

    import ocr.pdf

    real = ocr.pdf._render_one

    def fail_on_page_two(pdfium, doc, index, limits):
        if index == 1:
            raise pypdfium2.PdfiumError("Failed to render page")
        return real(pdfium, doc, index, limits)

    monkeypatch.setattr(ocr.pdf, "_render_one", fail_on_page_two)
    with pytest.raises(PdfInvalidError, match="page 2 cannot be rendered"):
        list(render_pages(three_pages))
    first, second, third = render_pages(three_pages, keep_going=True)
    assert isinstance(second, PdfInvalidError) and "page 2" in second.message
    assert first.shape[:2] == (700, 1000) and is_red(third[100, 150])
