"""Multi-page TIFFs (``ocr.tiff``, ``ocr.document``, the service): TIFFs built here with PIL, a document of
pages exactly as a PDF is; a single-page TIFF stays an image. REST, UI, CLI and batch use the helpers below."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, TiffImagePlugin

from ocr.document import Document, document_kind, document_of
from ocr.errors import ImageTooLargeError, InvalidImageError, TiffInvalidError, TiffTooManyPagesError
from ocr.imageio import load_image
from ocr.pdf import PdfLimits
from ocr.tiff import frame_count, read_frame, read_frames

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def tiff_bytes(images: list[Image.Image], **options) -> bytes:
    """A TIFF with one page per image (``save_all``), as scanners and fax servers write them."""
    buf = io.BytesIO()
    images[0].save(buf, format="TIFF", save_all=True, append_images=images[1:], **options)
    return buf.getvalue()


def text_pages() -> list[Image.Image]:
    """Three pages of different text, in different modes: a receipt's head (RGB), a Chinese line
    (grayscale, as scans often are) and a shipping label's head (RGB)."""
    receipt = Image.open(EXAMPLES / "receipt_en.png").convert("RGB").crop((0, 0, 420, 130))
    line = Image.open(EXAMPLES / "line_zh.png").convert("L")
    label = Image.open(EXAMPLES / "shipping_label.png").convert("RGB").crop((0, 0, 800, 120))
    return [receipt, line, label]


#: a word each of the three text pages is read with (and the others are not)
PAGE_WORDS = ("GREENLEAF", "1,234.56", "SWIFTWAY")


def colour_pages() -> list[Image.Image]:
    """Three small pages, each its own size, colour and mode (RGBA is composited on white, as an image is)."""
    return [Image.new("RGB", (40, 30), (200, 10, 10)), Image.new("L", (50, 20), 90),
            Image.new("RGBA", (20, 60), (0, 0, 255, 0))]


@pytest.fixture(scope="module")
def three() -> bytes:
    return tiff_bytes(colour_pages())


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any page's pixel data is decoded (headers may be read)."""

    def refuse(self):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "load", refuse)


def test_pages_counted_and_each_converted_as_an_image_is(three) -> None:
    assert frame_count(three) == 3
    pages = list(read_frames(three))
    # each page exactly what load_image makes of that page saved alone: the same conversion rules
    for page, image in zip(pages, colour_pages()):
        assert np.array_equal(page, load_image(image)) and page.flags.c_contiguous
    assert [p.shape for p in pages] == [(30, 40, 3), (20, 50, 3), (60, 20, 3)]
    assert tuple(pages[0][0, 0]) == (200, 10, 10) and tuple(pages[1][0, 0]) == (90, 90, 90)
    assert tuple(pages[2][0, 0]) == (255, 255, 255)  # transparent: white, as a single RGBA image
    assert np.array_equal(read_frame(three, 1), pages[1])
    assert [p.shape for p in read_frames(three, pages=[2, 0])] == [(60, 20, 3), (30, 40, 3)]


def test_a_palette_page_beside_pages_of_other_modes_is_read_like_the_rest() -> None:
    """Pillow keeps a palette page's state when it seeks on: every page is read from a fresh file, so a scan
    with a colour (palette) cover and bilevel, CMYK or RGB pages loses none of them (found by a black-box pass)."""
    base = Image.open(EXAMPLES / "receipt_en.png").convert("RGB").crop((0, 0, 200, 120))
    modes = [base.convert("1"), base.convert("P"), base, base.convert("CMYK"), base.convert("P"), base.convert("L")]
    data = tiff_bytes(modes)
    pages = list(read_frames(data))
    assert len(pages) == len(modes)
    for page, image in zip(pages, modes):
        assert np.array_equal(page, load_image(image))
    assert np.array_equal(read_frame(data, 2), load_image(base))


def test_a_fax_tiff_group4(three) -> None:
    """A fax: bilevel pages, CCITT group 4; black and white come back as 0 and 255."""
    white, black = Image.new("1", (64, 32), 1), Image.new("1", (64, 32), 0)
    fax = tiff_bytes([white, black, white], compression="group4")
    pages = list(read_frames(fax))
    assert len(pages) == 3 and pages[0].min() == 255 and pages[1].max() == 0


def test_too_many_pages_refused_before_any_page_is_decoded(three, no_decoding) -> None:
    with pytest.raises(TiffTooManyPagesError) as info:
        frame_count(three, max_pages=2)
    assert info.value.code == "tiff_too_many_pages" and "limit of 2" in str(info.value)
    assert isinstance(info.value, ImageTooLargeError)  # callers that map image errors answer it sensibly
    with pytest.raises(TiffTooManyPagesError):
        next(read_frames(three, max_pages=2))
    with pytest.raises(TiffTooManyPagesError):
        document_of(three, PdfLimits(max_pages=2))


def test_pixel_limit_per_page_on_the_declared_size(no_decoding) -> None:
    data = tiff_bytes([Image.new("RGB", (40, 30)), Image.new("RGB", (500, 400))])
    with pytest.raises(ImageTooLargeError, match="page 2 of the TIFF: the image is 500x400"):
        read_frame(data, 1, max_pixels=10_000)


