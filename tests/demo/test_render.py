"""The demo's rendering helpers and the per-result view cache (no server, no model)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from demo import render
from demo.cache import ViewCache
from explain.render import overlay, with_colorbar


def page_of(boxes: list[list[float]], width: int = 200, height: int = 100) -> SimpleNamespace:
    chars = [SimpleNamespace(char="a", confidence=0.95)]
    lines = [SimpleNamespace(box=b, text=f"line {i}", confidence=0.9, chars=chars) for i, b in enumerate(boxes)]
    return SimpleNamespace(lines=lines, width=width, height=height, rotation=0, timings={"total": 0.5},
                           text="\n".join(ln.text for ln in lines), confidence=0.9,
                           image=np.full((height, width, 3), 255, np.uint8))


def test_a_click_picks_the_line_under_it_or_the_nearest():
    page = page_of([[10, 10, 90, 10, 90, 30, 10, 30], [10, 50, 90, 50, 90, 70, 10, 70]])
    assert render.line_at(page, 50, 20) == 0
    assert render.line_at(page, 50, 60) == 1
    assert render.line_at(page, 150, 68) == 1  # right of line 2: the nearest
    assert render.line_at(page_of([]), 5, 5) is None


def test_page_view_is_one_picture_and_the_json_is_compact():
    page = page_of([[10, 10, 90, 10, 90, 30, 10, 30]])
    view = render.page_view(page)
    assert view.shape == page.image.shape and (view != 255).any()  # a box was drawn
    data = render.compact_json(page)
    assert data["lines"][0]["box"] == [10, 10, 90, 10, 90, 30, 10, 30]
    assert set(data["lines"][0]["chars"][0]) == {"char", "confidence"}


def test_user_messages_are_bilingual_and_name_no_path():
    msg = render.user_message("invalid_image", "the file is empty")
    assert "无法" in msg and "The file is empty" in msg and "PNG" in msg
    assert "choose another" not in render.user_message("invalid_line", "line must be between 0 and 3")


def test_steps_say_what_was_applied_and_why():
    step = lambda name, applied: SimpleNamespace(name=name, applied=applied, description=f"{name} because",  # noqa: E731
                                                 params={"h": 7.0}, seconds=0.01, image=np.zeros((4, 4), np.uint8))
    prep = SimpleNamespace(steps=[step("denoise", False), step("contrast", True)], applied=["contrast"], angle=1.5)
    gallery = render.steps_gallery(prep, original=np.zeros((4, 4, 3), np.uint8))
    assert [c.split(" ")[1] for _, c in gallery] == ["原图", "contrast"]  # skipped steps are not pictured
    rows = render.steps_table(prep)
    assert rows[0][:3] == ["denoise", "—", "denoise because"] and rows[1][1] == "✓"
    assert "contrast" in render.steps_summary(prep, "auto") and "+1.50°" in render.steps_summary(prep, "auto")
    assert "no step changed" in render.steps_summary(SimpleNamespace(applied=[], angle=0.0), "auto")


def test_heat_overlay_is_coloured_only_where_the_map_is_hot_and_has_a_scale():
    line = np.full((20, 100, 3), 255, np.uint8)
    heat = np.zeros((20, 100), np.float32)
    heat[:, 40:50] = 1.0
    out = overlay(line, heat)
    spread = out.max(axis=2).astype(int) - out.min(axis=2)
    assert spread[:, 45].min() > 100 and spread[:, 5].max() < 10  # colour at the hot columns only
    assert with_colorbar(out).shape[0] > out.shape[0] + 20


def test_view_cache_builds_once_per_result_and_deletes_evicted_files(tmp_path):
    cache = ViewCache(tmp_path / "views", entries=2)
    pages = [page_of([]) for _ in range(3)]
    calls = []
    build = lambda: calls.append(1) or np.zeros((8, 8, 3), np.uint8)  # noqa: E731
    first = cache.image_file(pages[0], "page", build)
    assert cache.image_file(pages[0], "page", build) == first and len(calls) == 1
    cache.image_file(pages[1], "page", build)
    cache.image_file(pages[2], "page", build)  # evicts pages[0]
    assert not Path(first).exists() and len(calls) == 3


def test_fields_table_reads_a_fieldset_dict():
    """Rows from a real FieldSet's JSON: label, value, confidence mark, 1-based lines, the rule's reason."""
    from ocr.fields import extract_fields

    lines = [SimpleNamespace(text=t, box=[0, 20 * i, 300, 20 * i, 300, 20 * i + 16, 0, 20 * i + 16], confidence=0.99,
                             chars=[SimpleNamespace(char=c, confidence=0.99) for c in t])
             for i, t in enumerate(["ACME TRADING SDN BHD", "DATE: 02/01/2026", "TOTAL RM 12.30"])]
    fields = extract_fields(SimpleNamespace(lines=lines), "receipt").to_dict()
    rows = render.fields_table(fields)
    by_value = {r[1]: r for r in rows}
    assert "2026-01-02" in by_value and by_value["2026-01-02"][3] == "2"
    assert "12.30" in by_value and by_value["12.30"][2] == "✓" and by_value["12.30"][4]
    fields["fields"]["total"]["low_confidence"] = True
    assert any(r[2] == "⚠️ 低 low" for r in render.fields_table(fields))
    assert render.fields_table({"fields": {}}) == []


def test_the_lines_table_and_summary_say_which_network_read_each_line():
    page = page_of([[10, 10, 90, 10, 90, 30, 10, 30]] * 3)
    readings = [("fast", False), ("accurate", True), ("accurate", False)]
    for line, (model, reread) in zip(page.lines, readings):
        line.line_result = SimpleNamespace(model=model, reread=reread)
    rows = render.lines_table(page)
    column = render.LINES_HEADERS.index("模型 Read by (↺ re-read)")
    assert [r[column] for r in rows] == ["fast", "accurate ↺", "accurate"] and len(rows[0]) == len(render.LINES_HEADERS)
    assert "**1** 行由精确模型重读 re-read by Accurate" in render.timings_markdown(page)
    assert "re-read" not in render.timings_markdown(page_of([[10, 10, 90, 10, 90, 30, 10, 30]]))


def test_the_explanation_notes_say_which_characters_the_decoder_chose():
    """The Explain tab's notes name a character the decoder chose against its frames, and what the frames preferred."""
    from demo.handlers import _explanation_notes

    result = {"chars": [{"char": "O"}], "timings": {},
              "decoder_choices": [{"index": 0, "char": "O", "confidence": 0.35, "image_prefers": "5",
                                   "image_probability": 0.6}]}
    notes = _explanation_notes(result, "note")
    assert "“O”" in notes and "prefer “5” (0.60 vs 0.35)" in notes
    assert "prefer" not in _explanation_notes({**result, "decoder_choices": []}, "note")


