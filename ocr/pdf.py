"""PDF documents -> RGB page images, one page at a time, under limits.

    from ocr.pdf import is_pdf, page_count, render_pages
    if is_pdf(data):
        for rgb in render_pages(data):          # HxWx3 uint8, streamed: one page in memory at a time
            answer = reader(rgb)

Invoices arrive as PDFs as often as images (and as multi-page TIFFs: :mod:`ocr.tiff`; callers ask
:mod:`ocr.document`, which dispatches to either). Rendering uses PDFium (Chrome's PDF engine) through
``pypdfium2``: it is maintained, ships wheels with the engine inside (no system package, no
Ghostscript) and renders scanned and born-digital PDFs alike.

Limits, each answered with its own :class:`~ocr.errors.OCRError` (stable codes):

* bytes: over ``max_bytes`` (the image limit, :data:`ocr.imageio.MAX_BYTES`) -> ``pdf_too_large``,
  checked before PDFium sees anything;
* pages: more than ``max_pages`` (20) -> ``pdf_too_many_pages``, checked when the document opens,
  before any page is rendered;
* pixels: each page is rendered so its longer side is at most ``max_side`` (2000 px: the size the
  detector reads pages at, so more pixels would only cost time). A scanned page (one raster image
  covering most of it, no visible text) is rendered at its image's own pixel
  density, so the page reads exactly as the scan's image would: resampling a 72 dpi receipt to
  200 dpi splits its lines, and a page tiny in inches must not shrink its scan to a few pixels. Any
  other page (born-digital: vector text, drawings, several images) is rendered at most ``max_dpi``
  (200: a small receipt is not blown up into a blurry poster);
* time: PDFium time spent on one document (opening and rendering, not the caller's work between
  pages) past ``timeout_s`` -> ``pdf_timeout``. It is checked between pages: PDFium cannot be
  interrupted inside one page, so one pathological page can overrun by its own render time;
* a password -> ``pdf_encrypted``; anything PDFium cannot open or render -> ``pdf_invalid``.

PDFium is not thread-safe (not even for different documents), so every call into it holds one
process-wide lock. Processes (the batch runner's workers, Ray actors) each have their own PDFium.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from ocr.errors import (PdfEncryptedError, PdfInvalidError, PdfTimeoutError, PdfTooLargeError,
                        PdfTooManyPagesError)
from ocr.imageio import MAX_BYTES

log = logging.getLogger(__name__)

MAX_PAGES = 20
MAX_SIDE = 2000
MAX_DPI = 200
TIMEOUT_S = 60.0
#: PDF user-space units per inch
POINTS_PER_INCH = 72.0
#: a page is a scan when one image covers at least this share of it (a scan on a slightly larger page)
SCAN_COVER = 0.8
#: page objects looked at before a page is called drawn, not scanned: bounds the look under the lock
#: (a vector page may hold thousands; a scan holds its image and perhaps a few more)
SCAN_MAX_OBJECTS = 64
#: drawn objects (paths, shadings) a scan may carry besides its image: a white background, a frame, a stamp
SCAN_MAX_DRAWN = 8
#: an image smaller than this (px, longer side) is a logo or a thumbnail, not a scan: its page keeps the dpi rule
SCAN_MIN_SIDE = 200
#: PDFium's sizes are float32 and pypdfium2 rounds a page's pixels up: a scan's scale is this share less, so a
#: 900 px scan on a 21.6 pt page is 900 px, not 901
_HAIR = 1e-5

_LOCK = threading.Lock()


@dataclass(frozen=True)
class PdfLimits:
    """What one document may cost; ``None`` disables the byte or time limit. ``max_pages`` and
    ``max_bytes`` bound a multi-page TIFF too (:mod:`ocr.document`); the rest is PDF rendering's own."""

    max_pages: int = MAX_PAGES
    max_bytes: int | None = MAX_BYTES
    max_side: int = MAX_SIDE
    max_dpi: float = MAX_DPI
    timeout_s: float | None = TIMEOUT_S


DEFAULT_LIMITS = PdfLimits()


def is_pdf(data: bytes) -> bool:
    """True if ``data`` starts like a PDF (``%PDF-``, after optional whitespace, as ocr.imageio sniffs)."""
    return bytes(data[:1024]).lstrip()[:5] == b"%PDF-"


def render_scale(width_pt: float, height_pt: float, max_side: int = MAX_SIDE, max_dpi: float = MAX_DPI) -> float:
    """Pixels per PDF point: the largest that keeps the longer side <= ``max_side`` and DPI <= ``max_dpi``."""
    if not (width_pt > 0 and height_pt > 0):
        raise PdfInvalidError(f"a page has no size ({width_pt:g} x {height_pt:g} pt)")
    return min(max_dpi / POINTS_PER_INCH, max_side / max(width_pt, height_pt))


