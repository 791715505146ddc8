"""ocr.imageio: every input either becomes an HxWx3 uint8 RGB array or one of our errors."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from ocr import imageio
from ocr.errors import (
    ImageTooLargeError,
    InvalidImageError,
    ModelLoadError,
    OCRError,
    UnsupportedImageError,
)
from ocr.imageio import encode_png, load_image, to_bgr, to_gray


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def noise_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG that *declares* width x height (its data is tiny)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def assert_rgb(out: np.ndarray, h: int, w: int) -> None:
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8 and out.shape == (h, w, 3)
    assert out.flags.c_contiguous


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any pixel data is decoded."""

    def refuse(self):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# -- errors ------------------------------------------------------------------------


def test_error_codes_and_messages():
    assert issubclass(InvalidImageError, OCRError)
    assert (InvalidImageError.code, ImageTooLargeError.code, UnsupportedImageError.code,
            ModelLoadError.code) == ("invalid_image", "image_too_large", "unsupported_image",
                                     "model_unavailable")
    assert str(InvalidImageError("the file is empty")) == "the file is empty"
    assert str(ModelLoadError()) and ModelLoadError().message == str(ModelLoadError())


# -- bad inputs --------------------------------------------------------------------


def test_empty_bytes_and_empty_file(tmp_path):
    with pytest.raises(InvalidImageError, match="the file is empty"):
        load_image(b"")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="the file is empty"):
        load_image(empty)


@pytest.mark.parametrize("data", [
    b"this is not an image at all" * 10,
    np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    b"\x89PNG\r\n\x1a\n",  # a signature and nothing else
])
def test_non_image_bytes(data):
    with pytest.raises(InvalidImageError):
        load_image(data)


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(InvalidImageError) as info:
        load_image(str(missing))
    assert str(info.value) == f"file not found: {missing}"
    assert info.value.__suppress_context__  # no chained FileNotFoundError traceback
    with pytest.raises(InvalidImageError, match="not a regular file"):
        load_image(tmp_path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_images(fmt):
    data = encode(Image.fromarray(noise_rgb()), fmt)
    load_image(data)  # the whole file is fine
    with pytest.raises(InvalidImageError, match="truncated"):
        load_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_decompression_bomb_header_is_refused_without_decoding(no_decoding):
    with pytest.raises(ImageTooLargeError) as info:  # 2.5 gigapixels: PIL's own guard fires in open()
        load_image(png_header_only(50_000, 50_000))
    # in this module's words and limit, not PIL's ("could be decompression bomb DOS attack", 178956970 pixels)
    assert str(info.value) == f"the image is too large (2500.0 megapixels), over the {imageio.MAX_PIXELS / 1e6:g} megapixel limit"
    with pytest.raises(ImageTooLargeError, match="megapixel"):  # 48 MP: our limit
        load_image(png_header_only(8000, 6000))


def test_pixel_limit_on_a_small_image():
    data = encode(Image.new("RGB", (10, 10)), "PNG")
    with pytest.raises(ImageTooLargeError, match="megapixel"):
        load_image(data, max_pixels=99)
    assert_rgb(load_image(data, max_pixels=100), 10, 10)
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((10, 10), np.uint8), max_pixels=99)


def test_byte_limit(tmp_path):
    data = encode(Image.fromarray(noise_rgb()), "PNG")
    with pytest.raises(ImageTooLargeError, match="MB"):
        load_image(data, max_bytes=len(data) - 1)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLargeError):
        load_image(path, max_bytes=len(data) - 1)
    assert_rgb(load_image(path, max_bytes=len(data)), 48, 64)


def test_known_but_unsupported_format():
    with pytest.raises(UnsupportedImageError, match="PCX"):
        load_image(encode(Image.new("RGB", (4, 4)), "PCX"))


def test_wrong_python_type():
    with pytest.raises(TypeError):
        load_image([[1, 2], [3, 4]])


# -- modes and formats ------------------------------------------------------------------


def test_rgb_png_round_trip_from_path_str_and_bytes(tmp_path):
    rgb = noise_rgb()
    path = tmp_path / "x.png"
    path.write_bytes(encode(Image.fromarray(rgb), "PNG"))
    for source in (path, str(path), path.read_bytes(), bytearray(path.read_bytes())):
        out = load_image(source)
        assert_rgb(out, 48, 64)
        np.testing.assert_array_equal(out, rgb)


def test_cmyk_jpeg():
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG")
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = load_image(data)
    assert_rgb(out, 16, 16)
    r, g, b = out[8, 8].astype(int)
    assert r > 200 and g < 60 and b < 60  # pure red


