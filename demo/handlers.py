"""The Gradio UI's event handlers: module-level functions that return ``{component: value}`` dicts.

Each handler takes the service and the UI's components first (``bind`` fills them in), then
what Gradio passes. The Preprocess tab's seven controls arrive as one :class:`UISettings`;
``bind`` spreads it into named parameters for Gradio, so the events' API (``/ocr``,
``/explain``, ...) keeps its parameter names. Reading and line choice go through
``ocr.service.OCRService``, as in the REST API: a bad line index is an error in both.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import tempfile
import time
import typing
import uuid
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr
import numpy as np

from demo import render
from demo.cache import ViewCache
from demo.http_input import MAX_IMAGE_BYTES, APIError, decode_base64_image
from ocr.errors import ImageTooLargeError, InvalidImageError, OCRError
from ocr.imageio import load_image
from ocr.preprocess import PreprocessConfig, config_from_dict
from ocr.results import PageResult
from ocr.service import LineView, NoTextLineError, OCRService
from ocr.settings import EXAMPLES_DIR

if TYPE_CHECKING:
    from demo.ui import Components

log = logging.getLogger("demo")

DOWNLOAD_DIR = Path(tempfile.gettempdir()) / "ocr-demo-downloads"
MAX_DOWNLOADS = 200
WHOLE_LINE = -1
#: pictures, tables and downloads rendered once per page result (the pipeline's LRU returns the same object)
VIEWS = ViewCache(Path(tempfile.gettempdir()) / "ocr-demo-views")
#: how a panel with nothing to show is hidden: kept mounted ("hidden", not False), so showing it
#: again does not re-mount it inside its tab
HIDDEN = "hidden"
#: a true text sharing less than this with the line's reading is probably another line's
MISMATCH = 0.4


@dataclass(frozen=True)
class UISettings:
    """The Preprocess tab's controls, as one object."""

    mode: str | None
    steps: list[str] | None
    denoise_h: float
    clahe_clip: float
    block_size: float
    c: float
    deskew_angle: float
    model: str | None = None  # Fast / Auto / Accurate, shown only when the service offers a choice
    lm: bool | None = None  # beam search with the character language model (None: the model's default)

    def config(self) -> PreprocessConfig:
        steps = set(self.steps or [])
        angle = float(self.deskew_angle or 0.0)
        return config_from_dict({
            "mode": self.mode or "auto",
            "grayscale": {"enabled": "grayscale" in steps},
            "denoise": {"enabled": "denoise" in steps, "h": float(self.denoise_h)},
            "contrast": {"enabled": "contrast" in steps, "clip_limit": float(self.clahe_clip)},
            "binarize": {"enabled": "binarize" in steps, "block_size": int(self.block_size), "c": float(self.c)},
            "deskew": {"enabled": "deskew" in steps, "angle": angle if angle else None},
            "normalize_size": {"enabled": "normalize_size" in steps},
        })


SETTING_NAMES = tuple(f.name for f in fields(UISettings))
MODEL_CHOICES = [("快速 Fast", "fast"), ("自动 Auto", "auto"), ("精确 Accurate", "accurate")]
def model_trade_off() -> str:
    """The Fast / Auto / Accurate switch's one-line trade-off, from the figures the cascade was chosen on
    (validation slice of ../shared/train, ``ocr.recognize.cascade_choice``; README "Fast, Auto or Accurate")."""
    from ocr.recognize.cascade_choice import ACCURATE_PAD_WIDTH, FIGURES

    fast, accurate, auto = FIGURES["fast"], FIGURES[f"accurate_pad{ACCURATE_PAD_WIDTH}"], FIGURES["auto"]

    def mean(figures: dict) -> float:
        return 100 * sum(figures["char_accuracy"].values()) / len(figures["char_accuracy"])

    scene = 100 * (accurate["char_accuracy"]["en_scene_ic15_train"] - fast["char_accuracy"]["en_scene_ic15_train"])
    slower = accurate["ms_per_line_all"] / fast["ms_per_line_all"]
    share = auto["ms_per_line_all"] / accurate["ms_per_line_all"]
    return (f"快速 Fast ≈ {fast['ms_per_word_scene']:.0f} ms/词 per word (1 thread) · 精确 Accurate "
            f"+{mean(accurate) - mean(fast):.1f} 分 points (场景词 scene words +{scene:.1f}), ~{slower:.1f}× 时间 the time · "
            f"自动 Auto: 低置信行重读 re-reads unsure lines (~{100 * auto['reread_share']:.0f}%), within 0.5 points of "
            f"Accurate, at {100 * share:.0f}% of its time (validation slice)")