def test_damaged_pages_are_a_clear_error(three) -> None:
    # the first page's pointer to the next page aims far past the end of the file
    first = struct.unpack("<I", three[4:8])[0]
    entries = struct.unpack("<H", three[first:first + 2])[0]
    at = first + 2 + 12 * entries
    bad_pointer = three[:at] + struct.pack("<I", 10**8) + three[at + 4:]
    doc = document_of(bad_pointer)  # the unreachable page counts as the last one: page 1 is not lost with it
    assert doc is not None and doc.page_count() == 2 and doc.page(0).shape == (30, 40, 3)
    with pytest.raises(TiffInvalidError, match="page 2") as info:
        doc.page(1)
    assert info.value.code == "tiff_invalid" and isinstance(info.value, InvalidImageError)
    # the last page's pixels cut short (PIL writes each page's header before its pixels)
    big = tiff_bytes([Image.new("RGB", (40, 30), "red"), Image.effect_noise((200, 200), 40).convert("RGB")])
    with pytest.raises(TiffInvalidError, match="page 2 of the TIFF") as info:
        list(read_frames(big[:-5000]))
    assert "Traceback" not in str(info.value)
    with pytest.raises(TiffInvalidError, match="no page 4"):
        read_frame(three, 3)


def test_document_dispatch(three, tmp_path) -> None:
    (tmp_path / "scan.tif").write_bytes(three)
    for source in (three, tmp_path / "scan.tif", str(tmp_path / "scan.tif")):
        doc = document_of(source)
        assert isinstance(doc, Document) and doc.kind == "tiff" and doc.name == "TIFF" and doc.page_count() == 3
        assert np.array_equal(doc.page(2), load_image(colour_pages()[2]))
        assert len(list(doc.pages())) == 3
    assert document_kind(three[:16]) == "tiff" and document_kind(b"%PDF-1.4") == "pdf"
    assert document_kind((EXAMPLES / "line_zh.png").read_bytes()) is None


def test_a_single_page_tiff_is_an_image(tmp_path) -> None:
    one = tiff_bytes([Image.new("RGB", (40, 30), (1, 2, 3))])
    (tmp_path / "one.tiff").write_bytes(one)
    assert frame_count(one) == 1
    assert document_of(one) is None and document_of(tmp_path / "one.tiff") is None
    assert tuple(load_image(one)[0, 0]) == (1, 2, 3)
    # a TIFF over the byte limit is left to the image reader, which refuses it as any image
    assert document_of(tiff_bytes(colour_pages()), PdfLimits(max_bytes=100)) is None
    # bytes PIL cannot open (a TIFF signature, then junk) are left to the image reader's own words
    assert document_of(b"II*\x00" + b"\xff" * 60) is None


def test_load_image_warns_that_it_reads_page_one_only(three, caplog) -> None:
    """A multi-page TIFF given to load_image directly (the Python API) is not dropped silently: the log says so."""
    with caplog.at_level("WARNING", logger="ocr.imageio"):
        assert np.array_equal(load_image(three), load_image(colour_pages()[0]))
        assert "first page only" in caplog.text
        caplog.clear()
        load_image(tiff_bytes(colour_pages()[:1]))
        assert caplog.text == ""


def test_service_reads_every_page(service, tmp_path) -> None:
    """The service's answer for a 3-page TIFF holds 3 pages, each as that page alone is read; a single-page
    TIFF is answered as an image (no ``pages``)."""
    from ocr.service import InvalidPageError

    pages = text_pages()
    data = tiff_bytes(pages, compression="tiff_lzw")
    (tmp_path / "scan.tiff").write_bytes(data)
    answer = service.upload_answer(data)
    assert answer["page_count"] == 3 and len(answer["pages"]) == 3
    for page, image, word in zip(answer["pages"], pages, PAGE_WORDS):
        assert word in page["text"], page["text"]
        assert page["text"] == service.page_answer(load_image(image))["text"]
    for source in (data, str(tmp_path / "scan.tiff")):
        assert service.page_count(source) == 3 and len(service.load_pages(source)) == 3
        assert np.array_equal(service.load_page(source, 1), load_image(pages[1]))
    with pytest.raises(InvalidPageError):
        service.load_page(data, 3)
    one = tiff_bytes(pages[1:2])
    single = service.upload_answer(one)
    assert "pages" not in single and PAGE_WORDS[1] in single["text"]
    assert service.page_count(one) == 1 and service.load_page(one, 0) is one


def test_keep_going_reads_the_pages_after_a_damaged_one() -> None:
    """A page that cannot be read ends the pages by default; with ``keep_going`` it is yielded as its error in
    its place and the pages after it are read (one bad page of a scan must not lose the rest)."""
    data = tiff_bytes([Image.new("RGB", (40, 30), "red"), Image.new("RGB", (500, 400)), Image.new("RGB", (20, 60), "blue")])
    with pytest.raises(ImageTooLargeError, match="page 2"):
        list(read_frames(data, max_pixels=10_000))
    first, second, third = read_frames(data, max_pixels=10_000, keep_going=True)
    assert tuple(first[0, 0]) == (255, 0, 0) and tuple(third[0, 0]) == (0, 0, 255)
    assert isinstance(second, ImageTooLargeError) and "page 2" in second.message


def test_a_tiff_cut_off_in_transfer_keeps_the_pages_before_the_cut() -> None:
    """A two-page scan cut off halfway (the second page's header lost) used to fail as a whole while its pages
    were counted, so the readable first page was lost too (black-box pass)."""
    pages = [Image.open(EXAMPLES / "receipt_en.png").convert("L"), Image.open(EXAMPLES / "invoice_zh.png").convert("L")]
    whole = tiff_bytes(pages, compression="tiff_deflate")
    first_page_end = len(tiff_bytes(pages[:1], compression="tiff_deflate"))
    cut = whole[: first_page_end + 200]
    doc = document_of(cut)
    assert doc is not None and doc.page_count() == 2
    first, second = doc.pages(keep_going=True)
    assert first.shape[:2] == (900, 420) and isinstance(second, TiffInvalidError) and "page 2" in second.message