def test_time_step_table_shows_a_space_as_the_open_box():
    alignment = {"topk": {"labels": [[" ", "<blank>", "a"], ["<blank>", " ", "b"]],
                          "probs": [[0.7, 0.3, 0.0], [0.99, 0.01, 0.0]]},
                 "frame_columns": [[0, 4], [4, 8]]}
    _, rows = render.timestep_table(alignment, [{"char": " ", "t_start": 0, "t_end": 0}])
    assert rows[0][2] == "␣" and rows[0][3] == "␣ 0.70" and rows[1][4] == "␣ 0.01"
    assert rows[1][3] == "<blank> 0.99" and rows[1][2] == ""


def test_a_heat_panel_scale_is_as_wide_as_the_enlarged_picture():
    panel = render.heat_panel(np.full((20, 500, 3), 180, np.uint8), title="Saliency")
    under = panel[96:].astype(int)  # the line enlarged to 96 px high, then its scale
    coloured = (under.max(axis=2) - under.min(axis=2)) > 60
    assert coloured.all(axis=1).any() and panel.shape[1] == 2400


def test_a_cached_answer_says_so_beside_its_first_read_times():
    """A repeated click showed the first read's "total 1049 ms" though it answered in 0.2 s (black-box pass)."""
    from types import SimpleNamespace

    from demo.render import timings_markdown

    page = SimpleNamespace(timings={"detect": 0.5, "total": 1.0}, rotation=0, lines=[], confidence=0.0)
    assert "cached" not in timings_markdown(page) and "cached" not in timings_markdown(page, 0.9)
    assert "缓存 cached: 本次 20 ms" in timings_markdown(page, 0.02)


def test_the_preprocessing_summary_says_off_when_it_is_off():
    """Mode "off" was summarised as "no step changed this image — it is clean enough" (black-box pass)."""
    from types import SimpleNamespace

    from demo.render import steps_summary

    nothing = SimpleNamespace(applied=[], angle=0.0)
    assert "Preprocessing is off" in steps_summary(nothing, "off") and "clean enough" not in steps_summary(nothing, "off")
    assert "clean enough" in steps_summary(nothing, "auto")
    assert "no step was chosen" in steps_summary(nothing, "manual")
