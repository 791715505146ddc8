"""Multi-page TIFF (scanned invoices, faxes): its page count and its pages as RGB, under limits.

    from ocr.tiff import frame_count, read_frames
    if frame_count(data) > 1:                    # header walk only: no page decoded
        for rgb in read_frames(data):            # HxWx3 uint8, one page in memory at a time
            answer = reader(rgb)

Callers do not use this module directly: :mod:`ocr.document` decides whether an upload is a
document (a PDF, or a TIFF of two pages or more) and dispatches here. A TIFF of one page is an
image, read by :func:`ocr.imageio.load_image` as before.

Each page is converted by :func:`ocr.imageio.pil_to_rgb`, the very function that converts a
single image: the same mode rules, EXIF orientation (per page) and pixel limit, checked on the
size the page's header declares before it is decoded. Limits, each with a stable code:

* bytes: the caller's (the image byte limit; :mod:`ocr.document` checks a file before reading it);
* pages: more than ``max_pages`` (``OCR_PDF_MAX_PAGES``, 20, shared with PDFs) ->
  ``tiff_too_many_pages``, found by walking the page headers up to the limit, before any page is
  decoded (a file of 100,000 tiny page headers costs 21 header reads, not 100,000);
* pixels: each page as any image (``image_too_large``, 40 megapixels);
* a page whose header or data is damaged -> ``tiff_invalid``, naming the page.

Pillow's own ``seek`` past the last page miscounts the pages (it records the target as the
count), so pages are counted by stepping one at a time.
"""

from __future__ import annotations

import logging
from contextlib import closing
from typing import Iterable, Iterator

import numpy as np
from PIL import Image

from ocr.errors import InvalidImageError, OCRError, TiffInvalidError, TiffTooManyPagesError
from ocr.imageio import MAX_PIXELS, open_image, pil_to_rgb, sniff_image_type
from ocr.pdf import MAX_PAGES  # one page limit for every document (pypdfium2 is not imported by this)

log = logging.getLogger(__name__)


def is_tiff(data: bytes) -> bool:
    """True if ``data`` starts with a TIFF signature (the sniffer uploads use)."""
    return sniff_image_type(data)[0] == "tiff"


def _step(img: Image.Image, index: int) -> bool:
    """Move to page ``index`` (0-based); False if the TIFF ends before it, TiffInvalidError if damaged."""
    try:
        img.seek(index)
    except EOFError:
        return False
    except Exception as exc:  # noqa: BLE001 - a damaged page table fails in many ways (TypeError, OSError ...)
        log.debug("TIFF page %d cannot be found", index + 1, exc_info=True)
        raise TiffInvalidError(f"the TIFF is damaged: page {index + 1} cannot be read ({exc})") from None
    return True


def _count(img: Image.Image, max_pages: int | None) -> int:
    """Pages of an opened TIFF, stepping through page headers only; more than ``max_pages`` refused.

    A page whose header cannot be reached (a file cut off in transfer) is counted as the last page: reading
    it raises why, and the pages before it are still read (they were lost with it; black-box pass)."""
    count = 1
    while True:
        try:
            found, damaged = _step(img, count), False
        except TiffInvalidError:
            found, damaged = True, True
        if not found:
            return count
        count += 1
        if max_pages is not None and count > max_pages:
            raise TiffTooManyPagesError(f"the TIFF has more pages than the limit of {max_pages}; "
                                        "split it into smaller documents")
        if damaged:
            return count


def _open_tiff(data: bytes) -> Image.Image:
    img = open_image(data)
    if img.format != "TIFF":
        img.close()
        raise InvalidImageError("not a TIFF")
    return img


def frame_count(data: bytes, max_pages: int | None = MAX_PAGES) -> int:
    """Pages of the TIFF in ``data`` (nothing decoded); ``TiffTooManyPagesError`` past ``max_pages``.

    Bytes PIL cannot open as a TIFF raise the image errors :func:`ocr.imageio.load_image` raises."""
    with _open_tiff(data) as img:
        return _count(img, max_pages)


def _frame(img: Image.Image, index: int, max_pixels: int | None) -> np.ndarray:
    """Page ``index`` of an opened TIFF as RGB; a failure names the page (a plain "corrupt image"
    would not say which of 12 pages to rescan)."""
    if not _step(img, index):
        raise TiffInvalidError(f"the TIFF has no page {index + 1}")
    try:
        return pil_to_rgb(img, max_pixels)
    except InvalidImageError as exc:
        raise TiffInvalidError(f"page {index + 1} of the TIFF: {exc.message}") from None
    except OCRError as exc:  # too large, unsupported mode: the same kind of error, saying which page
        raise type(exc)(f"page {index + 1} of the TIFF: {exc.message}") from None


def read_frames(data: bytes, max_pages: int | None = MAX_PAGES, pages: Iterable[int] | None = None,
                max_pixels: int | None = MAX_PIXELS, keep_going: bool = False) -> Iterator[np.ndarray | OCRError]:
    """Yield each page (or each 0-based index in ``pages``) as HxWx3 uint8 RGB, in order.

    The page count is checked first (nothing decoded if over ``max_pages``); a generator, so a
    20-page fax never holds 20 pages. An error ends it (pages already yielded stay valid), unless
    ``keep_going``: then a page that cannot be read is yielded as its error and the next page is read.
    Each page is read from a freshly opened file: Pillow keeps a palette page's state when it seeks on,
    so a page after (or before) a palette page was refused as corrupt on a reused image."""
    total = frame_count(data, max_pages)
    for index in range(total) if pages is None else pages:
        if not 0 <= index < total:
            raise TiffInvalidError(f"the TIFF has no page {index + 1} (it has {total})")
        try:
            with _open_tiff(data) as img:
                frame = _frame(img, index, max_pixels)
        except OCRError as exc:
            if not keep_going:
                raise
            frame = exc
        yield frame


def read_frame(data: bytes, index: int, max_pages: int | None = MAX_PAGES,
               max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """One page (0-based ``index``): what a batch worker given one page of a document needs."""
    with closing(read_frames(data, max_pages, [index], max_pixels)) as frames:
        return next(frames)


__all__ = ["frame_count", "is_tiff", "read_frame", "read_frames"]
