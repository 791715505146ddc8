"""Safe image loading, shared by the CLI, the pipeline and the API.

:func:`load_image` turns a path, encoded bytes, a numpy array or a PIL image
into one thing: a fresh, C-contiguous ``HxWx3`` ``uint8`` RGB array. Anything
it cannot turn into that raises an :class:`~ocr.errors.OCRError` subclass with
a short human message, never a bare PIL/numpy exception:

* :class:`~ocr.errors.InvalidImageError`: empty input, not an image, a
  truncated or corrupt file, a missing file, an unusable array;
* :class:`~ocr.errors.ImageTooLargeError`: over ``max_bytes`` or
  ``max_pixels``. The pixel limit is checked on the size the header declares,
  *before* anything is decoded, so a decompression bomb costs nothing;
* :class:`~ocr.errors.UnsupportedImageError`: a real image in a format we do
  not decode (for instance EPS, which would run Ghostscript).

Conversion rules (files and arrays follow the same ones):

* alpha (RGBA, LA, PA, P or L/RGB with a transparent colour, premultiplied
  modes) is composited onto **white**: text is usually dark on light;
* 16-bit data (PIL ``I;16*``, numpy ``uint16``) is scaled by the full 16-bit
  range, ``round(v * 255 / 65535)``: it keeps relative brightness and maps
  8-bit data stored as ``v * 257`` back exactly. No min/max stretching;
* other integers (PIL ``I``, numpy ``int*``/``uint32``/``uint64``): kept as
  they are if all in 0..255, scaled as 16-bit if all in 0..65535, otherwise
  stretched min..max to 0..255;
* floats (PIL ``F``, numpy ``float*``): taken as 0..1 if the maximum is <= 1,
  else as 0..255; then clipped. NaN or infinity is refused;
* ``bool`` / mode ``1``: False is black, True is white;
* CMYK, YCbCr, P, L, ... use PIL's own conversion to RGB (CMYK uses PIL's
  plain formula; embedded ICC profiles are not applied);
* animated GIF / WebP / APNG: the first frame. A multi-page TIFF given here is its first page
  too, with a warning in the log; the service, the REST API, the UI, the CLI and the batch ask
  :mod:`ocr.document` first, which reads a TIFF of two pages or more as a document of pages, as a
  PDF (:mod:`ocr.tiff`, each page converted by :func:`pil_to_rgb` under these same rules); a
  single-page TIFF is an image;
* the EXIF orientation tag is applied (``ImageOps.exif_transpose``);
* any size from 1x1 up is accepted; nothing is resized here.

PIL's global ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never touched: with its
default (False) a truncated file fails to decode and is reported as invalid.
PIL's own decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) stays in
place as a second line; its error, and its warning if a warnings filter has
turned it into an error, are reported as :class:`ImageTooLargeError`. This
module does not change warning filters (that is process-global state).
"""

from __future__ import annotations

import io
import logging
import re
import stat
from pathlib import Path
from typing import Union

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ocr.errors import ImageTooLargeError, InvalidImageError, UnsupportedImageError

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000
MAX_BYTES = 20 * 1024 * 1024

ImageSource = Union[str, Path, bytes, bytearray, memoryview, np.ndarray, Image.Image]