def test_16bit_png():
    values = np.array([[0, 65535, 257 * 100, 257 * 7]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = load_image(data)
    assert_rgb(out, 1, 4)
    np.testing.assert_array_equal(out[0, :, 0], [0, 255, 100, 7])
    assert (out == out[:, :, :1]).all()  # gray


def test_rgba_is_composited_on_white():
    rgba = np.array([[[0, 0, 0, 0], [10, 20, 30, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    out = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [10, 20, 30], [127, 127, 127]])
    np.testing.assert_array_equal(load_image(rgba), out)  # the array path agrees


def test_la_and_palette_transparency_on_white():
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (40, 255))
    np.testing.assert_array_equal(load_image(encode(la, "PNG"))[0], [[255] * 3, [40] * 3])
    p = Image.new("P", (2, 1), 0)
    p.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    p.putpixel((1, 0), 1)
    out = load_image(encode(p, "PNG", transparency=0))
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [200, 10, 10]])


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = load_image(data)
    assert_rgb(out, 8, 8)
    assert (out == [255, 0, 0]).all()


def test_exif_orientation_is_applied():
    img = np.full((16, 32, 3), 255, np.uint8)  # 32 wide, 16 high
    img[:, :16] = 0  # left half black
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(Image.fromarray(img), "JPEG", exif=exif, quality=95)
    out = load_image(data)
    assert_rgb(out, 32, 16)  # transposed: now 16 wide, 32 high
    assert out[:12].mean() < 40 and out[-12:].mean() > 215  # the left half is now on top


def test_one_pixel_images():
    assert_rgb(load_image(encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG")), 1, 1)
    np.testing.assert_array_equal(load_image(np.array([[7]], np.uint8)), [[[7, 7, 7]]])


def test_pil_image_inputs():
    np.testing.assert_array_equal(load_image(Image.new("L", (3, 2), 9)), np.full((2, 3, 3), 9))
    np.testing.assert_array_equal(load_image(Image.new("1", (2, 2), 1)), np.full((2, 2, 3), 255))
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert f.mode == "F"
    np.testing.assert_array_equal(load_image(f)[0, :, 0], [0, 128, 255])
    i = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32))
    assert i.mode == "I"
    np.testing.assert_array_equal(load_image(i)[0, :, 0], [0, 100, 255])


# -- numpy inputs ----------------------------------------------------------------------


def test_numpy_gray_and_channel_variants():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    expected = np.repeat(gray[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(load_image(gray), expected)
    np.testing.assert_array_equal(load_image(gray[:, :, None]), expected)
    rgb = noise_rgb(5, 7)
    out = load_image(rgb)
    np.testing.assert_array_equal(out, rgb)
    assert not np.shares_memory(out, rgb)  # a fresh array: callers may keep theirs
    strided = rgb[::2, ::-1]  # not contiguous
    out = load_image(strided)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, strided)


def test_numpy_dtypes():
    np.testing.assert_array_equal(
        load_image(np.array([[0, 257 * 3, 65535]], np.uint16))[0, :, 0], [0, 3, 255])
    np.testing.assert_array_equal(
        load_image(np.array([[0.0, 0.5, 1.0]], np.float32))[0, :, 0], [0, 128, 255])
    np.testing.assert_array_equal(  # max > 1: 0..255, clipped
        load_image(np.array([[-5.0, 12.4, 300.0]], np.float64))[0, :, 0], [0, 12, 255])
    np.testing.assert_array_equal(
        load_image(np.array([[False, True]]))[0, :, 0], [0, 255])
    np.testing.assert_array_equal(  # out of 0..65535: stretched min..max
        load_image(np.array([[-100, 0, 100_000]], np.int64))[0, :, 0], [0, 0, 255])
    np.testing.assert_array_equal(
        load_image(np.array([[0, 200]], np.int32))[0, :, 0], [0, 200])
    big_endian = np.array([[0, 65535]], dtype=">u2")
    np.testing.assert_array_equal(load_image(big_endian)[0, :, 0], [0, 255])


@pytest.mark.parametrize("arr, match", [
    (np.zeros((0, 5), np.uint8), "no pixels"),
    (np.zeros((5, 0, 3), np.uint8), "no pixels"),
    (np.zeros((2, 2, 3, 1), np.uint8), "shape"),
    (np.zeros((5,), np.uint8), "shape"),
    (np.zeros((2, 2, 2), np.uint8), "shape"),
    (np.array([[0.1, np.nan]]), "NaN"),
    (np.array([[0.1, np.inf]]), "NaN"),
    (np.zeros((2, 2), np.complex64), "dtype"),
    (np.array([["a", "b"]]), "dtype"),
])
def test_bad_arrays(arr, match):
    with pytest.raises(InvalidImageError, match=match):
        load_image(arr)


# -- helpers ----------------------------------------------------------------------------


def test_helpers():
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_array_equal(to_bgr(rgb), [[[0, 0, 255], [255, 0, 0]]])
    gray = to_gray(rgb)
    assert gray.shape == (1, 2) and gray.dtype == np.uint8
    assert abs(int(gray[0, 0]) - 76) <= 1 and abs(int(gray[0, 1]) - 29) <= 1  # BT.601
    np.testing.assert_array_equal(to_gray(gray), gray)
    png = encode_png(rgb)
    assert png.startswith(b"\x89PNG")
    np.testing.assert_array_equal(load_image(png), rgb)
    np.testing.assert_array_equal(load_image(encode_png(np.zeros((2, 2), np.float32))), 0)


def test_module_constants():
    assert imageio.MAX_PIXELS == 40_000_000
    assert imageio.MAX_BYTES == 20 * 1024 * 1024


def test_a_pdf_given_as_an_image_says_what_it_is():
    """The Python API called a valid PDF "not an image, or its header is damaged" (black-box pass)."""
    buf = io.BytesIO()
    Image.new("RGB", (50, 50), "white").save(buf, format="PDF")
    with pytest.raises(UnsupportedImageError, match="it is a PDF") as info:
        load_image(buf.getvalue())
    assert "python -m ocr page" in str(info.value)
