"""The Gradio UI's event handlers: module-level functions that return ``{component: value}`` dicts.

Each handler takes the service and the UI's components first (``bind`` fills them in), then
what Gradio passes. The Preprocess tab's seven controls arrive as one :class:`UISettings`;
``bind`` spreads it into named parameters for Gradio, so the events' API (``/ocr``,
``/explain``, ...) keeps its parameter names. Reading and line choice go through
``ocr.service.OCRService``, as in the REST API: a bad line index is an error in both.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import tempfile
import time
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr
import numpy as np

from demo import render
from demo.http_input import MAX_IMAGE_BYTES, APIError, decode_base64_image
from ocr.errors import InvalidImageError, OCRError
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
CANNOT = "无法处理 Cannot process"


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


# ---------------------------------------------------------------- wiring


def user_errors(fn: Callable) -> Callable:
    """Every failure becomes a short gr.Error: the OCRError's message, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (OCRError, APIError) as exc:
            raise gr.Error(exc.message, title=CANNOT, print_exception=False) from None
        except ValueError as exc:  # invalid settings from the preprocessing controls
            raise gr.Error(f"设置无效 Invalid setting: {exc}", print_exception=False) from None
        except Exception:  # noqa: BLE001
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("内部错误，请重试 Internal error — please try again (details are in the server log)",
                           print_exception=False) from None

    return wrapper


def bind(handler: Callable, service: OCRService, ui: "Components") -> Callable:
    """``handler`` as Gradio calls it: service and components filled in, ``settings`` spread into
    the seven controls' values (named as Gradio's API shows them), type hints kept (``gr.SelectData``)."""
    handler_sig = inspect.signature(handler)
    hints = typing.get_type_hints(handler, localns={"Components": type(ui)})
    params = list(handler_sig.parameters.values())[2:]
    if "settings" in handler_sig.parameters:
        at = [p.name for p in params].index("settings")
        spread = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in SETTING_NAMES]
        params = params[:at] + spread + params[at + 1:]
    signature = handler_sig.replace(parameters=params)

    def event(*args: Any, **kwargs: Any) -> Any:
        values = signature.bind(*args, **kwargs).arguments
        if "settings" in handler_sig.parameters:
            values["settings"] = UISettings(*(values.pop(n) for n in SETTING_NAMES))
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