def scan_scale(px_per_pt: float, width_pt: float, height_pt: float, max_side: int = MAX_SIDE) -> float:
    """Pixels per PDF point for a scanned page: its image's own density (its pixels 1:1, never enlarged),
    the longer side still <= ``max_side``. ``max_dpi`` does not apply: a scan's pixels are its resolution."""
    if not (width_pt > 0 and height_pt > 0):
        raise PdfInvalidError(f"a page has no size ({width_pt:g} x {height_pt:g} pt)")
    return min(px_per_pt, max_side / max(width_pt, height_pt)) * (1 - _HAIR)


def _page_matrix(obj: Any) -> Any:
    """``obj``'s matrix to page space: an object inside a Form XObject is placed by its form(s) too."""
    matrix = obj.get_matrix()
    container = obj.container
    while container is not None:
        matrix = matrix.multiply(container.get_matrix())
        container = container.container
    return matrix


def _image_density(image: Any, matrix: Any) -> float | None:
    """Image pixels per page point (the denser axis: no pixel of the scan is lost), or None for an image
    too small to be a scan or placed with no size."""
    px_w, px_h = image.get_px_size()
    width_pt, height_pt = math.hypot(matrix.a, matrix.b), math.hypot(matrix.c, matrix.d)
    if max(px_w, px_h) < SCAN_MIN_SIDE or not (width_pt > 0 and height_pt > 0):
        return None
    return max(px_w / width_pt, px_h / height_pt)


