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
