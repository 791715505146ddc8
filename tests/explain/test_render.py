"""Explanation pictures as a person sees them on the page (no model): scale width, marks outside the
glyphs, spaces shown as ␣, glyphs from fallback fonts, the top-k picture wrapped for long lines."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from explain import render
from explain.alignment import BLANK_LABEL, FrameTopK

MAGENTA = (255, 0, 200)


def _ink_rows(img: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Indices of rows holding dark (text) pixels."""
    return np.nonzero((img.min(axis=2) < threshold).any(axis=1))[0]


@pytest.mark.parametrize("width", [300, 1200, 2400])
def test_colour_bar_spans_the_whole_picture(width):
    pic = np.full((60, width, 3), 200, np.uint8)
    out = render.with_colorbar(pic, title="Saliency")
    assert out.shape[1] == width
    ramp = out[60:, :, :].astype(int)
    coloured = (ramp.max(axis=2) - ramp.min(axis=2)) > 60
    rows = np.nonzero(coloured.all(axis=1))[0]
    assert rows.size, "no row of the colour bar reaches both edges of the picture"


@pytest.mark.parametrize("width", [1200, 2400, 3600])
def test_colour_bar_labels_stay_legible_once_scaled_to_the_page(width):
    bar = render.colorbar(width, title="Saliency")
    coloured = (bar.max(axis=2).astype(int) - bar.min(axis=2)) > 60
    text = bar[np.nonzero(~coloured.any(axis=1))[0][0]:]  # rows under the ramp
    rows = _ink_rows(text[:, : width // 6])  # "低 low"
    on_screen = (rows.max() - rows.min() + 1) * render.DISPLAY_WIDTH / width
    assert on_screen >= 10, f"label {on_screen:.1f} px high on a {render.DISPLAY_WIDTH}-px page"


def test_the_highlight_marks_the_character_outside_the_line_image():
    line = np.full((24, 120, 3), 255, np.uint8)
    line[4:20, 52:56] = 0  # a narrow glyph ("l", "1", "i")
    spans = [(10.0, 50.0, "a"), (50.0, 58.0, "l"), (58.0, 110.0, "b")]
    out = render.draw_char_boxes(line, spans, highlight=1, labels=False)
    top = (out.shape[0] - 24) - (out.shape[0] - 24) // 2  # equal bands above and below
    body = out[top : top + 24]
    assert (body == line).all(), "a mark was drawn over the line image"
    magenta = (np.abs(out.astype(int) - MAGENTA).sum(axis=2) < 60)
    above, below = magenta[:top], magenta[top + 24 :]
    assert above[:, 50:58].any() and below[:, 50:58].any()
    assert not above[:, :49].any() and not above[:, 59:].any()


def test_every_bracket_stays_in_the_margins_without_a_highlight():
    line = np.full((30, 90, 3), 255, np.uint8)
    out = render.draw_char_boxes(line, [(0, 30, "a"), (30, 60, "b"), (60, 90, "c")], labels=True)
    assert (out[:30] == line).all() and (out[30:] != 255).any()


def test_a_space_is_labelled_with_the_open_box_glyph_not_a_missing_glyph_box():
    assert render.shown_label(" ") == render.SPACE_GLYPH == "␣"
    assert render.shown_label(BLANK_LABEL) == render.BLANK_GLYPH
    size = 24
    drawn = Image.new("L", (40, 40), 255)
    render.draw_text(ImageDraw.Draw(drawn), (20, 4), "␣", size, 0, anchor="mt")
    tofu = Image.new("L", (40, 40), 255)
    main = render._pil_font(size)
    ImageDraw.Draw(tofu).text((20, 4), "\U000f0000", font=main, fill=0, anchor="mt")  # what a missing glyph looks like
    ink = np.asarray(drawn) < 128
    assert ink.any() and (ink != (np.asarray(tofu) < 128)).any()
    assert render._font_for_char("␣") is not None


def test_a_glyph_no_font_has_is_drawn_as_the_replacement_character():
    assert render.shown_label("\U000f0000") == render.MISSING_GLYPH
    assert render.shown_label("永") == "永" and render.shown_label("A") == "A"


def test_the_line_picture_labels_a_space_in_its_own_column():
    line = np.full((30, 90, 3), 255, np.uint8)
    out = render.draw_char_boxes(line, [(0, 30, "a"), (30, 60, " "), (60, 90, "b")])
    strip = out[out.shape[0] - 20 :, 30:60]
    assert (strip.min(axis=2) < 200).any(), "the space's column has no label"


def test_the_confidence_strip_shows_a_space():
    strip = render.confidence_strip("a b", [0.9, 0.8, 0.95])
    plain = render.confidence_strip("ab", [0.9, 0.95])
    assert strip.shape[1] > plain.shape[1]
    cell = strip[4:36, strip.shape[1] // 2 - 6 : strip.shape[1] // 2 + 6]
    assert (cell.min(axis=2) < 170).any(), "nothing drawn in the space's cell"


def _topk(frames: int, k: int = 5) -> FrameTopK:
    probs = np.zeros((frames, k), np.float32)
    probs[:, 0], probs[:, 1] = 0.9, 0.1
    labels = [[BLANK_LABEL if t % 3 else "永", " ", "a", "b", "c"][:k] for t in range(frames)]
    return FrameTopK(np.zeros((frames, k), np.int64), probs, labels)


def test_a_long_line_top_k_picture_wraps_to_the_page_width():
    short, long = render.alignment_image(_topk(20), title="x"), render.alignment_image(_topk(200), title="x")
    assert long.shape[1] <= render.DISPLAY_WIDTH + 10 and short.shape[1] <= render.DISPLAY_WIDTH + 10
    assert long.shape[0] > 3 * short.shape[0] * 0.8  # four rows of 50 frames
    assert render.alignment_image(_topk(0)).shape[2] == 3


def test_top_k_ranks_that_never_reach_the_label_threshold_are_not_drawn():
    five = render.alignment_image(_topk(30, k=5))
    probs = np.zeros((30, 5), np.float32)
    probs[:, 0] = 1.0
    one = render.alignment_image(FrameTopK(np.zeros((30, 5), np.int64), probs, _topk(30).labels))
    assert one.shape[0] < five.shape[0]
