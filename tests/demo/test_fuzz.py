"""Property-based fuzzing (hypothesis) of the input boundaries: image decoding, the REST API, preprocessing
configs and the CTC decoders.

Examples per property (derandomized, ``deadline=None``): load_image random bytes 150, mutated encodings 150,
huge declared dimensions 60; REST random JSON 80, random base64 60, random multipart 60, mutated-image base64 40;
config_from_dict 150 (each valid config also run through Preprocessor), in-range configs 100 (all run); greedy tiny charset 150, greedy + beam on
hypothesis-drawn rows 150, beam tiny charset 100, greedy + beam real charset 60 each.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import signal
import struct
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from ocr.recognize.charset import Charset
from ocr.decode import beam_search_decode, greedy_decode
from ocr.errors import ImageTooLargeError, OCRError
from ocr.imageio import MAX_PIXELS, load_image
from ocr.preprocess import PreprocessConfig, Preprocessor, config_from_dict

ROOT = Path(__file__).resolve().parents[2]
OCR = "/api/v1/ocr"


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@contextlib.contextmanager
def time_guard(seconds: float = 10.0):
    """Fail the example (instead of hanging the suite) if it runs longer than ``seconds``."""

    def alarm(signum, frame):  # noqa: ARG001
        raise TimeoutError(f"example took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- load_image


def _sample_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.full((12, 20, 3), 230, np.uint8)
    img[3:9, 2:18] = rng.integers(0, 255, (6, 16, 3), dtype=np.uint8)
    return img


def _encode(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_sample_image()).save(buf, format=fmt, **kw)
    return buf.getvalue()


ENCODED = {
    "png": _encode("PNG"),
    "jpeg": _encode("JPEG", quality=80),
    "bmp": _encode("BMP"),
    "tiff": _encode("TIFF"),
    "tiff_lzw": _encode("TIFF", compression="tiff_lzw"),
    "gif": _encode("GIF"),
    "webp": _encode("WEBP"),
}


def check_rgb_or_ocr_error(source) -> None:
    try:
        with time_guard():
            out = load_image(source)
    except OCRError:
        return
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.size > 0
    assert out.flags.c_contiguous


@st.composite
def mutated_encoding(draw) -> bytes:
    data = bytearray(ENCODED[draw(st.sampled_from(sorted(ENCODED)))])
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if action == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[pos] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif len(data) > 1:
            del data[pos]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@fuzz(150)
@given(st.binary(min_size=0, max_size=512))
def test_load_image_random_bytes(data):
    if not data:
        with pytest.raises(OCRError):
            load_image(data)
        return
    check_rgb_or_ocr_error(data)


@fuzz(150)
@given(mutated_encoding())
def test_load_image_truncated_or_corrupted_encodings(data):
    if not data:
        return
    check_rgb_or_ocr_error(data)


def _png_declaring(width: int, height: int, color_type: int, bit_depth: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def _bmp_declaring(width: int, height: int) -> bytes:
    header = bytearray(ENCODED["bmp"])
    header[18:22] = struct.pack("<i", width)
    header[22:26] = struct.pack("<i", height)
    return bytes(header)


def _gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(ENCODED["gif"])
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    idx = data.index(b"\x2c")  # first image descriptor
    data[idx + 5: idx + 9] = struct.pack("<HH", width, height)
    return bytes(data)


@st.composite
def huge_declaration(draw) -> bytes:
    fmt = draw(st.sampled_from(["png", "png", "bmp", "gif"]))
    limit = 2**31 - 1 if fmt == "png" else (2**31 - 1 if fmt == "bmp" else 65535)
    width = draw(st.integers(1, limit))
    min_h = MAX_PIXELS // width + 1
    assume(min_h <= limit)
    height = draw(st.integers(min_h, limit))
    assert width * height > MAX_PIXELS
    if fmt == "png":
        return _png_declaring(width, height, draw(st.sampled_from([0, 2, 6])), 8)
    if fmt == "bmp":
        return _bmp_declaring(width, height)
    return _gif_declaring(width, height)


@fuzz(60)
@given(huge_declaration())
def test_huge_declared_dimensions_refused_without_decoding(data):
    """The pixel limit is checked on the header: pixel data is never decoded nor converted."""
    from PIL import ImageFile

    def must_not_decode(*args, **kwargs):
        raise AssertionError("pixel data was decoded for an over-limit image")

    with mock.patch.object(ImageFile.ImageFile, "load", must_not_decode), \
            mock.patch.object(Image.Image, "load", must_not_decode), \
            mock.patch.object(Image.Image, "convert", must_not_decode), time_guard(5):
        try:
            load_image(data)
        except ImageTooLargeError:
            return
        except OCRError:
            # an over-limit header that PIL cannot even parse (e.g. BMP size fields it rejects) is refused
            # as invalid: still refused from the header alone (the patches above would have fired otherwise).
            # A well-formed PNG header always parses, so it must be ImageTooLargeError.
            assert not data.startswith(b"\x89PNG"), "a huge PNG was not refused as too large"
            return
    pytest.fail("an over-limit image was accepted")


def test_huge_png_is_image_too_large():
    with pytest.raises(ImageTooLargeError):
        load_image(_png_declaring(100_000, 100_000, 2, 8))
    with pytest.raises(ImageTooLargeError):
        load_image(_png_declaring(2**31 - 1, 2**31 - 1, 6, 8))


# ---------------------------------------------------------------- the REST API


@pytest.fixture(scope="module")
def client(service):
    from fastapi.testclient import TestClient

    from demo.rest import create_api

    with TestClient(create_api(service, workers=1, queue=8), raise_server_exceptions=False) as c:
        yield c


def check_api_answer(response, *, may_succeed: bool = False) -> None:
    assert response.status_code != 500, response.text
    body = response.json()
    if response.status_code == 200:
        assert may_succeed, body
        assert body["success"] is True and isinstance(body["text"], str)
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert body["success"] is False
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**400, 10**400), st.text(max_size=20),
                         st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
api_keys = st.sampled_from(["image_base64", "kind", "preprocess", "image_url", "line", "methods", "char_index"])


@fuzz(80)
@given(st.one_of(json_values, st.dictionaries(st.one_of(api_keys, st.text(max_size=8)), json_values, max_size=5)))
def test_api_random_json(client, payload):
    with time_guard(30):
        r = client.post(OCR, content=json.dumps(payload), headers={"content-type": "application/json"})
    check_api_answer(r)


b64_text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n", max_size=200)


@fuzz(60)
@given(st.one_of(b64_text, st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
                 st.text(max_size=60).map(lambda t: "data:image/png;base64," + t), st.text(max_size=60)),
       st.sampled_from([None, "page", "line", "LINE", "bogus"]))
def test_api_random_base64(client, value, kind):
    payload = {"image_base64": value}
    if kind is not None:
        payload["kind"] = kind
    with time_guard(30):
        r = client.post(OCR, json=payload)
    check_api_answer(r)


@fuzz(60)
@given(st.binary(max_size=400), st.sampled_from(["image", "file", "image_base64"]),
       st.sampled_from(["image/png", "application/octet-stream", "text/plain"]), st.booleans())
def test_api_random_multipart(client, data, field, ctype, raw_body):
    with time_guard(30):
        if raw_body:  # the same bytes as a raw body, and as a hand-made (likely malformed) multipart body
            r = client.post(OCR, content=data, headers={"content-type": ctype})
            check_api_answer(r)
            r = client.post(OCR, content=data,
                            headers={"content-type": "multipart/form-data; boundary=xyz"})
        else:
            r = client.post(OCR, files={field: ("x.png", data, ctype)})
    check_api_answer(r)


@fuzz(40)
@given(mutated_encoding(), st.sampled_from(["page", "line"]))
def test_api_mutated_images(client, data, kind):
    """Damaged real images through the whole pipeline: a 200 for one that still decodes, else a 4xx."""
    with time_guard(60):
        r = client.post(OCR, json={"image_base64": base64.b64encode(data).decode(), "kind": kind})
    check_api_answer(r, may_succeed=True)


def test_api_huge_integer_in_preprocess_is_422(client):
    png = base64.b64encode(ENCODED["png"]).decode()
    for options in ({"mode": "manual", "denoise": {"h": 10**400}}, {"normalize_size": {"fixed": {"a": 1, "b": 2}}}):
        r = client.post(OCR, content=json.dumps({"image_base64": png, "preprocess": options}),
                        headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        check_api_answer(r)


# ---------------------------------------------------------------- preprocessing configs

weird_values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.integers(-10**400, 10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-100, 100),
    st.sampled_from(["auto", "manual", "off", "white", "replicate", "true", "nan", "1e999", "-3", "7", ""]),
    st.text(max_size=6), st.lists(st.integers(-5, 600), max_size=3),
    st.dictionaries(st.sampled_from(["0", "1", "a"]), st.integers(), max_size=2),
)
STEP_PARAMS = {
    "grayscale": ["enabled"],
    "denoise": ["enabled", "h", "template_window", "search_window", "max_pixels", "fast", "chroma"],
    "contrast": ["enabled", "clip_limit", "tile"],
    "binarize": ["enabled", "block_size", "c"],
    "deskew": ["enabled", "max_angle", "min_angle", "angle", "border"],
    "normalize_size": ["enabled", "height", "multiple", "fixed", "max_width", "background"],
}


@st.composite
def preprocess_dicts(draw) -> dict:
    d: dict = {}
    if draw(st.booleans()):
        d["mode"] = draw(st.one_of(st.sampled_from(["auto", "manual", "off", " Manual "]), weird_values))
    for step, params in STEP_PARAMS.items():
        choice = draw(st.integers(0, 4))
        if choice == 1:
            d[step] = draw(st.booleans())
        elif choice == 2:
            d[step] = draw(weird_values)
        elif choice >= 3:
            keys = draw(st.lists(st.one_of(st.sampled_from(params), st.text(max_size=5)), max_size=4))
            d[step] = {k: draw(weird_values) for k in keys}
            if choice == 4:  # mostly plausible values, so valid configs with odd settings get run too
                for k in draw(st.lists(st.sampled_from(params), max_size=3)):
                    d[step][k] = draw(st.one_of(st.booleans(), st.integers(-2, 80), st.floats(-5, 60),
                                                st.sampled_from(["white", "replicate"]),
                                                st.tuples(st.integers(2, 70), st.integers(0, 300))))
    if draw(st.integers(0, 5)) == 0:
        d[draw(st.text(max_size=6))] = draw(weird_values)
    return d


SMALL_PAGE = np.full((40, 90, 3), 235, np.uint8)
SMALL_PAGE[12:28, 10:80:6] = 20
SMALL_PAGE[14:26, 12:80:9, 1] = 90


@fuzz(150)
@given(preprocess_dicts())
def test_config_from_dict_valid_or_value_error(d):
    try:
        cfg = config_from_dict(d)
    except ValueError:
        event("refused (ValueError)")
        return
    event(f"valid config, mode {cfg.mode}: run through Preprocessor")
    assert isinstance(cfg, PreprocessConfig)
    assert config_from_dict(cfg.to_dict()) == cfg
    with time_guard(20):
        result = Preprocessor(cfg).run(SMALL_PAGE)
    assert result.image.dtype == np.uint8 and result.image.ndim == 3 and result.image.shape[2] == 3


PLAUSIBLE = {
    "enabled": st.booleans(),
    "h": st.floats(0, 50), "template_window": st.integers(1, 21), "search_window": st.integers(3, 51),
    "max_pixels": st.integers(1, 10**6), "fast": st.booleans(), "chroma": st.booleans(),
    "clip_limit": st.floats(0.01, 40), "tile": st.integers(1, 64),
    "block_size": st.integers(3, 999), "c": st.floats(-128, 128),
    "max_angle": st.floats(0.5, 45), "min_angle": st.floats(0, 0.5), "angle": st.one_of(st.none(), st.floats(-45, 45)),
    "border": st.sampled_from(["white", "replicate", "WHITE "]),
    "height": st.integers(4, 512), "multiple": st.integers(1, 256),
    "fixed": st.one_of(st.none(), st.tuples(st.integers(4, 512), st.integers(1, 2000))),
    "max_width": st.integers(16, 4000), "background": st.one_of(st.none(), st.integers(0, 255)),
}


@st.composite
def plausible_dicts(draw) -> dict:
    d: dict = {"mode": draw(st.sampled_from(["auto", "manual", "manual", "off"]))}
    for step, params in STEP_PARAMS.items():
        if draw(st.booleans()):
            d[step] = {k: draw(PLAUSIBLE[k]) for k in draw(st.lists(st.sampled_from(params), max_size=4))}
    return d


@fuzz(100)
@given(plausible_dicts())
def test_plausible_configs_run_through_preprocessor(d):
    """In-range values (edges included) for every step, in every mode: valid configs never fail to run."""
    try:
        cfg = config_from_dict(d)
    except ValueError:  # e.g. min_angle > max_angle
        event("refused (ValueError)")
        return
    event(f"valid config, mode {cfg.mode}")
    with time_guard(20):
        result = Preprocessor(cfg).run(SMALL_PAGE)
    assert result.image.dtype == np.uint8 and result.image.ndim == 3 and result.image.shape[2] == 3


def test_config_from_dict_huge_integer_is_value_error():
    """JSON can carry integers too large for a float: a ValueError (422 in the API), not OverflowError."""
    with pytest.raises(ValueError):
        config_from_dict({"denoise": {"h": 10**400}})
    with pytest.raises(ValueError):
        config_from_dict({"normalize_size": {"fixed": {"a": 32, "b": 100}}})


# ---------------------------------------------------------------- CTC decoders

TINY = Charset(["a", "b", "中"])


@pytest.fixture(scope="module")
def real_charset() -> Charset:
    return Charset.load(ROOT / "weights" / "charset.txt")


def _rows(rng: np.random.Generator, t: int, c: int, kind: str) -> np.ndarray:
    if kind == "uniform":
        return np.full((t, c), 1.0 / c, np.float32)
    if kind == "onehot":
        p = np.zeros((t, c), np.float32)
        p[np.arange(t), rng.integers(0, c, t)] = 1.0
        return p
    if kind == "peaked":
        logits = rng.normal(0, 6, (t, c))
    elif kind == "mixed":
        p = rng.random((t, c)) ** 4
        p[rng.random(t) < 0.3] = 1.0  # all-equal rows
        onehot = rng.random(t) < 0.3
        p[onehot] = 0.0
        p[onehot, rng.integers(0, c, int(onehot.sum()))] = 1.0
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    else:
        logits = rng.normal(0, 1, (t, c))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(rng.choice([np.float32, np.float64]))


def check_decoding(line, charset: Charset, t: int) -> None:
    allowed = set(charset.chars)
    assert set(line.text) <= allowed
    assert 0.0 <= line.confidence <= 1.0
    previous_end = -1
    for span in line.chars:
        assert span.char in allowed and charset.char(span.index) == span.char
        assert 0.0 <= span.confidence <= 1.0
        assert previous_end < span.t_start <= span.t_end < t
        assert span.x_start <= span.x_end
        previous_end = span.t_end
        for cand, p in span.candidates:
            assert cand in allowed and 0.0 <= p <= 1.0
    assert "".join(s.char for s in line.chars) == line.text


decoder_cases = st.tuples(st.integers(0, 80), st.sampled_from(["uniform", "onehot", "peaked", "flat", "mixed"]),
                          st.integers(0, 2**32 - 1), st.one_of(st.none(), st.integers(-3, 90)))


@fuzz(150)
@given(decoder_cases)
def test_greedy_tiny_charset(case):
    t, kind, seed, valid = case
    p = _rows(np.random.default_rng(seed), t, TINY.num_classes, kind)
    line = greedy_decode(p, TINY, valid_steps=valid, scale=1.7, image_width=100.0)
    check_decoding(line, TINY, t)


@fuzz(150)
@given(st.integers(0, 30).flatmap(lambda t: st.lists(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=4).filter(lambda r: sum(r) > 0),
    min_size=t, max_size=t)))
def test_greedy_tiny_charset_hypothesis_rows(rows):
    p = np.asarray(rows, np.float64).reshape(len(rows), 4)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    check_decoding(greedy_decode(p, TINY), TINY, len(rows))
    check_decoding(beam_search_decode(p, TINY, beam_width=3), TINY, len(rows))


@fuzz(100)
@given(decoder_cases, st.integers(1, 10))
def test_beam_tiny_charset(case, width):
    t, kind, seed, valid = case
    p = _rows(np.random.default_rng(seed), t, TINY.num_classes, kind)
    line = beam_search_decode(p, TINY, beam_width=width, valid_steps=valid)
    check_decoding(line, TINY, t)


@fuzz(60)
@given(decoder_cases)
def test_greedy_real_charset(real_charset, case):
    t, kind, seed, valid = case
    p = _rows(np.random.default_rng(seed), t, real_charset.num_classes, kind)
    check_decoding(greedy_decode(p, real_charset, valid_steps=valid), real_charset, t)


@fuzz(60)
@given(decoder_cases)
def test_beam_real_charset(real_charset, case):
    t, kind, seed, valid = case
    p = _rows(np.random.default_rng(seed), t, real_charset.num_classes, kind)
    with time_guard(20):
        line = beam_search_decode(p, real_charset, beam_width=4, valid_steps=valid)
    check_decoding(line, real_charset, t)