#: the language model's measured effect (validation slice, ``ocr.recognize.lm_choice``; README "Language model")
LM_TRADE_OFF = ("用常见词句纠正不确定的字 Settles unsure characters by which text is likely (a character language "
                "model, and an English word list for a word one letter off). Fast model, validation slice, scene words: the "
                "language model +1.3 char / +3.0 line points over greedy, the word list +0.4 / +2.5 more; ~+0.6 ms "
                "per word; on by default")


# ---------------------------------------------------------------- wiring


def reports_errors(where: str, clear: Callable[["Components"], dict] | None = None) -> Callable:
    """A handler whose failures become ONE bilingual message in the component ``where`` (plus the
    ``clear`` updates): no toast, no error badge on every output, no traceback, no server path."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(service: OCRService, ui: "Components", *args: Any, **kwargs: Any) -> dict:
            try:
                return fn(service, ui, *args, **kwargs)
            except NoTextLineError as exc:
                message = render.user_message("no_text", exc.message)
            except (OCRError, APIError) as exc:
                message = render.user_message(exc.code, exc.message)
            except ValueError as exc:  # invalid settings from the preprocessing controls
                message = render.user_message("bad_setting", str(exc))
            except Exception:  # noqa: BLE001
                log.exception("unexpected error in %s", fn.__name__)
                message = "⚠️ **内部错误，请重试。** Internal error — please try again (details are in the server log)."
            return {**(clear(ui) if clear else {}),
                    getattr(ui, where): gr.update(value=message, visible=True, elem_classes=[])}

        return wrapper

    return decorate


def bind(handler: Callable, service: OCRService, ui: "Components") -> Callable:
    """``handler`` as Gradio calls it: service and components filled in, ``settings`` spread into
    the seven controls' values (named as Gradio's API shows them), type hints kept (``gr.SelectData``)."""
    handler_sig = inspect.signature(handler)
    hints = typing.get_type_hints(handler, localns={"Components": type(ui)})
    params = list(handler_sig.parameters.values())[2:]
    names = SETTING_NAMES[:len(ui.settings)]  # the reading controls, then the model switch
    if "settings" in handler_sig.parameters:
        at = [p.name for p in params].index("settings")
        spread = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
        params = params[:at] + spread + params[at + 1:]
    signature = handler_sig.replace(parameters=params)

    def event(*args: Any, **kwargs: Any) -> Any:
        values = signature.bind(*args, **kwargs).arguments
        if "settings" in handler_sig.parameters:
            values["settings"] = UISettings(*(values.pop(n) for n in names))
        return handler(service, ui, **values)

    event.__name__ = event.__qualname__ = handler.__name__
    event.__doc__ = handler.__doc__
    event.__signature__ = signature  # type: ignore[attr-defined]
    event.__annotations__ = {p.name: hints[p.name] for p in params if p.name in hints}
    return event


# ---------------------------------------------------------------- helpers


def _readable_roots() -> list[Path]:
    """Where an event's image may come from: Gradio's upload/cache folder and the examples."""
    from gradio.utils import get_upload_folder

    return [Path(get_upload_folder()).resolve(), EXAMPLES_DIR.resolve()]


def _safe_path(path: str | Path) -> Path:
    """Refuse server paths outside the upload folder and the examples (defence in depth:
    ``demo.app.build_app`` also turns on Gradio's own "was it uploaded?" check)."""
    resolved = Path(path).resolve()
    if not any(resolved == root or root in resolved.parents for root in _readable_roots()):
        raise InvalidImageError("this file was not uploaded; upload the image instead")
    return resolved


def _upload_bytes(path: str | Path) -> bytes:
    """An uploaded file's bytes (size checked first); messages never name the server's path."""
    resolved = _safe_path(path)
    size = resolved.stat().st_size if resolved.exists() else 0
    if size > MAX_IMAGE_BYTES:
        raise ImageTooLargeError(f"the file is {size / 2**20:.1f} MB, over the {MAX_IMAGE_BYTES / 2**20:.0f} MB limit")
    return resolved.read_bytes() if resolved.exists() else b""


def _document_refused(ui: "Components") -> dict:
    """A document the box could not read: the image input emptied (so the previous page's reading is cleared
    with it, as after a bad image) and the page picker hidden; the message says why (black-box pass)."""
    return {ui.image: None, ui.doc_page: gr.update(visible=False, value=1)}


@reports_errors("status", clear=_document_refused)
def document_uploaded(service: OCRService, ui: "Components", doc_value: Any) -> dict:
    """A PDF or TIFF was uploaded in the document box: its first page into the image input, the page
    picker set to its page count (a single-page TIFF, or an image, is a document of one page)."""
    return _document_page_view(service, ui, doc_value, 1)


@reports_errors("status", clear=_document_refused)
def document_page(service: OCRService, ui: "Components", doc_value: Any, page: float) -> dict:
    """Another page of the uploaded document picked (1-based): that page into the image input."""
    return _document_page_view(service, ui, doc_value, int(page or 1))


def mode_controls(service: OCRService, ui: "Components", mode: str) -> dict:
    """The Preprocess tab's step boxes and settings: live in auto and manual mode, greyed out when it is off."""
    return {control: gr.update(interactive=mode != "off") for control in ui.prep_controls}


def example_picked(evt: gr.SelectData) -> Any:
    """A sample page clicked in the examples gallery: its file, for the image input (whose change reads it)."""
    value = evt.value if isinstance(evt.value, dict) else {}
    image = value.get("image") or {}
    return image.get("path") if isinstance(image, dict) else None


def document_cleared(service: OCRService, ui: "Components") -> dict:
    """The PDF / TIFF box emptied: its page picker goes with it (it stayed at "Page 2 / 2"; black-box pass)."""
    return {ui.doc_page: gr.update(visible=False, value=1)}


def _document_page_view(service: OCRService, ui: "Components", doc_value: Any, page: int) -> dict:
    path = doc_value.get("path") if isinstance(doc_value, dict) else doc_value
    if not path:
        return {ui.doc_page: gr.update(visible=False)}
    data = _upload_bytes(path)
    count = service.page_count(data)  # an image uploaded here is a document of one page
    index = min(max(page, 1), count)
    picker = gr.update(minimum=1, maximum=max(count, 2), value=index, visible=count > 1,
                       label=f"页 Page ({index} / {count})")
    try:
        rgb = load_image(service.load_page(data, index - 1))
    except OCRError as exc:
        if count < 2:
            raise
        # one damaged page of several: say so, and keep the picker so the other pages can still be read
        note = "  \n其他页仍可在上方选择 The other pages can still be picked above."
        message = render.user_message(exc.code, exc.message) + note
        return {ui.image: None, ui.doc_page: picker, ui.status: gr.update(value=message, visible=True, elem_classes=[])}
    return {ui.image: rgb, ui.status: gr.update(visible=False), ui.doc_page: picker}


def _payload_data(value: Any) -> bytes | np.ndarray | None:
    """The raw value of a gr.Image input (FileData dict, path, data URL or array) -> its bytes, or the
    array as given; None: nothing uploaded."""
    if value is None or isinstance(value, np.ndarray):
        return value
    if isinstance(value, dict):
        path, url = value.get("path"), value.get("url")
        if not path and not (isinstance(url, str) and url.startswith("data:")):
            return None
        value = path or url
    if not isinstance(value, (str, Path)):
        raise InvalidImageError("unsupported input; upload an image")
    if isinstance(value, str) and value.startswith("data:"):
        return decode_base64_image(value)
    return _upload_bytes(value)


def read_upload(value: Any, service: OCRService | None = None) -> tuple[np.ndarray | None, int]:
    """The image input's value as RGB, and how many pages the upload has: a document (PDF, multi-page
    TIFF) dropped on the image input gives its first page and its page count, so the caller can say that
    the other pages were not read (the document box reads every page)."""
    data = _payload_data(value)
    if data is None or isinstance(data, np.ndarray):
        return (None, 0) if data is None else (load_image(data), 1)
    doc = service.document(data) if service is not None else None
    if doc is None:
        return load_image(data, max_bytes=MAX_IMAGE_BYTES), 1
    count = doc.page_count()  # first: a document over the page limit is refused before any page is made
    return doc.page(0), count


def read_page(service: OCRService, image_value: Any, settings: UISettings) -> PageResult | None:
    """The page of the uploaded image, read by the service (None: nothing uploaded)."""
    return read_counted(service, image_value, settings)[0]


def read_counted(service: OCRService, image_value: Any, settings: UISettings) -> tuple[PageResult | None, int]:
    """:func:`read_page`, and the pages of the upload (more than 1: a document, of which page 1 was read)."""
    rgb, pages = read_upload(image_value, service)
    if rgb is None:
        return None, 0
    choice = {"model": settings.model} if settings.model else {}
    return service.ocr(rgb, preprocess=settings.config(), lm=settings.lm, **choice), pages


def pages_note(pages: int) -> str:
    """What the status says when a document was dropped on the image input: only its page 1 was read."""
    if pages <= 1:
        return ""
    return (f"ℹ️ 此文件共 {pages} 页，这里只读了第 1 页；请在下方的 PDF / TIFF 文件框上传以逐页阅读。 "
            f"This file has {pages} pages and only page 1 was read here: upload it in the PDF / TIFF box "
            "below to read every page.")


def line_index(line: Any) -> int:
    return int(line) if line not in (None, "") else 0


def _write_downloads(page: PageResult) -> tuple[str, str]:
    DOWNLOAD_DIR.mkdir(parents=True, exist_ok=True)
    files = sorted(DOWNLOAD_DIR.glob("ocr-*"), key=lambda p: p.stat().st_mtime)
    for old in files[: max(0, len(files) - MAX_DOWNLOADS)]:
        old.unlink(missing_ok=True)
    key = uuid.uuid4().hex[:16]
    txt = DOWNLOAD_DIR / f"ocr-{key}.txt"
    js = DOWNLOAD_DIR / f"ocr-{key}.json"
    txt.write_text(page.text + "\n", encoding="utf-8")
    js.write_text(json.dumps(page.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return str(txt), str(js)


def line_choices(page: PageResult) -> list[tuple[str, int]]:
    return [(render.line_label(i, ln.text), i) for i, ln in enumerate(page.lines)]


def char_choices(page: PageResult | None, line: int | None) -> list[tuple[str, int]]:
    choices = [("整行 whole line", WHOLE_LINE)]
    if page is not None and line is not None and 0 <= line < len(page.lines):
        choices += [(f"{i + 1}: {render.shown_space(c.char)}  ({c.confidence:.0%})", i)
                    for i, c in enumerate(page.lines[line].chars)]
    return choices


# ---------------------------------------------------------------- reading


def _cleared(ui: "Components") -> dict:
    """Every output of a reading emptied (the status message is left as it is)."""
    return {ui.text: "", ui.page_img: None, ui.highlighted: None, ui.lines_df: [], ui.page_json: None,
            ui.dl_txt: gr.update(value=None, interactive=False), ui.dl_json: gr.update(value=None, interactive=False),
            ui.summary: "", ui.line_dd: gr.update(choices=[], value=None),
            ui.char_dd: gr.update(choices=char_choices(None, None), value=WHOLE_LINE), ui.line_crop: None,
            ui.truth: "", ui.fields_df: gr.update(value=[], visible=HIDDEN)}


def _cleared_input(ui: "Components") -> dict:
    """After a bad file: the outputs emptied and the input too (no broken preview); the app stays usable."""
    return {**_cleared(ui), ui.image: None}


def _crop_file(page: PageResult, index: int) -> str | None:
    if not 0 <= index < len(page.lines):
        return None
    return VIEWS.image_file(page, f"crop{index}", lambda: render.upscale(page.lines[index].crop), fmt="png")


@reports_errors("status", clear=_cleared_input)
def read_image(service: OCRService, ui: "Components", image_value: Any, settings: UISettings) -> dict:
    """Read an image. Returns text, the page with its lines, coloured text, line table, JSON, downloads.

    Only what the first screen shows is made here, each piece once per page result (``VIEWS``);
    the Preprocess tab's pictures are made when that tab is shown (``preprocess_views``)."""
    started = time.perf_counter()
    page, pages = read_counted(service, image_value, settings)
    answered = time.perf_counter() - started
    if page is None:
        return _cleared(ui)
    txt_path, json_path = VIEWS.get(page, "downloads", lambda: _write_downloads(page))
    choices = line_choices(page)
    no_text = "" if page.lines else "ℹ️ 没有找到文字 No text was found in this image."
    status = "\n\n".join(note for note in (pages_note(pages), no_text) if note)
    info = gr.update(value=status, visible=bool(status), elem_classes=["status-info"])  # notes, not errors: blue
    return {ui.status: info, ui.text: page.text,
            ui.page_img: VIEWS.image_file(page, "page", lambda: render.page_view(page)),
            ui.highlighted: VIEWS.get(page, "highlighted", lambda: render.highlighted(page)),
            ui.lines_df: VIEWS.get(page, "lines", lambda: render.lines_table(page)),
            ui.page_json: VIEWS.get(page, "json", lambda: render.compact_json(page)),
            ui.dl_txt: gr.update(value=txt_path, interactive=True),
            ui.dl_json: gr.update(value=json_path, interactive=True),
            ui.summary: render.timings_markdown(page, answered),
            ui.line_dd: gr.update(choices=choices, value=0 if choices else None),
            ui.char_dd: gr.update(choices=char_choices(page, 0), value=WHOLE_LINE),
            ui.line_crop: _crop_file(page, 0), ui.truth: page.lines[0].text if page.lines else "",
            ui.fields_df: _fields_update(service, page)}


def _fields_update(service: OCRService, page: PageResult) -> Any:
    """The Fields panel (receipts and Chinese VAT invoices; hidden when the page has no key fields)."""
    rows = VIEWS.get(page, "fields", lambda: render.fields_table(service.fields(page).to_dict()))
    return gr.update(value=rows, visible=True if rows else HIDDEN)


def preprocess_views(service: OCRService, ui: "Components", image_value: Any, settings: UISettings,
                     shown: bool) -> dict:
    """The Preprocess tab's summary, pictures, step table and probability map — only while it is shown."""
    if not shown:
        return {ui.prep_md: gr.skip(), ui.steps_gallery: gr.skip(), ui.steps_df: gr.skip(), ui.det_view: gr.skip()}
    try:
        page = read_page(service, image_value, settings)
    except Exception:  # noqa: BLE001 - the reading event reports errors
        page = None
    if page is None:
        return {ui.prep_md: "", ui.steps_gallery: [], ui.steps_df: [], ui.det_view: None}
    prep = page.preprocess

    def gallery() -> list[tuple[str, str]]:
        items = render.steps_gallery(prep, original=page.image)
        return [(VIEWS.image_file(page, f"step{i}", lambda img=img: img), caption)
                for i, (img, caption) in enumerate(items)]

    return {ui.prep_md: render.steps_summary(prep, settings.mode), ui.steps_gallery: VIEWS.get(page, "steps", gallery),
            ui.steps_df: render.steps_table(prep),
            ui.det_view: VIEWS.image_file(page, "detector", lambda: render.detector_view(page))}


def shown_preprocess() -> bool:
    """The Preprocess tab was selected (its pictures are made only while it is shown)."""
    return True


def shown_other_tab() -> bool:
    return False


def line_changed(service: OCRService, ui: "Components", image_value: Any, settings: UISettings, line: Any) -> dict:
    """A new line picked: its characters for the character menu, its crop, its reading as the true text."""
    try:
        page = read_page(service, image_value, settings)
    except Exception:  # noqa: BLE001 - only a convenience update; the main event reports errors
        page = None
    idx = int(line) if line not in (None, "") else None
    ok = page is not None and idx is not None and 0 <= idx < len(page.lines)
    return {ui.char_dd: gr.update(choices=char_choices(page, idx), value=WHOLE_LINE),
            ui.line_crop: _crop_file(page, idx) if ok else None, ui.truth: page.lines[idx].text if ok else ""}


def _no_pick(ui: "Components") -> dict:
    return {ui.line_dd: gr.skip(), ui.char_dd: gr.skip(), ui.line_crop: gr.skip(), ui.truth: gr.skip()}


def pick_line(service: OCRService, ui: "Components", image_value: Any, settings: UISettings,
              evt: gr.SelectData) -> dict:
    """A click on a row of the line table picks that line for Explain."""
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    try:
        index = int(index)
    except (TypeError, ValueError):
        return _no_pick(ui)
    return {ui.line_dd: gr.update(value=index), **line_changed(service, ui, image_value, settings, index)}


def pick_line_on_page(service: OCRService, ui: "Components", image_value: Any, settings: UISettings,
                      evt: gr.SelectData) -> dict:
    """A click on the page picks the line under (or nearest to) the pointer for Explain."""
    try:
        x, y = (float(v) for v in evt.index[:2])
        page = read_page(service, image_value, settings)
    except Exception:  # noqa: BLE001 - a convenience; nothing to say
        return _no_pick(ui)
    index = render.line_at(page, x, y) if page is not None else None
    if index is None:
        return _no_pick(ui)
    return {ui.line_dd: gr.update(value=index), **line_changed(service, ui, image_value, settings, index)}


def pick_field(service: OCRService, ui: "Components", image_value: Any, settings: UISettings,
               evt: gr.SelectData) -> dict:
    """A click on a key field outlines where it was read on the page (green, over the line boxes) and
    picks the line it came from for Explain, so its characters' confidences can be looked at."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    page = read_page(service, image_value, settings)
    found = list(service.fields(page).to_dict()["fields"].values()) if page is not None else []
    if not isinstance(row, int) or not 0 <= row < len(found) or not found[row]["lines"]:
        return {**_no_pick(ui), ui.page_img: gr.skip()}
    field = found[row]
    index = int(field["lines"][0])
    outlined = render.draw_quads(render.page_view(page), field["char_boxes"] or field["boxes"], color=(0, 170, 60),
                                 thickness=3, labels=False)
    return {ui.line_dd: gr.update(value=index), ui.page_img: outlined,
            **line_changed(service, ui, image_value, settings, index)}


# ---------------------------------------------------------------- explaining


def _least_confident(view: LineView) -> int | None:
    """The character the per-character maps show by default: the least confident one that is visible (a space,
    often the least confident, would show a map of the gap between words); a line of spaces only: the first."""
    if not view.chars:
        return None
    visible = [i for i, c in enumerate(view.chars) if not c.char.isspace()] or [0]
    return min(visible, key=lambda i: view.chars[i].confidence)


#: how to read the gradient reach (the UI's one sentence on it)
REACH_HINT = ("如何解读：梯度范围是决定这个字的 90% 输入梯度所在的列；超出这个字本身的部分是模型为这个字参考的上下文"
              "（CNN 的通道注意力对整行取平均，所以范围常常很宽）。"
              " How to read it: the reach is the span of columns holding 90% of the input gradient behind this "
              "character; the part beyond the character's own pixels is context the decision used. It is often "
              "wide because the CNN's squeeze-and-excite blocks average over the whole line, so a wide reach alone "
              "does not show the BiLSTM at work; switching the BiLSTM off costs the fast model 0.37 points and the "
              "accurate one 0.58 on the validation slice, mostly on document and receipt lines (model card).")


def _explanation_notes(result: dict, note: str) -> str:
    """The explanation's note, its timings and each character's gradient reach."""
    notes = [note]
    timings = result.get("timings") or {}
    if timings:
        notes.append("耗时 time: " + " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))
    for choice in result.get("decoder_choices") or []:
        notes.append(f"“{render.shown_space(choice['char'])}” (#{choice['index'] + 1}) 由解码器（语言模型、词表或车牌规则）或整页批量识别选定 chosen by the reading, not "
                     f"by this crop's frames alone: the decoder (language model, word list or plate rules) or the "
                     f"page's read, where the line was read in a batch with others (with the language model off, "
                     f"only the latter); this crop's frames alone prefer "
                     + (f"“{choice['image_prefers']}”" if choice["image_prefers"] else "no character here (blank)")
                     + f" ({choice['image_probability']:.2f} vs {choice['confidence']:.2f})")
    chars = result.get("chars") or []
    reaches = result.get("tables", {}).get("reach") or {}
    for i, reach in reaches.items():
        if 0 <= int(i) < len(chars):
            x0, x1 = reach["x_start"] * reach["scale"], reach["x_end"] * reach["scale"]
            covered = reach.get("chars_covered")
            span = f" · 覆盖 covers {covered} 个字 characters" if covered else ""
            notes.append(f"“{chars[int(i)]['char']}” 90% 梯度范围 gradient reach: {x0:.0f}–{x1:.0f} px{span}")
    if reaches:
        notes.append(REACH_HINT)
    return "\n\n".join(notes)


def _view_image(name: str, images: dict, target: int | None) -> np.ndarray | None:
    """The picture of one "more views" panel (None: that method did not run)."""
    if name == "confidence":
        return images.get("confidence")
    if name == "topk":
        return images.get("alignment") if images.get("alignment_matrix") is not None else None
    per_char = images.get(f"{name}_chars") or {}
    picture = per_char.get(target) if target is not None else None
    if picture is None and per_char:
        picture = next(iter(per_char.values()))
    return render.heat_panel(picture, title=render.EXPLAIN_VIEWS[name][0].split(" ", 1)[-1])


def explanation_outputs(ui: "Components", result: dict, crop: np.ndarray, char_index: int | None,
                        note: str) -> dict:
    """An explanation as the Explain tab's components show it; a view whose method did not run is hidden."""
    images, chars = result.get("images") or {}, result.get("chars") or []
    per_char = images.get("gradcam_chars") or {}
    cam_char = per_char.get(char_index) if char_index is not None else None
    if cam_char is None and per_char:
        cam_char = next(iter(per_char.values()))
    headers, rows = render.timestep_table(result.get("tables", {}).get("alignment"), chars)
    out = {ui.line_crop: render.upscale(images.get("boxes", crop)),
           ui.cam_line: render.heat_panel(images.get("gradcam_line"), "Grad-CAM whole line"),
           ui.cam_char: render.heat_panel(cam_char, "Grad-CAM character"),
           ui.align_img: images.get("alignment_matrix", images.get("alignment")),
           ui.align_df: gr.update(value=rows, headers=headers), ui.explain_md: _explanation_notes(result, note)}
    for name, (column, image) in ui.views.items():
        picture = _view_image(name, images, char_index)
        out[column] = gr.update(visible=True if picture is not None else HIDDEN)
        out[image] = picture
    return out


def _empty_explanation(ui: "Components", note: str, crop: Any = None) -> dict:
    out = {ui.line_crop: crop, ui.cam_line: None, ui.cam_char: None, ui.align_img: None,
           ui.align_df: gr.update(value=[]), ui.explain_md: note}
    for column, image in ui.views.values():
        out.update({column: gr.update(visible=HIDDEN), image: None})
    return out


@reports_errors("explain_md")
def explain(service: OCRService, ui: "Components", image_value: Any, settings: UISettings, line: Any, char: Any,
            extra_methods: list[str] | None, progress: gr.Progress = gr.Progress()) -> dict:
    """Explain one line: Grad-CAM (whole line and per character), CTC alignment, optional saliency /
    occlusion / integrated gradients (a progress bar while they run)."""
    page = read_page(service, image_value, settings)
    if page is None:
        return _empty_explanation(ui, "请先上传图片 Upload an image first.")
    try:
        view = service.pick_line(page, line_index(line))
    except NoTextLineError:
        return _empty_explanation(ui, "没有可解释的文字行 No text line to explain.")
    char_index = int(char) if char not in (None, "", WHOLE_LINE) else None
    if char_index is not None and not 0 <= char_index < len(view.chars):
        char_index = None
    # per-character maps for the least confident character (the interesting one), unless one is picked
    target = char_index if char_index is not None else _least_confident(view)
    target_note = " · 单字图为最低置信字 character maps show the least confident character" \
        if char_index is None and target is not None else ""
    methods = ("gradcam", "alignment", *[m for m in (extra_methods or []) if m])
    progress(0.0, desc="解释中 explaining")

    def report(fraction: float, desc: str | None = None) -> None:
        progress(fraction, desc=desc or f"解释中 explaining ({', '.join(methods)})")

    started = time.perf_counter()
    try:
        result = service.explain_line(view.crop, methods=methods, char_index=target, progress=report,
                                      reading=view.line_result)
    except OCRError:
        if target is None:
            raise
        result = service.explain_line(view.crop, methods=methods, char_index=None, progress=report,
                                      reading=view.line_result)
        target = None
    shown = target is not None and target < len(view.chars)
    which = f"“{render.shown_space(view.chars[target].char)}” (#{target + 1})" if shown else "—"
    note = (f"第 {view.index + 1} 行 Line {view.index + 1}: **{view.text}** · 置信度 confidence {view.confidence:.1%} · "
            f"单字 character: {which}{target_note} · {(time.perf_counter() - started):.2f} s")
    return explanation_outputs(ui, result, view.crop, target, note)


def _picked_line(service: OCRService, image_value: Any, settings: UISettings, line: Any) -> LineView:
    page = read_page(service, image_value, settings)
    if page is None or not page.lines:
        raise NoTextLineError("read an image with text first")
    return service.pick_line(page, line_index(line))


@reports_errors("pattr_md")
def attribute_preprocessing(service: OCRService, ui: "Components", image_value: Any, settings: UISettings,
                            line: Any, progress: gr.Progress = gr.Progress()) -> dict:
    """Re-read the line with each preprocessing step toggled: which step helps or hurts which character."""
    view = _picked_line(service, image_value, settings, line)
    progress(0.1, desc="逐步切换重读 re-reading with each step toggled")
    report = service.attribute_preprocessing(view)
    md, headers, rows = render.preprocess_attribution(report)
    base = float((report.get("base") or {}).get("confidence") or 0.0)
    if round(base, 3) != round(view.confidence, 3):  # the same line, two numbers: say why (black-box pass)
        md += (f"\n\n基准读数是单独重读这一行图像（页面读数在批量中读出：{view.confidence:.1%}） · The base reading re-reads "
               f"the line's crop alone, so each toggle is compared like with like; the page read it in a batch with "
               f"its other lines at {view.confidence:.1%}.")
    return {ui.pattr_md: md, ui.pattr_df: gr.update(value=rows, headers=headers)}


@reports_errors("attr_md")
def attribute_errors(service: OCRService, ui: "Components", image_value: Any, settings: UISettings, line: Any,
                     truth: str, progress: gr.Progress = gr.Progress()) -> dict:
    """Given the true text of a line, show which characters were misread and where the evidence was.

    The true-text box starts from the line's reading (correct what is wrong); a true text that shares
    little with the line gets a warning: it is probably another line's."""
    view = _picked_line(service, image_value, settings, line)
    truth = (truth or "").strip()
    if not truth:
        return {ui.attr_md: "请输入该行的正确文本 Type the true text of the line (start from the reading and "
                            "correct what is wrong).", ui.attr_img: gr.update(value=None, visible=HIDDEN),
                ui.attr_df: gr.update(value=[], visible=HIDDEN)}
    progress(0.2, desc="对齐 aligning")
    md, marked, headers, rows = render.error_attribution(service.attribute_errors(view, truth), view.crop)
    if render.similarity(view.text, truth) < MISMATCH:
        md = (f"⚠️ **这是正确的行吗？ Is this the right line?** 第 {view.index + 1} 行读作 line {view.index + 1} "
              f"reads “{view.text}”, which shares little with the true text you typed — pick its line in the "
              "Line menu (or click it on the page).\n\n" + md)
    return {ui.attr_md: md, ui.attr_img: gr.update(value=marked, visible=True if marked is not None else HIDDEN),
            ui.attr_df: gr.update(value=rows, headers=headers, visible=True if rows else HIDDEN)}
