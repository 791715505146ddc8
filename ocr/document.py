"""Is this upload a document of pages, and what are its pages? One answer for every face.

    doc = document_of(source, limits)   # bytes or a file path; None: one image (ocr.imageio reads it)
    if doc is not None:
        doc.kind, doc.page_count()        # "pdf" | "tiff"; pages, checked, nothing rendered or decoded
        for rgb in doc.pages(): ...       # HxWx3 uint8 RGB, one page in memory at a time
        rgb = doc.page(2)                 # one page, 0-based

A document is a PDF (rendered by :mod:`ocr.pdf`) or a TIFF of two pages or more (decoded by
:mod:`ocr.tiff`: scanned invoices and faxes arrive as both). A single-page TIFF, like every other
image, is an image. The service (so the REST API and the UI), the CLI and the batch ask here, so
no face reads a multi-page TIFF as its first page only, and a new document format is one branch here.

Limits: one :class:`ocr.pdf.PdfLimits` (``Settings.pdf_limits()``) for both kinds. Its
``max_pages`` (``OCR_PDF_MAX_PAGES``, 20) and ``max_bytes`` bound both (``pdf_too_many_pages`` /
``tiff_too_many_pages``); side, DPI and time are PDF rendering's own (a TIFF page is pixels already,
under the image pixel limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ocr import pdf, tiff
from ocr.errors import OCRError, PdfTooLargeError, TiffInvalidError, TiffTooManyPagesError
from ocr.pdf import DEFAULT_LIMITS, PdfLimits

#: bytes a signature is looked for in (a PDF may start after some whitespace)
HEAD_BYTES = 1024
#: the word a message uses for each kind
NAMES = {"pdf": "PDF", "tiff": "TIFF"}


@dataclass(frozen=True)
class Document:
    """A document's bytes, its kind ("pdf" or "tiff") and the limits its pages are read under."""

    kind: str
    data: bytes = field(repr=False)
    limits: PdfLimits = DEFAULT_LIMITS

    @property
    def name(self) -> str:
        """"PDF" or "TIFF", for messages."""
        return NAMES[self.kind]

    def page_count(self) -> int:
        """Pages, after the page limit and (PDF) the byte, password and damage checks; nothing rendered."""
        if self.kind == "pdf":
            return pdf.page_count(self.data, self.limits)
        return tiff.frame_count(self.data, self.limits.max_pages)

    def pages(self, indices: Iterable[int] | None = None, *, keep_going: bool = False
              ) -> Iterator[np.ndarray | OCRError]:
        """Each page (or each 0-based index in ``indices``) as RGB, in order, one at a time. The first page
        that cannot be read raises its error; with ``keep_going`` it is yielded in the page's place instead,
        and the pages after it are still read (one damaged page of a scan must not lose the others)."""
        if self.kind == "pdf":
            return pdf.render_pages(self.data, self.limits, indices, keep_going=keep_going)
        return tiff.read_frames(self.data, self.limits.max_pages, indices, keep_going=keep_going)

    def page(self, index: int) -> np.ndarray:
        """Page ``index`` (0-based) alone, as RGB."""
        if self.kind == "pdf":
            return pdf.render_page(self.data, index, self.limits)
        return tiff.read_frame(self.data, index, self.limits.max_pages)


def document_kind(head: bytes) -> str | None:
    """"pdf" or "tiff" from a file's first bytes, else None. A "tiff" may still be a one-page image."""
    if pdf.is_pdf(head):
        return "pdf"
    return "tiff" if tiff.is_tiff(head) else None


def document_of(source: Any, limits: PdfLimits = DEFAULT_LIMITS) -> Document | None:
    """``source`` (bytes, or a file path as the UI and the CLI pass it) as a document, or ``None``: an
    image (a single-page TIFF included), an array, or a path that is not a readable file (the image
    reader then says why). A PDF file over the byte limit is refused before it is read; a TIFF of more
    pages than the limit, before any page is decoded."""
    found = _sniffed(source, limits)
    if found is None:
        return None
    kind, data = found
    if kind == "tiff" and not _several_pages(data, limits):
        return None
    return Document(kind, data, limits)


def _sniffed(source: Any, limits: PdfLimits) -> tuple[str, bytes] | None:
    """(kind, bytes) of a source whose signature is a PDF's or a TIFF's, else None. Over the byte limit,
    a PDF is refused here and a TIFF left to the image reader, which refuses it as any image too large."""
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    found = (bytes(source[:HEAD_BYTES]), len(source)) if in_memory else _file_head(source)
    kind = document_kind(found[0]) if found else None
    if kind is None:
        return None
    size = found[1]
    if limits.max_bytes is not None and size > limits.max_bytes:
        if kind == "tiff":
            return None
        raise PdfTooLargeError(f"the PDF is {size / 2**20:.1f} MB, over the {limits.max_bytes / 2**20:.1f} MB limit")
    try:
        return kind, bytes(source) if in_memory else Path(source).read_bytes()
    except (OSError, ValueError):
        return None


def _file_head(source: Any) -> tuple[bytes, int] | None:
    """The first bytes and the size of a regular file at ``source`` (a str or Path), else None: what is not
    a readable file (a name too long, a NUL byte, a folder, missing) is left to the image reader."""
    if not isinstance(source, (str, Path)):
        return None
    try:
        path = Path(source)
        if not path.is_file():
            return None
        with path.open("rb") as f:
            return f.read(HEAD_BYTES), path.stat().st_size
    except (OSError, ValueError):
        return None


def _several_pages(data: bytes, limits: PdfLimits) -> bool:
    """True for a TIFF of two pages or more. One PIL cannot open at all is left to the image reader,
    which refuses it in its usual words; a damaged page table or too many pages is this document's error."""
    try:
        return tiff.frame_count(data, limits.max_pages) > 1
    except (TiffInvalidError, TiffTooManyPagesError):
        raise
    except OCRError:
        return False


__all__ = ["Document", "document_kind", "document_of"]