# Formats we decode. Every one has a real file signature, so junk is never
# "identified" as, say, a TGA (which has none). Filtered by what this Pillow
# build has registered (AVIF, JPEG 2000 depend on optional libraries).
_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO", "JPEG2000", "AVIF")
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def load_image(
    source: ImageSource,
    *,
    max_pixels: int | None = MAX_PIXELS,
    max_bytes: int | None = MAX_BYTES,
) -> np.ndarray:
    """Decode ``source`` into a new ``HxWx3`` uint8 RGB array.

    ``source``: a file path (``str`` or ``Path``), encoded image bytes, a
    numpy array (``HxW``, ``HxWx1``, ``HxWx3`` taken as RGB, ``HxWx4`` taken
    as RGBA) or a PIL image (its current frame). ``max_pixels`` /
    ``max_bytes`` of ``None`` disable that limit; ``max_bytes`` applies to
    files and bytes only. See the module docstring for the conversion rules.
    """
    if isinstance(source, (str, Path)):
        return _decode_bytes(_read_file(Path(source), max_bytes), max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise InvalidImageError("the file is empty")
        if max_bytes is not None and len(data) > max_bytes:
            raise ImageTooLargeError(_bytes_message(len(data), max_bytes))
        return _decode_bytes(data, max_pixels)
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, max_pixels)
    if isinstance(source, Image.Image):
        return pil_to_rgb(source, max_pixels)
    raise TypeError(
        "load_image expects a path, bytes, a numpy array or a PIL image, "
        f"not {type(source).__name__}"
    )


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """``HxW`` uint8 luma (BT.601, as OpenCV). A 2-D uint8 array is copied as is."""
    if isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 2 and rgb.size:
        return rgb.copy()
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
            and rgb.shape[2] == 3 and rgb.size):
        rgb = load_image(rgb, max_pixels=None)
    import cv2  # lazy: only the helpers need OpenCV

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def to_bgr(rgb: np.ndarray) -> np.ndarray:
    """The same pixels in OpenCV's BGR channel order (a new contiguous array)."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
            and rgb.shape[2] == 3 and rgb.size):
        rgb = load_image(rgb, max_pixels=None)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB image (a 2-D uint8 array is written as grayscale)."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.size
            and (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3))):
        rgb = load_image(rgb, max_pixels=None)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG")
    return buf.getvalue()


def quiet_pillow_warnings() -> None:
    """Silence Pillow's warnings (corrupt EXIF, its own pixel limit) in a command-line process: they print its
    install path and source line, and this module's errors already say what is wrong with an image."""
    import warnings

    warnings.filterwarnings("ignore", module=r"PIL\.")


# -- byte sniffing -------------------------------------------------------------
# The one file-signature check for bytes from outside (uploads, URLs, batch
# inputs): nothing is decoded. ``demo/http_input.py`` and ``ocr/url_fetch.py`` use it.

#: what the API and URL fetching accept (a subset of what load_image decodes)
SNIFF_ALLOWED_TYPES = ("jpeg", "png", "bmp", "webp", "tiff", "gif")