def read_payload(value: Any) -> np.ndarray | None:
    """The raw value of a gr.Image input (FileData dict, path, data URL or array) -> RGB array."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return load_image(value)
    if isinstance(value, dict):
        path, url = value.get("path"), value.get("url")
        if path:
            return load_image(_safe_path(path), max_bytes=MAX_IMAGE_BYTES)
        if isinstance(url, str) and url.startswith("data:"):
            return load_image(decode_base64_image(url), max_bytes=MAX_IMAGE_BYTES)
        return None
    if isinstance(value, (str, Path)):
        if isinstance(value, str) and value.startswith("data:"):
            return load_image(decode_base64_image(value), max_bytes=MAX_IMAGE_BYTES)
        return load_image(_safe_path(value), max_bytes=MAX_IMAGE_BYTES)
    raise InvalidImageError("unsupported input; upload an image")


def read_page(service: OCRService, image_value: Any, settings: UISettings) -> PageResult | None:
    """The page of the uploaded image, read by the service (None: nothing uploaded)."""
    rgb = read_payload(image_value)
    return None if rgb is None else service.ocr(rgb, preprocess=settings.config())


def line_index(line: Any) -> int:
    return int(line) if line not in (None, "") else 0


def _write_downloads(page: PageResult, key: str) -> tuple[str, str]:
    DOWNLOAD_DIR.mkdir(parents=True, exist_ok=True)
    files = sorted(DOWNLOAD_DIR.glob("ocr-*"), key=lambda p: p.stat().st_mtime)
    for old in files[: max(0, len(files) - MAX_DOWNLOADS)]:
        old.unlink(missing_ok=True)
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
        choices += [(f"{i + 1}: {c.char}  ({c.confidence:.0%})", i) for i, c in enumerate(page.lines[line].chars)]
    return choices


# ---------------------------------------------------------------- reading


@user_errors
def read_image(service: OCRService, ui: "Components", image_value: Any, settings: UISettings) -> dict:
    """Read an image. Returns text, page with boxes, coloured text, lines, JSON, downloads, preprocessing views."""
    page = read_page(service, image_value, settings)
    if page is None:
        return {ui.text: "", ui.annotated: None, ui.highlighted: None, ui.lines_df: [], ui.page_json: None,
                ui.dl_txt: gr.update(value=None, interactive=False),
                ui.dl_json: gr.update(value=None, interactive=False), ui.summary: "", ui.steps_gallery: [],
                ui.det_view: None, ui.line_dd: gr.update(choices=[], value=None),
                ui.char_dd: gr.update(choices=char_choices(None, None), value=WHOLE_LINE), ui.line_crop: None,
                ui.prep_md: ""}
    if not page.lines:
        gr.Warning("没有找到文字 No text was found in this image.")
    key = hashlib.sha256(json.dumps(page.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    txt_path, json_path = _write_downloads(page, key)
    prep = page.preprocess
    angle = prep.angle if prep is not None else 0.0
    prep_md = ("应用的步骤 Applied steps: " + (", ".join(prep.applied) if prep is not None and prep.applied else "—")
               + (f" · 纠斜 deskewed {angle:+.2f}°" if angle else ""))
    choices = line_choices(page)
    return {ui.text: page.text, ui.annotated: (page.image, render.annotations(page)),
            ui.highlighted: render.highlighted(page), ui.lines_df: render.lines_table(page),
            ui.page_json: page.to_dict(), ui.dl_txt: gr.update(value=txt_path, interactive=True),
            ui.dl_json: gr.update(value=json_path, interactive=True), ui.summary: render.timings_markdown(page),
            ui.steps_gallery: render.steps_gallery(prep), ui.det_view: render.detector_view(page),
            ui.line_dd: gr.update(choices=choices, value=0 if choices else None),
            ui.char_dd: gr.update(choices=char_choices(page, 0), value=WHOLE_LINE),
            ui.line_crop: render.upscale(page.lines[0].crop) if page.lines else None, ui.prep_md: prep_md}


def line_changed(service: OCRService, ui: "Components", image_value: Any, settings: UISettings, line: Any) -> dict:
    """A new line picked: its characters for the character menu, and its crop."""
    try:
        page = read_page(service, image_value, settings)
    except Exception:  # noqa: BLE001 - only a convenience update; the main event reports errors
        page = None
    idx = int(line) if line not in (None, "") else None
    crop = page.lines[idx].crop if page is not None and idx is not None and 0 <= idx < len(page.lines) else None
    return {ui.char_dd: gr.update(choices=char_choices(page, idx), value=WHOLE_LINE),
            ui.line_crop: render.upscale(crop)}


def pick_line(service: OCRService, ui: "Components", image_value: Any, settings: UISettings,
              evt: gr.SelectData) -> dict:
    """A click on a box of the page or a row of the line table picks that line for Explain."""
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    try:
        index = int(index)
    except (TypeError, ValueError):
        return {}
    return {ui.line_dd: gr.update(value=index), **line_changed(service, ui, image_value, settings, index)}


# ---------------------------------------------------------------- explaining


def _least_confident(view: LineView) -> int | None:
    if not view.chars:
        return None
    return min(range(len(view.chars)), key=lambda i: view.chars[i].confidence)


def _explanation_notes(result: dict, note: str) -> str:
    """The explanation's note, its timings and each character's gradient reach."""
    notes = [note]
    timings = result.get("timings") or {}
    if timings:
        notes.append("耗时 time: " + " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))
    chars = result.get("chars") or []
    for i, reach in (result.get("tables", {}).get("reach") or {}).items():
        if 0 <= int(i) < len(chars):
            x0, x1 = reach["x_start"] * reach["scale"], reach["x_end"] * reach["scale"]
            notes.append(f"“{chars[int(i)]['char']}” 90% 梯度范围 gradient reach: {x0:.0f}–{x1:.0f} px")
    return "\n\n".join(notes)


def _extra_views(images: dict, chars: list) -> list[tuple[np.ndarray, str]]:
    """The gallery beside the main maps: confidence strip, top-k, and the opt-in methods per character."""
    extra = []
    if images.get("confidence") is not None:
        extra.append((images["confidence"], "逐字置信度 Per-character confidence"))
    if images.get("alignment") is not None and images.get("alignment_matrix") is not None:
        extra.append((images["alignment"], "每个时间步的前 k 类 Top-k classes per time step"))
    for key, label in (("saliency", "梯度显著图 Saliency"), ("occlusion", "遮挡 Occlusion"),
                       ("ig", "积分梯度 Integrated gradients")):
        for i, img in (images.get(f"{key}_chars") or {}).items():
            ch = chars[i]["char"] if 0 <= i < len(chars) else "?"
            extra.append((img, f"{label} · “{ch}” (#{i + 1})"))
    return extra


def explanation_outputs(ui: "Components", result: dict, crop: np.ndarray, char_index: int | None,
                        note: str) -> dict:
    """An explanation as the Explain tab's components show it."""
    images, chars = result.get("images") or {}, result.get("chars") or []
    per_char = images.get("gradcam_chars") or {}
    cam_char = per_char.get(char_index) if char_index is not None else None
    if cam_char is None and per_char:
        cam_char = next(iter(per_char.values()))
    headers, rows = render.timestep_table(result.get("tables", {}).get("alignment"), chars)
    big = render.upscale
    return {ui.line_crop: big(images.get("boxes", crop)), ui.cam_line: big(images.get("gradcam_line")),
            ui.cam_char: big(cam_char), ui.align_img: images.get("alignment_matrix", images.get("alignment")),
            ui.align_df: gr.update(value=rows, headers=headers), ui.extra_gallery: _extra_views(images, chars),
            ui.explain_md: _explanation_notes(result, note)}