def _cover(rect: tuple[float, float, float, float], box: tuple[float, float, float, float]) -> float:
    """The share of ``box`` (left, bottom, right, top) that ``rect`` covers."""
    w = min(rect[2], box[2]) - max(rect[0], box[0])
    h = min(rect[3], box[3]) - max(rect[1], box[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return max(w, 0.0) * max(h, 0.0) / area if area > 0 else 0.0


def _sole_image(pdfium: Any, page: Any) -> Any | None:
    """The page's one image if it is (essentially) all the page shows, else None: visible text, a second
    image, more than a few drawn objects or too many objects to look at all make it a drawn page. Text
    drawn invisibly (the searchable layer OCR software lays over a scan) is not shown, so does not count."""
    raw = pdfium.raw
    image, drawn = None, 0
    for seen, obj in enumerate(page.get_objects(max_depth=4), start=1):
        kind = obj.type
        if seen > SCAN_MAX_OBJECTS or (kind == raw.FPDF_PAGEOBJ_IMAGE and image is not None):
            return None
        if kind == raw.FPDF_PAGEOBJ_IMAGE:
            image = obj
        elif kind == raw.FPDF_PAGEOBJ_TEXT:
            if raw.FPDFTextObj_GetTextRenderMode(obj.raw) != raw.FPDF_TEXTRENDERMODE_INVISIBLE:
                return None
        elif kind != raw.FPDF_PAGEOBJ_FORM:
            drawn += 1
            if drawn > SCAN_MAX_DRAWN:
                return None
    return image


def _scan_density(pdfium: Any, page: Any) -> float | None:
    """Pixels per point of the scan a page is (one image covering at least ``SCAN_COVER`` of it, nothing
    else visible but a few drawn objects), else None: the page is drawn and keeps the dpi rule. Looking
    is an optimisation, so anything PDFium cannot answer here means "not a scan", never a failed page."""
    try:
        image = _sole_image(pdfium, page)
        if image is None:
            return None
        matrix = _page_matrix(image)
        if _cover(matrix.on_rect(0, 0, 1, 1), page.get_bbox()) < SCAN_COVER:
            return None
        return _image_density(image, matrix)
    except pdfium.PdfiumError:
        return None


def _page_scale(pdfium: Any, page: Any, limits: PdfLimits) -> float:
    """Pixels per point for ``page``: a scan's own density, or the dpi rule for a drawn page."""
    width_pt, height_pt = page.get_size()
    density = _scan_density(pdfium, page)
    if density is None:
        return render_scale(width_pt, height_pt, limits.max_side, limits.max_dpi)
    return scan_scale(density, width_pt, height_pt, limits.max_side)


class _Clock:
    """PDFium time spent on one document, against its limit."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.spent = 0.0

    @contextmanager
    def timed(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.spent += time.perf_counter() - started

    def check(self, pages_done: int) -> None:
        if self.limit is not None and self.spent > self.limit:
            raise PdfTimeoutError(f"rendering the PDF took over {self.limit:g} s "
                                  f"({pages_done} page(s) rendered); split or simplify the document")


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError as exc:  # a broken install, not the user's fault: say what is missing
        raise PdfInvalidError("PDF support is not installed (pip install pypdfium2)") from exc
    return pypdfium2


def _open(pdfium: Any, data: bytes, limits: PdfLimits) -> Any:
    """The opened document; refuses oversize bytes, passwords, damage and too many pages."""
    if not data:
        raise PdfInvalidError("the PDF is empty")
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise PdfTooLargeError(f"the PDF is {len(data) / 2**20:.1f} MB, over the "
                               f"{limits.max_bytes / 2**20:.1f} MB limit")
    if not is_pdf(data):
        raise PdfInvalidError("not a PDF (it does not start with %PDF-)")
    raw = pdfium.raw
    try:
        doc = pdfium.PdfDocument(bytes(data))
    except pdfium.PdfiumError as exc:
        # PDFium's error code is process-wide and some failures (a document with no page) leave the previous
        # failure's code in place: a password only counts where the file has an /Encrypt dictionary (the spec
        # puts it in the trailer, or in an xref stream's dictionary, both uncompressed)
        code = getattr(exc, "err_code", None)
        if code in (raw.FPDF_ERR_PASSWORD, raw.FPDF_ERR_SECURITY) and b"/Encrypt" in data:
            raise PdfEncryptedError() from None
        reason = _reason(exc) if code == raw.FPDF_ERR_FORMAT else "damaged, or no page"
        raise PdfInvalidError(f"the PDF cannot be opened ({reason})") from None
    pages = len(doc)
    if pages < 1:
        doc.close()
        raise PdfInvalidError("the PDF has no pages")
    if pages > limits.max_pages:
        doc.close()
        raise PdfTooManyPagesError(f"the PDF has {pages} pages, over the limit of {limits.max_pages}; "
                                   "split it into smaller documents")
    return doc


def _reason(exc: Exception) -> str:
    """PDFium's own words without pypdfium2's prefix: 'Data format error', 'File access error', ..."""
    text = str(exc)
    start, end = text.find("(PDFium: "), text.rfind(")")
    return text[start + 9:end] if 0 <= start < end else text


def page_count(data: bytes, limits: PdfLimits = DEFAULT_LIMITS) -> int:
    """Pages in the document, after the same checks as :func:`render_pages` (nothing rendered)."""
    pdfium = _pdfium()
    with _LOCK:
        doc = _open(pdfium, data, limits)
        try:
            return len(doc)
        finally:
            doc.close()


def _render_one(pdfium: Any, doc: Any, index: int, limits: PdfLimits) -> np.ndarray:
    """Page ``index`` (0-based) as a new HxWx3 uint8 RGB array on white."""
    page = doc[index]
    try:
        scale = _page_scale(pdfium, page, limits)
        # 3-byte pixels in RGB order: PDFium's own format, so no channel shuffle or alpha to drop
        bitmap = page.render(scale=scale, force_bitmap_format=pdfium.raw.FPDFBitmap_BGR, rev_byteorder=True,
                             fill_color=(255, 255, 255, 255))
        try:
            rgb = np.array(bitmap.to_numpy()[:, :, :3], dtype=np.uint8, order="C", copy=True)
        finally:
            bitmap.close()
    finally:
        page.close()
    if rgb.ndim != 3 or min(rgb.shape[:2]) < 1:
        raise PdfInvalidError(f"page {index + 1} rendered to an empty image")
    return rgb


def render_pages(data: bytes, limits: PdfLimits = DEFAULT_LIMITS, pages: Iterable[int] | None = None,
                 keep_going: bool = False) -> Iterator[np.ndarray | PdfInvalidError]:
    """Yield each page (or each 0-based index in ``pages``) as HxWx3 uint8 RGB, in order.

    A generator so a 20-page document never holds 20 bitmaps: the caller reads a page while the
    next one is not yet rendered. Limits are checked as the module docstring says; an error ends
    the generator (pages already yielded stay valid), unless ``keep_going``: then a page PDFium cannot
    render is yielded as its ``PdfInvalidError`` and the next page is rendered (the time limit still ends it).
    """
    pdfium = _pdfium()
    clock = _Clock(limits.timeout_s)
    with _LOCK, clock.timed():
        doc = _open(pdfium, data, limits)
    try:
        total = len(doc)
        indices = range(total) if pages is None else list(pages)
        for done, index in enumerate(indices):
            if not 0 <= index < total:
                raise PdfInvalidError(f"the PDF has no page {index + 1} (it has {total})")
            clock.check(done)
            try:
                with _LOCK, clock.timed():
                    rgb = _render_one(pdfium, doc, index, limits)
            except pdfium.PdfiumError as exc:
                rgb = PdfInvalidError(f"page {index + 1} cannot be rendered ({_reason(exc)})")
            except PdfInvalidError as exc:
                rgb = exc
            if isinstance(rgb, PdfInvalidError) and not keep_going:
                raise rgb from None
            yield rgb
    finally:
        with _LOCK:
            doc.close()


def render_page(data: bytes, index: int, limits: PdfLimits = DEFAULT_LIMITS) -> np.ndarray:
    """One page (0-based ``index``): what a batch worker given one page of a document needs."""
    with closing(render_pages(data, limits, pages=[index])) as pages:
        return next(pages)


__all__ = ["PdfLimits", "DEFAULT_LIMITS", "MAX_PAGES", "MAX_SIDE", "MAX_DPI", "TIMEOUT_S", "is_pdf",
           "page_count", "render_page", "render_pages", "render_scale", "scan_scale"]