_ALLOWED_SIGNATURES = (
    ("jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    ("png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    ("bmp", lambda b: b.startswith(b"BM") and len(b) >= 26),
    ("webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("tiff", lambda b: b[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
    ("gif", lambda b: b[:6] in (b"GIF87a", b"GIF89a")),  # its first frame, as the UI and the CLI read it
)

_OTHER_SIGNATURES = (
    ("pdf", lambda b: b.lstrip()[:5] == b"%PDF-"),
    ("svg", lambda b: b.lstrip()[:5].lower() in (b"<?xml", b"<svg ", b"<svg>")),
    ("ico", lambda b: b[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")),
    ("jpeg2000", lambda b: b[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or b[:4] == b"\xff\x4f\xff\x51"),
    ("heif/avif", lambda b: b[4:8] == b"ftyp" and b[8:12] in (b"heic", b"heix", b"avif", b"mif1", b"msf1", b"hevc")),
    ("psd", lambda b: b[:4] == b"8BPS"),
    ("eps/postscript", lambda b: b[:4] in (b"%!PS", b"\xc5\xd0\xd3\xc6")),
    ("ppm/pgm/pbm", lambda b: len(b) > 2 and b[:1] == b"P" and b[1:2] in b"123456" and b[2:3] in b" \t\r\n"),
    ("zip", lambda b: b[:4] == b"PK\x03\x04"),
    ("jxl", lambda b: b[:2] == b"\xff\x0a" or b[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n"),
    ("mp4/video", lambda b: b[4:8] == b"ftyp"),
)

#: bytes :func:`sniff_image_type` looks at
SNIFF_BYTES = 64


def sniff_image_type(data: bytes) -> tuple[str | None, bool]:
    """(detected type, allowed?) from the first bytes. ``(None, False)``: not an image we know."""
    head = bytes(data[:SNIFF_BYTES])
    for name, test in _ALLOWED_SIGNATURES:
        if test(head):
            return name, True
    for name, test in _OTHER_SIGNATURES:
        if test(head):
            return name, False
    return None, False


# -- files and bytes ---------------------------------------------------------


def _read_file(path: Path, max_bytes: int | None) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InvalidImageError(f"file not found: {path}") from None
    except (OSError, ValueError) as e:  # permission, bad name, NUL in path ...
        raise InvalidImageError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidImageError(f"not a regular file: {path}")
    if st.st_size == 0:
        raise InvalidImageError(f"the file is empty: {path}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise ImageTooLargeError(_bytes_message(st.st_size, max_bytes))
    try:
        with open(path, "rb") as f:
            # Never read more than the limit allows, even if the file grows.
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as e:
        raise InvalidImageError(f"cannot read {path}: {e.strerror or e}") from None
    if not data:
        raise InvalidImageError(f"the file is empty: {path}")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLargeError(_bytes_message(len(data), max_bytes))
    return data


def _bytes_message(size: int, limit: int) -> str:
    return f"the file is {size / 2**20:.1f} MB, over the {limit / 2**20:.1f} MB limit"


def _allowed_formats() -> list[str]:
    Image.init()
    return [f for f in _FORMATS if f in Image.OPEN]


def _probe_format(data: bytes) -> str | None:
    """The format of an image we refused to decode, if PIL can name it reliably."""
    try:
        with Image.open(io.BytesIO(data)) as img:  # header only, never loaded
            fmt = img.format
    except Exception:  # noqa: BLE001 - anything here just means "not an image"
        return None
    # Formats without a signature match nearly anything: don't trust them.
    if not fmt or Image.OPEN.get(fmt, (None, None))[1] is None:
        return None
    return fmt


def open_image(data: bytes, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """``data`` opened by PIL, header only (nothing decoded), or this module's errors: the one place
    bytes are identified, for :func:`load_image` and for :mod:`ocr.tiff`, which walks a TIFF's pages."""
    try:
        return Image.open(io.BytesIO(data), formats=_allowed_formats())
    except _BOMB_ERRORS as e:
        raise ImageTooLargeError(_bomb_message(e, max_pixels)) from None
    except UnidentifiedImageError:
        if sniff_image_type(data)[0] == "pdf":  # a valid PDF was called "not an image" (black-box pass)
            raise UnsupportedImageError("it is a PDF, not an image: read its pages with python -m ocr page, "
                                        "OCRService.upload_answer or ocr.document.document_of") from None
        fmt = _probe_format(data)
        if fmt is not None:
            raise UnsupportedImageError(
                f"unsupported image format {fmt}; use one of {', '.join(_allowed_formats())}"
            ) from None
        raise InvalidImageError("not an image, or its header is damaged") from None
    except Exception as e:  # noqa: BLE001 - a damaged header can fail in many ways
        raise InvalidImageError(f"cannot read the image header ({e})") from None


def _decode_bytes(data: bytes, max_pixels: int | None) -> np.ndarray:
    with open_image(data, max_pixels) as img:
        if img.format == "TIFF" and getattr(img, "is_animated", False):  # from the first page's header: cheap
            log.warning("a TIFF of several pages was read as its first page only; ocr.document reads every "
                        "page (OCRService.upload_answer, python -m ocr page)")
        return pil_to_rgb(img, max_pixels)


def _bomb_message(error: Exception, max_pixels: int | None) -> str:
    """PIL's decompression-bomb refusal in this module's words: its size and *our* limit, not PIL's (which is
    far above ours: it only fires for images twice its ~89 megapixels)."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f" ({int(found.group(1)) / 1e6:.1f} megapixels)" if found else ""
    limit = f"the {max_pixels / 1e6:g} megapixel limit" if max_pixels is not None else "what can be decoded safely"
    return f"the image is too large{size}, over {limit}"


# -- PIL images ----------------------------------------------------------------


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"the image has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
            f"over the {max_pixels / 1e6:g} megapixel limit"
        )


def pil_to_rgb(img: Image.Image, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """The current frame of ``img`` as RGB under the rules above, its declared size checked before it is
    decoded: each page of a multi-page TIFF (:mod:`ocr.tiff`) is converted exactly as a single image is."""
    width, height = img.size  # from the header: nothing decoded yet
    _check_pixels(width, height, max_pixels)
    try:
        img.load()
    except _BOMB_ERRORS as e:
        raise ImageTooLargeError(_bomb_message(e, max_pixels)) from None
    except Exception as e:  # noqa: BLE001 - truncated/corrupt data fails in many ways
        log.debug("decoding failed", exc_info=True)
        raise InvalidImageError(f"the image data is truncated or corrupt ({e})") from None
    img = _exif_transposed(img)
    try:
        return _pil_pixels_to_rgb(img)
    except (ValueError, OSError) as e:
        raise UnsupportedImageError(f"cannot convert an image of mode {img.mode} to RGB ({e})") from None


def _exif_transposed(img: Image.Image) -> Image.Image:
    """``img`` with its EXIF orientation applied; a new image only if one is needed."""
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - broken EXIF must not lose the picture
        log.warning("ignoring unreadable EXIF orientation", exc_info=True)
    return img


def _pil_pixels_to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.array(img, dtype=np.uint8)  # np.array copies: never a view of PIL memory
    has_transparency = img.info.get("transparency") is not None
    if mode in _ALPHA_MODES or (has_transparency and mode in ("P", "L", "RGB")):
        if mode == "La":  # premultiplied; PIL converts it to LA only
            img = img.convert("LA")
        return _composite_on_white(np.asarray(img.convert("RGBA")))
    if mode.startswith("I") or mode == "F":  # I;16, I;16B, I;16L, I;16N, I, F
        return _array_to_rgb(np.asarray(img), None)
    return np.array(img.convert("RGB"), dtype=np.uint8)  # 1, L, P, CMYK, YCbCr, LAB, HSV


# -- numpy arrays ----------------------------------------------------------------


def _array_to_rgb(arr: np.ndarray, max_pixels: int | None) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidImageError(
            f"expected an HxW, HxWx1, HxWx3 or HxWx4 array, got shape {tuple(arr.shape)}"
        )
    height, width = arr.shape[:2]
    _check_pixels(width, height, max_pixels)
    arr = _to_uint8(arr)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 4:
        return _composite_on_white(arr)
    return np.array(arr, dtype=np.uint8, order="C", copy=True)


def _scale16(arr: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounded; ``v * 257`` maps back to ``v`` exactly."""
    return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if not arr.dtype.isnative:  # e.g. PIL's I;16B gives big-endian uint16
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype == np.uint16:
        return _scale16(arr)
    kind = arr.dtype.kind
    if kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi <= 255:
            return arr.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return _scale16(arr)
        stretched = (arr.astype(np.float64) - lo) * (255.0 / (hi - lo))
        return np.floor(stretched + 0.5).astype(np.uint8)
    if kind == "f":
        if not np.isfinite(arr).all():
            raise InvalidImageError("the image contains NaN or infinite values")
        if arr.max() <= 1.0:
            arr = arr * 255.0
        return np.clip(np.floor(arr + 0.5), 0, 255).astype(np.uint8)
    raise InvalidImageError(
        f"unsupported array dtype {arr.dtype}; use uint8, uint16, another integer type, float or bool"
    )


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 -> RGB uint8 over a white background (rounded)."""
    rgb = rgba[:, :, :3].astype(np.uint16)
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    # rgb*a + 255*(255-a) <= 255*255, so uint16 cannot overflow.
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))
