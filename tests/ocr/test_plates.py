"""Licence plates are given in their written form (``ocr.recognize.plates``), and only plates are."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocr.decode import greedy_decode
from ocr.recognize.plates import PLATE, PROVINCES, SEPARATORS, plate_text
from training.synth import render_text


@pytest.mark.parametrize("reading, written", [
    ("京A·12345", "京A12345"),
    ("粤B-D12345", "粤BD12345"),  # a new-energy plate: six serial characters
    ("沪A.1234学", "沪A1234学"),
    ("苏E·C 8O1I", "苏EC8011"),  # spaces dropped; O and I are never issued in a serial
    ("陕G:3B837", "陕G3B837"),  # the dot read as a colon
    ("黑G·WY579/", "黑GWY579"),  # the plate's frame read as a mark at its end
    ("|京A·12345", "京A12345"),
    ("桂」·1Z416", "桂J1Z416"),  # the office letter J read as a corner bracket
    ("7粤H·JX273", "粤HJX273"),  # a stray character before a plate whose separator was read
    ("川A12345", None),  # already written so
])
def test_a_plate_is_written_without_its_separator(reading: str, written: str | None) -> None:
    assert plate_text(reading) == written


@pytest.mark.parametrize("reading", [
    "卡尔·马克思",  # a name keeps its separator
    "U.PRICE",  # a receipt word of the plate's shape: no digits in its "serial"
    "A·1XYZW",  # one digit only
    "TX:0012",
    "7粤HJX273",  # a stray character before it, and no separator to say "plate"
    "车牌沪A·12345",  # a caption: words before the plate are not strays
    "京A·123",  # too short a serial
    "京A·1234567",
    "Total 12.30",
    "京a·12345",
    "",
])
def test_anything_else_keeps_its_reading(reading: str) -> None:
    assert plate_text(reading) is None
    assert plate_text(reading, lambda replaces_first: "京") is None


def test_a_misread_province_is_replaced_only_where_the_rest_is_a_plate() -> None:
    asked: list[str] = []

    def guess(replaces_first: bool) -> str:
        asked.append("yes" if replaces_first else "before")
        return "冀"

    assert plate_text("黄D·SK411", guess) == "冀DSK411"
    assert asked == ["yes"]
    assert plate_text("黄DSK411", guess) is None  # no separator: nothing says "plate"
    assert plate_text("黄D·SK411") is None  # no one to ask
    assert asked == ["yes"]


def test_a_province_read_as_a_letter_or_dropped_is_asked_for_where_it_stands() -> None:
    places: list[bool] = []

    def guess(replaces_first: bool) -> str:
        places.append(replaces_first)
        return "贵"

    assert plate_text("AY-7J9815", guess) == "贵Y7J9815"  # 贵 read as A: the A's frames are asked
    assert plate_text("L·05175", guess) == "贵L05175"  # dropped: the frames before the L are asked
    assert places == [True, False]
    assert plate_text("A·12345", lambda replaces_first: "") is None  # the frames show no province: not a plate


def render_plate(font_path: str, font_index: int, text: str) -> np.ndarray:
    """A blue plate, white characters filling its height, the separator dot after the second one, at
    LPRNet's 94 x 24 px."""
    font = ImageFont.truetype(font_path, 100, index=font_index)
    image = Image.new("RGB", (760, 140), (10, 60, 170))
    draw = ImageDraw.Draw(image)
    draw.rectangle([4, 4, 755, 135], outline=(240, 240, 240), width=4)
    x = 24
    for k, ch in enumerate(text):
        draw.text((x, 0), ch, font=font, fill=(245, 245, 245))
        x += 98
        if k == 1:
            draw.ellipse([x - 4, 62, x + 10, 76], fill=(245, 245, 245))
            x += 26
    return np.asarray(image.resize((94, 24), Image.Resampling.LANCZOS))


def test_a_plate_image_reads_as_a_written_plate_with_consistent_characters(recognizer, cjk_font) -> None:
    from explain.alignment import align_line

    plate = render_plate(cjk_font.path, cjk_font.index, "京A12345")
    (probs, prepared), = recognizer.probabilities([plate])
    seen = greedy_decode(probs, recognizer.charset, scale=prepared.scale, image_width=plate.shape[1]).text
    line = recognizer.recognize_one(plate)
    assert any(sep in seen for sep in SEPARATORS), seen  # the network sees the dot ...
    assert PLATE.match(line.text) and not any(sep in line.text for sep in SEPARATORS), line.text  # ... it is dropped
    assert line.text[0] in PROVINCES
    assert "".join(c.char for c in line.chars) == line.text
    assert all(0.0 <= c.confidence <= 1.0 for c in line.chars)
    assert [c.t_start for c in line.chars] == sorted(c.t_start for c in line.chars)
    al = align_line(recognizer, plate, reading=line)  # the explanation explains the written characters
    assert al.decoding.text == line.text


def test_every_model_can_write_every_province(charset) -> None:
    from ocr.recognize.charset import Charset
    from ocr.settings import WEIGHTS_DIR

    for chars in (charset, Charset.load(WEIGHTS_DIR / "charset_accurate.txt")):
        assert not chars.missing(PROVINCES)


def test_text_of_a_plate_s_shape_that_is_no_plate_keeps_its_reading(recognizer, latin_font) -> None:
    """A receipt code written like a plate without its province (``A-12345``) is not given one: no frame before
    it shows a province (rendered lines: at most 7e-8 against the 1e-3 asked for)."""
    for text in ("A-12345", "G·45210", "B.20391"):
        image = render_text(text, latin_font, 32).image
        assert recognizer.recognize_one(image).text == text
