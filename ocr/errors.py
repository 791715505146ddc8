"""The project's own exceptions.

Every error a user can cause (a bad upload, a missing model) is an
:class:`OCRError`. Each class carries a stable machine-readable ``code`` (for
the API's JSON error bodies and the CLI) and its ``str()`` is a short human
message, safe to show as is: it never contains a traceback.
"""

from __future__ import annotations


class OCRError(Exception):
    """Base class; ``code`` is stable, the message is for humans."""

    code: str = "ocr_error"
    default_message: str = "OCR failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self)

    def to_dict(self) -> dict[str, str]:
        """The ``{"code", "message"}`` object an answer or a record carries for this error."""
        return {"code": self.code, "message": self.message}


class InvalidImageError(OCRError):
    """Empty input, not an image, or a truncated / corrupt image."""

    code = "invalid_image"
    default_message = "the input is not a valid image"


class ImageTooLargeError(OCRError):
    """Over the pixel or byte limit (this includes decompression bombs)."""

    code = "image_too_large"
    default_message = "the image is too large"


class UnsupportedImageError(OCRError):
    """A real image, but in a format or of a kind this project does not read."""

    code = "unsupported_image"
    default_message = "this kind of image is not supported"


class ModelLoadError(OCRError):
    """The model weights are missing, unreadable or do not fit the model."""

    code = "model_unavailable"
    default_message = "the OCR model could not be loaded"


# -- images by URL (ocr/url_fetch.py) ------------------------------------------
# Messages are short plain English for people and translators: no addresses, no
# exception text, no URL (it may carry a token). Details go to the log.


class UrlFetchError(OCRError):
    """An image URL could not be fetched (base of the ``url_*`` errors)."""

    code = "url_fetch_failed"
    default_message = "the image could not be fetched from the URL"


class UrlDisabledError(UrlFetchError):
    """This deployment does not fetch URLs (``OCR_ALLOW_URLS`` is off)."""

    code = "url_disabled"
    default_message = "fetching images by URL is turned off on this server"


class UrlNotAllowedError(UrlFetchError):
    """Scheme, host, port or resolved address refused (SSRF protection)."""

    code = "url_not_allowed"
    default_message = "this URL is not allowed"


class UrlTimeoutError(UrlFetchError):
    """Connecting or the whole transfer took longer than allowed."""

    code = "url_timeout"
    default_message = "fetching the URL took too long"


class UrlTooLargeError(UrlFetchError):
    """The answer is (or would be) over the byte limit."""

    code = "url_too_large"
    default_message = "the file at the URL is too large"


class UrlNotImageError(UrlFetchError):
    """The answer's bytes are not an image type we read."""

    code = "url_not_image"
    default_message = "the URL did not return an image"


# -- PDF documents: each error also subclasses the image error a caller already handles the
#    same way (a broken PDF is an invalid upload, too many pages is too large, ...), so code that
#    maps image errors (the API's status codes) answers PDFs sensibly with no change.


class PdfInvalidError(InvalidImageError):
    """Not a PDF, or one PDFium cannot open or render (truncated, damaged, no pages)."""

    code = "pdf_invalid"
    default_message = "the PDF is damaged or not a PDF"


class PdfEncryptedError(UnsupportedImageError):
    """A password-protected PDF: we never guess or ask for passwords."""

    code = "pdf_encrypted"
    default_message = "the PDF is password-protected; send an unprotected copy"


class PdfTooLargeError(ImageTooLargeError):
    """The PDF file is over the byte limit."""

    code = "pdf_too_large"
    default_message = "the PDF file is too large"


class PdfTooManyPagesError(ImageTooLargeError):
    """More pages than one document may have (a 500-page scan must be split, not queued whole)."""

    code = "pdf_too_many_pages"
    default_message = "the PDF has too many pages"


class PdfTimeoutError(OCRError):
    """Rendering the document took longer than its time limit (a pathological page)."""

    code = "pdf_timeout"
    default_message = "rendering the PDF took too long"


# -- multi-page TIFF documents (ocr/tiff.py): the same pattern as the PDF errors above.


class TiffInvalidError(InvalidImageError):
    """A TIFF of several pages with a page that cannot be found or decoded (a damaged page table or page)."""

    code = "tiff_invalid"
    default_message = "the TIFF is damaged"


class TiffTooManyPagesError(ImageTooLargeError):
    """More pages than one document may have (``OCR_PDF_MAX_PAGES`` bounds TIFFs as it bounds PDFs)."""

    code = "tiff_too_many_pages"
    default_message = "the TIFF has too many pages"