def _empty_explanation(ui: "Components", note: str, crop: np.ndarray | None = None) -> dict:
    return {ui.line_crop: crop, ui.cam_line: None, ui.cam_char: None, ui.align_img: None,
            ui.align_df: gr.update(value=[]), ui.extra_gallery: [], ui.explain_md: note}


@user_errors
def explain(service: OCRService, ui: "Components", image_value: Any, settings: UISettings, line: Any, char: Any,
            extra_methods: list[str] | None, progress: gr.Progress = gr.Progress()) -> dict:
    """Explain one line: Grad-CAM (whole line and per character), CTC alignment, optional saliency /
    occlusion / integrated gradients."""
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

    def report(fraction: float, desc: str | None = None) -> None:
        progress(fraction, desc=desc or "解释中 explaining")

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
    which = f"“{view.chars[target].char}” (#{target + 1})" if target is not None and target < len(view.chars) else "—"
    note = (f"第 {view.index + 1} 行 Line {view.index + 1}: **{view.text}** · 置信度 confidence {view.confidence:.1%} · "
            f"单字 character: {which}{target_note} · {(time.perf_counter() - started):.1f} s")
    return explanation_outputs(ui, result, view.crop, target, note)


def _picked_line(service: OCRService, image_value: Any, settings: UISettings, line: Any) -> LineView:
    page = read_page(service, image_value, settings)
    if page is None or not page.lines:
        raise gr.Error("请先识别一张有文字的图片 Read an image with text first.", print_exception=False)
    return service.pick_line(page, line_index(line))


@user_errors
def attribute_preprocessing(service: OCRService, ui: "Components", image_value: Any, settings: UISettings,
                            line: Any, progress: gr.Progress = gr.Progress()) -> dict:
    """Re-read the line with each preprocessing step toggled: which step helps or hurts which character."""
    view = _picked_line(service, image_value, settings, line)
    progress(0.1, desc="逐步切换重读 re-reading with each step toggled")
    md, headers, rows = render.preprocess_attribution(service.attribute_preprocessing(view))
    return {ui.pattr_md: md, ui.pattr_df: gr.update(value=rows, headers=headers)}


@user_errors
def attribute_errors(service: OCRService, ui: "Components", image_value: Any, settings: UISettings, line: Any,
                     truth: str, progress: gr.Progress = gr.Progress()) -> dict:
    """Given the true text of a line, show which characters were misread and where the evidence was."""
    view = _picked_line(service, image_value, settings, line)
    if not (truth or "").strip():
        raise gr.Error("请输入正确文本 Type the true text of the line.", print_exception=False)
    progress(0.2, desc="对齐 aligning")
    md, gallery, headers, rows = render.error_attribution(service.attribute_errors(view, truth.strip()), view.crop)
    return {ui.attr_md: md, ui.attr_gallery: gallery, ui.attr_df: gr.update(value=rows, headers=headers)}
