"""The Gradio demo: input, preprocessing, result, explanations, model; mounted on the REST API's FastAPI app.

    from demo.app import build_app
    app = build_app()                     # loads the model once; FastAPI with /api/v1/* and the UI at /
    uvicorn.run(app, host="0.0.0.0", port=7860)

Every model event shares one queue (``concurrency_id="model"``) and has an
``api_name`` for ``gradio_client``: ``/ocr``, ``/explain``, ``/attribute_errors``.
Events take the raw upload (``preprocess=False``) and decode it with
``ocr.imageio.load_image``, so a bad upload gets the project's own short
message, never a stack trace.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np

from demo import model_info, render
from demo.cache import cache_ttl, install_sweeper
from ocr.api import MAX_IMAGE_BYTES, APIError, OCRService, create_api, decode_base64_image
from ocr.errors import InvalidImageError, OCRError
from ocr.imageio import load_image
from ocr.preprocess import STEP_ORDER, PreprocessConfig, config_from_dict

log = logging.getLogger("demo")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
DOWNLOAD_DIR = Path(tempfile.gettempdir()) / "ocr-demo-downloads"
MAX_DOWNLOADS = 200

TITLE = "可解释 OCR · Explainable CRNN OCR"
INTRO = """# 可解释 OCR · Explainable CRNN OCR
中英文文字识别，并解释模型**为什么**这样读 — Chinese + English OCR (CNN → BiLSTM → CTC) that shows *why* it read each character.
上传图片、粘贴或拍照，或点下面的示例 · Upload, paste or snap a picture, or click an example below.
"""

CSS = """
#result-text textarea { font-size: 1.05rem; }
.small-note { font-size: 0.85rem; opacity: 0.8; }
"""

MODE_CHOICES = [("自动 auto", "auto"), ("手动 manual", "manual"), ("关闭 off", "off")]
STEP_LABELS = {
    "grayscale": "灰度 grayscale",
    "denoise": "去噪 denoise",
    "contrast": "对比度 CLAHE contrast",
    "binarize": "二值化 binarize",
    "deskew": "纠斜 deskew",
    "normalize_size": "尺寸归一 normalize size (single line)",
}
OPTIONAL_METHODS = [("梯度显著图 Saliency", "saliency"), ("遮挡 Occlusion (slow)", "occlusion"),
                    ("积分梯度 Integrated gradients (slow)", "ig")]
WHOLE_LINE = -1


# ---------------------------------------------------------------- helpers


def user_errors(fn: Callable) -> Callable:
    """Every failure becomes a short gr.Error: the OCRError's message, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except OCRError as exc:
            raise gr.Error(exc.message, title="无法处理 Cannot process", print_exception=False) from None
        except APIError as exc:
            raise gr.Error(exc.message, title="无法处理 Cannot process", print_exception=False) from None
        except ValueError as exc:  # invalid settings from the preprocessing controls
            raise gr.Error(f"设置无效 Invalid setting: {exc}", print_exception=False) from None
        except Exception:  # noqa: BLE001
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("内部错误，请重试 Internal error — please try again (details are in the server log)",
                           print_exception=False) from None

    return wrapper


def _readable_roots() -> list[Path]:
    """Where an event's image may come from: Gradio's upload/cache folder and the examples."""
    from gradio.utils import get_upload_folder

    return [Path(get_upload_folder()).resolve(), EXAMPLES_DIR.resolve()]


def _safe_path(path: str | Path) -> Path:
    """Refuse server paths outside the upload folder and the examples (defence in depth:
    :func:`build_app` also turns on Gradio's own "was it uploaded?" check)."""
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


def preprocess_config(mode: str | None, steps: list[str] | None, denoise_h: float, clahe_clip: float,
                      block_size: float, c: float, deskew_angle: float) -> PreprocessConfig:
    steps = set(steps or [])
    angle = float(deskew_angle or 0.0)
    return config_from_dict({
        "mode": mode or "auto",
        "grayscale": {"enabled": "grayscale" in steps},
        "denoise": {"enabled": "denoise" in steps, "h": float(denoise_h)},
        "contrast": {"enabled": "contrast" in steps, "clip_limit": float(clahe_clip)},
        "binarize": {"enabled": "binarize" in steps, "block_size": int(block_size), "c": float(c)},
        "deskew": {"enabled": "deskew" in steps, "angle": angle if angle else None},
        "normalize_size": {"enabled": "normalize_size" in steps},
    })


def _write_downloads(page: Any, key: str) -> tuple[str, str]:
    DOWNLOAD_DIR.mkdir(parents=True, exist_ok=True)
    files = sorted(DOWNLOAD_DIR.glob("ocr-*"), key=lambda p: p.stat().st_mtime)
    for old in files[: max(0, len(files) - MAX_DOWNLOADS)]:
        old.unlink(missing_ok=True)
    txt = DOWNLOAD_DIR / f"ocr-{key}.txt"
    js = DOWNLOAD_DIR / f"ocr-{key}.json"
    txt.write_text(page.text + "\n", encoding="utf-8")
    js.write_text(json.dumps(page.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return str(txt), str(js)


def _line_choices(page: Any) -> list[tuple[str, int]]:
    return [(render.line_label(i, ln.text), i) for i, ln in enumerate(page.lines)]


def _char_choices(page: Any, line: int | None) -> list[tuple[str, int]]:
    choices = [("整行 whole line", WHOLE_LINE)]
    if page is not None and line is not None and 0 <= line < len(page.lines):
        choices += [(f"{i + 1}: {c.char}  ({c.confidence:.0%})", i) for i, c in enumerate(page.lines[line].chars)]
    return choices


# ---------------------------------------------------------------- the UI


def build_blocks(service: OCRService, *, examples_dir: Path = EXAMPLES_DIR) -> gr.Blocks:
    """The Blocks UI around a loaded :class:`OCRService` (queue() is called by :func:`build_app`)."""
    recognizer = service.recognizer

    def run_page(image_value: Any, *settings: Any) -> tuple[Any, np.ndarray] | tuple[None, None]:
        rgb = read_payload(image_value)
        if rgb is None:
            return None, None
        return service.pipeline.run(rgb, preprocess=preprocess_config(*settings)), rgb

    # ------------------------------------------------------------ handlers

    n_ocr_outputs = 14

    @user_errors
    def do_ocr(image_value: Any, mode: str, steps: list[str], denoise_h: float, clahe_clip: float,
               block_size: float, c: float, deskew_angle: float):
        """Read an image. Returns text, page with boxes, coloured text, lines, JSON, downloads, preprocessing views."""
        page, rgb = run_page(image_value, mode, steps, denoise_h, clahe_clip, block_size, c, deskew_angle)
        if page is None:
            empty_dd = gr.update(choices=[], value=None)
            return ("", None, None, [], None, gr.update(value=None, interactive=False),
                    gr.update(value=None, interactive=False), "", [], None, empty_dd,
                    gr.update(choices=_char_choices(None, None), value=WHOLE_LINE), None, "")
        if not page.lines:
            gr.Warning("没有找到文字 No text was found in this image.")
        key = hashlib.sha256(json.dumps(page.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
        txt_path, json_path = _write_downloads(page, key)
        summary = render.timings_markdown(page)
        prep = page.preprocess
        angle = getattr(prep, "angle", 0.0) if prep is not None else 0.0
        prep_md = ("应用的步骤 Applied steps: " + (", ".join(prep.applied) if prep is not None and prep.applied else "—")
                   + (f" · 纠斜 deskewed {angle:+.2f}°" if angle else ""))
        line_choices = _line_choices(page)
        return (
            page.text,
            (page.image, render.annotations(page)),
            render.highlighted(page),
            render.lines_table(page),
            page.to_dict(),
            gr.update(value=txt_path, interactive=True),
            gr.update(value=json_path, interactive=True),
            summary,
            render.steps_gallery(prep),
            render.detector_view(page),
            gr.update(choices=line_choices, value=0 if line_choices else None),
            gr.update(choices=_char_choices(page, 0), value=WHOLE_LINE),
            render.upscale(page.lines[0].crop) if page.lines else None,
            prep_md,
        )

    def explain_outputs(result: dict, crop: np.ndarray, char_index: int | None, note: str) -> tuple:
        images = result.get("images") or {}
        tables = result.get("tables") or {}
        chars = result.get("chars") or []
        line_img = images.get("boxes", crop)
        cam_line = images.get("gradcam_line")
        per_char = images.get("gradcam_chars") or {}
        cam_char = per_char.get(char_index) if char_index is not None else None
        if cam_char is None and per_char:
            cam_char = next(iter(per_char.values()))
        align_img = images.get("alignment_matrix", images.get("alignment"))
        extra = []
        if images.get("confidence") is not None:
            extra.append((images["confidence"], "逐字置信度 Per-character confidence"))
        if images.get("alignment") is not None and images.get("alignment_matrix") is not None:
            extra.append((images["alignment"], "每个时间步的前 k 类 Top-k classes per time step"))
        for key, label in (("saliency", "梯度显著图 Saliency"), ("occlusion", "遮挡 Occlusion"),
                           ("ig", "积分梯度 Integrated gradients")):
            panels = images.get(f"{key}_chars") or {}
            for i, img in panels.items():
                ch = chars[i]["char"] if 0 <= i < len(chars) else "?"
                extra.append((img, f"{label} · “{ch}” (#{i + 1})"))
        headers, rows = render.timestep_table(tables.get("alignment"), chars)
        notes = [note]
        timings = result.get("timings") or {}
        if timings:
            notes.append("耗时 time: " + " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))
        reach = tables.get("reach") or {}
        for i, r in reach.items():
            if isinstance(r, dict) and 0 <= int(i) < len(chars):
                span = r.get("x_range") or r.get("window") or r.get("columns")
                if span:
                    notes.append(f"“{chars[int(i)]['char']}” 90% 梯度范围 gradient reach: {span}")
        big = render.upscale
        return (big(line_img), big(cam_line), big(cam_char), align_img, gr.update(value=rows, headers=headers), extra,
                "\n\n".join(notes))

    n_explain_outputs = 7

    @user_errors
    def do_explain(image_value: Any, mode: str, steps: list[str], denoise_h: float, clahe_clip: float,
                   block_size: float, c: float, deskew_angle: float, line: Any, char: Any,
                   extra_methods: list[str] | None, progress=gr.Progress()):
        """Explain one line: Grad-CAM (whole line and per character), CTC alignment, optional saliency /
        occlusion / integrated gradients."""
        page, _ = run_page(image_value, mode, steps, denoise_h, clahe_clip, block_size, c, deskew_angle)
        if page is None:
            return (None,) * 4 + (gr.update(value=[]), [], "请先上传图片 Upload an image first.")
        if not page.lines:
            return (None,) * 4 + (gr.update(value=[]), [], "没有可解释的文字行 No text line to explain.")
        reason = service.explain_available()
        line = int(line) if line not in (None, "") else 0
        if not 0 <= line < len(page.lines):
            line = 0
        ln = page.lines[line]
        if reason:
            gr.Warning(reason)
            return (ln.crop, None, None, None, gr.update(value=[]), [], f"⚠️ {reason}")
        char_index = int(char) if char not in (None, "", WHOLE_LINE) else None
        if char_index is not None and not 0 <= char_index < len(ln.chars):
            char_index = None
        extra = [m for m in (extra_methods or []) if m]
        target = char_index
        target_note = ""
        if target is None and ln.chars:
            # per-character maps for the least confident character (the interesting one), unless one is picked
            target = min(range(len(ln.chars)), key=lambda i: ln.chars[i].confidence)
            target_note = " · 单字图为最低置信字 character maps show the least confident character"
        methods = ("gradcam", "alignment", *extra)

        def report(fraction: float, desc: str | None = None) -> None:
            progress(fraction, desc=desc or "解释中 explaining")

        started = time.perf_counter()
        try:
            result = service.explain_line(ln.crop, methods=methods, char_index=target, progress=report)
        except OCRError:
            if target is None:
                raise
            result = service.explain_line(ln.crop, methods=methods, char_index=None, progress=report)
            target = None
        which = f"“{ln.chars[target].char}” (#{target + 1})" if target is not None and target < len(ln.chars) else "—"
        note = (f"第 {line + 1} 行 Line {line + 1}: **{ln.text}** · 置信度 confidence {ln.confidence:.1%} · "
                f"单字 character: {which}{target_note} · {(time.perf_counter() - started):.1f} s")
        return explain_outputs(result if isinstance(result, dict) else {}, ln.crop, target, note)

    @user_errors
    def do_attribute_preprocessing(image_value: Any, mode: str, steps: list[str], denoise_h: float,
                                   clahe_clip: float, block_size: float, c: float, deskew_angle: float, line: Any,
                                   progress=gr.Progress()):
        """Re-read the line with each preprocessing step toggled: which step helps or hurts which character."""
        page, _ = run_page(image_value, mode, steps, denoise_h, clahe_clip, block_size, c, deskew_angle)
        if page is None or not page.lines:
            raise gr.Error("请先识别一张有文字的图片 Read an image with text first.", print_exception=False)
        try:
            from explain.preprocess_attribution import attribute_preprocessing
        except ImportError:
            msg = "预处理归因暂不可用 Preprocessing attribution is not available in this build."
            gr.Warning(msg)
            return msg, gr.update(value=[])
        line = int(line) if line not in (None, "") else 0
        ln = page.lines[line if 0 <= line < len(page.lines) else 0]
        progress(0.1, desc="逐步切换重读 re-reading with each step toggled")
        report = attribute_preprocessing(recognizer, ln.crop)
        md, headers, rows = render.preprocess_attribution(report)
        return md, gr.update(value=rows, headers=headers)

    @user_errors
    def do_attribute(image_value: Any, mode: str, steps: list[str], denoise_h: float, clahe_clip: float,
                     block_size: float, c: float, deskew_angle: float, line: Any, truth: str,
                     progress=gr.Progress()):
        """Given the true text of a line, show which characters were misread and where the evidence was."""
        page, _ = run_page(image_value, mode, steps, denoise_h, clahe_clip, block_size, c, deskew_angle)
        if page is None or not page.lines:
            raise gr.Error("请先识别一张有文字的图片 Read an image with text first.", print_exception=False)
        if not (truth or "").strip():
            raise gr.Error("请输入正确文本 Type the true text of the line.", print_exception=False)
        try:
            from explain.errors import attribute_errors
        except ImportError:
            msg = "误差归因暂不可用 Error attribution is not available in this build (explain.errors missing)."
            gr.Warning(msg)
            return msg, [], gr.update(value=[])
        line = int(line) if line not in (None, "") else 0
        ln = page.lines[line if 0 <= line < len(page.lines) else 0]
        progress(0.2, desc="对齐 aligning")
        report = attribute_errors(recognizer, ln.crop, truth.strip(), result=ln.line_result)
        return attribution_outputs(report, ln.crop)

    def attribution_outputs(report: Any, crop: np.ndarray) -> tuple:
        data = report.to_dict() if hasattr(report, "to_dict") else (report if isinstance(report, dict) else {})
        errors = data.get("errors") or []
        md = [f"识别 Read: **{data.get('prediction', '')}** · 正确 Truth: **{data.get('truth', '')}** · "
              f"字符错误率 CER **{float(data.get('cer', 0.0)):.1%}** ({data.get('distance', 0)} 处编辑 edits)"]
        if not errors:
            md.append("✅ 没有错误 No errors: the reading matches the true text.")
        summary = {k: v for k, v in (data.get("summary") or {}).items() if v}
        if summary:
            md.append("原因统计 Causes: " + ", ".join(f"`{k}` × {v}" for k, v in summary.items()))
        if data.get("forced_alignment") is False and errors:
            md.append("⚠️ 无法强制对齐正确文本 The true text could not be force-aligned; gaps are used for missing characters.")
        marked = render.upscale(render.mark_errors(crop, errors))
        gallery = [(marked, "错误位置 Where the errors are (red: read wrongly, blue: missed)")] if marked is not None else []
        rows = []
        for e in errors:
            cands = ", ".join(f"{c} {p:.2f}" for c, p in (e.get("candidates") or [])[:3])
            why = "; ".join(f"{d['name']}: {d['detail']}" for d in e.get("diagnoses") or []) or "—"
            rows.append([e.get("op"), e.get("pred_char") or "∅", e.get("true_char") or "∅",
                         "–".join(f"{v:.0f}" for v in e.get("x_range") or []), e.get("location"),
                         e.get("true_prob"), e.get("true_rank"), cands, why])
        headers = ["操作 Op", "读成 Read", "应为 Truth", "位置 x (px)", "定位 Located by", "P(truth)", "排名 Rank",
                   "候选 Candidates", "原因 Why"]
        return "\n\n".join(md), gallery, gr.update(value=rows, headers=headers)

    def on_line_change(image_value: Any, mode: str, steps: list[str], denoise_h: float, clahe_clip: float,
                       block_size: float, c: float, deskew_angle: float, line: Any):
        try:
            page, _ = run_page(image_value, mode, steps, denoise_h, clahe_clip, block_size, c, deskew_angle)
        except Exception:  # noqa: BLE001 - only a convenience update; the main event reports errors
            page = None
        idx = int(line) if line not in (None, "") else None
        crop = page.lines[idx].crop if page is not None and idx is not None and 0 <= idx < len(page.lines) else None
        return gr.update(choices=_char_choices(page, idx), value=WHOLE_LINE), render.upscale(crop)

    def on_pick_line(image_value: Any, mode: str, steps: list[str], denoise_h: float, clahe_clip: float,
                     block_size: float, c: float, deskew_angle: float, evt: gr.SelectData):
        """A click on a box of the page or a row of the line table picks that line for Explain."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        try:
            index = int(index)
        except (TypeError, ValueError):
            return gr.update(), gr.update(), gr.update()
        chars, crop = on_line_change(image_value, mode, steps, denoise_h, clahe_clip, block_size, c, deskew_angle,
                                     index)
        return gr.update(value=index), chars, crop

    # ------------------------------------------------------------ layout

    examples, labels = load_examples(examples_dir)
    with gr.Blocks(title=TITLE, delete_cache=(3600, 7200)) as blocks:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                image = gr.Image(label="输入图片 Input image", sources=["upload", "clipboard", "webcam"],
                                 type="filepath", image_mode=None, format="png", height=380, elem_id="input-image")
                run_btn = gr.Button("识别 Read text", variant="primary", elem_id="run-button")
                if examples:
                    gr.Examples(examples=examples, inputs=[image], example_labels=labels, cache_examples=False,
                                label="示例 Examples (click to read)", examples_per_page=12)
            with gr.Column(scale=6):
                text = gr.Textbox(label="识别结果 Result text", lines=10, max_lines=24, buttons=["copy"],
                                  elem_id="result-text", interactive=False)
                summary = gr.Markdown(label="摘要 Summary", elem_id="summary")
                with gr.Row():
                    dl_txt = gr.DownloadButton("下载 .txt Download", interactive=False, size="sm")
                    dl_json = gr.DownloadButton("下载 .json Download", interactive=False, size="sm")

        with gr.Tabs():
            with gr.Tab("结果 Result", id="result"):
                with gr.Row():
                    annotated = gr.AnnotatedImage(label="文字行 Lines on the page", show_legend=False, height=520)
                    with gr.Column():
                        highlighted = gr.HighlightedText(label="逐字置信度 Per-character confidence",
                                                         color_map=render.CONF_COLORS, show_legend=True,
                                                         show_inline_category=False, elem_id="highlighted")
                lines_df = gr.Dataframe(headers=render.LINES_HEADERS, label="行列表 Lines", interactive=False, elem_id="lines-table",
                                        wrap=True, max_height=400)
                page_json = gr.JSON(label="JSON", open=False)

            with gr.Tab("预处理 Preprocess", id="preprocess"):
                gr.Markdown("每一步的输出及原因；改动设置会重新识别 · Each step's output and why; changing a setting "
                            "re-reads the image.")
                with gr.Row():
                    with gr.Column(scale=2):
                        mode = gr.Radio(MODE_CHOICES, value="auto", label="模式 Mode",
                                        info="auto: 每步按图像自行决定 each step decides from the image")
                        steps = gr.CheckboxGroup([(STEP_LABELS[s], s) for s in STEP_ORDER], value=["contrast", "deskew"],
                                                 label="步骤（手动模式） Steps (manual mode)")
                        denoise_h = gr.Slider(0, 30, value=7, step=1, label="去噪强度 Denoise h")
                        clahe_clip = gr.Slider(0.5, 10, value=2.0, step=0.5, label="CLAHE 限幅 clip limit")
                        block_size = gr.Slider(3, 99, value=11, step=2, label="二值化窗口 Binarize block size")
                        bin_c = gr.Slider(-20, 40, value=2, step=1, label="二值化常数 Binarize C")
                        deskew_angle = gr.Slider(-15, 15, value=0, step=0.5,
                                                 label="纠斜角度 Deskew angle (manual; 0 = measure)")
                    with gr.Column(scale=5):
                        prep_md = gr.Markdown(label="预处理摘要 Preprocessing summary")
                        steps_gallery = gr.Gallery(label="预处理步骤 Preprocessing steps", columns=3, height=420,
                                                   object_fit="contain", format="png")
                        det_view = gr.Image(label="检测概率图与文字框 Detector probability map and boxes",
                                            interactive=False, height=420)

            with gr.Tab("解释 Explain", id="explain") as explain_tab:
                gr.Markdown("选择一行（和一个字）看模型依据的像素与时间步；也可在结果页点击文字框或表格行 · Pick a line "
                            "(and a character) to see which pixels and time steps the model used — or click a box or "
                            "a row in the Result tab.")
                with gr.Row():
                    line_dd = gr.Dropdown(choices=[("1", 0)], value=0, label="行 Line", type="value", elem_id="line-select")
                    char_dd = gr.Dropdown(choices=_char_choices(None, None), value=WHOLE_LINE,
                                          label="字 Character (Grad-CAM)", type="value")
                    extra_methods = gr.CheckboxGroup(OPTIONAL_METHODS, value=[], label="更多方法 More methods (opt-in)")
                explain_btn = gr.Button("解释 Explain", variant="primary", elem_id="explain-button")
                explain_md = gr.Markdown(label="解释说明 Notes", elem_id="explain-notes")
                line_crop = gr.Image(label="行图像（字符框） Line image with character boxes", interactive=False, height=150)
                cam_line = gr.Image(label="Grad-CAM 整行 whole line", interactive=False, elem_id="cam-line", height=170)
                cam_char = gr.Image(label="Grad-CAM 单字 character", interactive=False, elem_id="cam-char", height=170)
                align_img = gr.Image(label="CTC 对齐热图 alignment heatmap (time step × class)", interactive=False,
                                     elem_id="alignment")
                align_df = gr.Dataframe(label="时间步 Time steps", interactive=False, max_height=320)
                extra_gallery = gr.Gallery(label="更多视图 More views (confidence, top-k, saliency, occlusion, IG)",
                                           columns=2, height=300, object_fit="contain")
                with gr.Accordion("误差归因 Error attribution — 输入正确文本 type the true text", open=False):
                    truth = gr.Textbox(value="", label="正确文本 True text of the line", placeholder="例如 e.g. 价税合计")
                    attr_btn = gr.Button("归因 Attribute errors")
                    attr_md = gr.Markdown(label="归因摘要 Attribution summary")
                    attr_gallery = gr.Gallery(label="误差证据 Evidence", columns=2, height=260, object_fit="contain")
                    attr_df = gr.Dataframe(label="差异 Differences", interactive=False)
                with gr.Accordion("预处理归因 Preprocessing attribution — 每一步帮了还是害了 which step helps or hurts",
                                  open=False):
                    gr.Markdown("在该行图像上逐一切换每个预处理步骤并重读 · Each step is toggled on the line image and "
                                "the line re-read; Δ = confidence change per character.", elem_classes=["small-note"])
                    pattr_btn = gr.Button("分析 Analyse preprocessing")
                    pattr_md = gr.Markdown(label="预处理归因摘要 Preprocessing attribution summary")
                    pattr_df = gr.Dataframe(label="每一步 Per step", interactive=False, wrap=True)

            with gr.Tab("模型 Model", id="model"):
                try:
                    gr.Markdown(model_info.summary_markdown(service))
                    gr.Dataframe(value=model_info.architecture_rows(recognizer.model),
                                 headers=model_info.ARCH_HEADERS, label="结构 Architecture (input width 320)",
                                 interactive=False)
                except Exception:  # noqa: BLE001 - the tab must not break the app
                    log.exception("model summary failed")
                    gr.Markdown("_模型摘要不可用 Model summary unavailable._")
                gr.Markdown("### 准确率 Measured accuracy")
                gr.Markdown(model_info.accuracy_markdown())
                with gr.Accordion("模型卡 Model card (weights/README.md)", open=False):
                    gr.Markdown(model_info.model_card())
                gr.Markdown("### REST API\n`POST /api/v1/ocr`, `POST /api/v1/explain`, `GET /api/v1/health` — "
                            "[OpenAPI docs](/docs)", elem_classes=["small-note"])

        settings = [mode, steps, denoise_h, clahe_clip, block_size, bin_c, deskew_angle]
        ocr_outputs = [text, annotated, highlighted, lines_df, page_json, dl_txt, dl_json, summary, steps_gallery,
                       det_view, line_dd, char_dd, line_crop, prep_md]
        assert len(ocr_outputs) == n_ocr_outputs
        gr.on(
            triggers=[image.change, run_btn.click, mode.change, steps.change, denoise_h.release, clahe_clip.release,
                      block_size.release, bin_c.release, deskew_angle.release],
            fn=do_ocr, inputs=[image, *settings], outputs=ocr_outputs, api_name="ocr",
            concurrency_id="model", trigger_mode="always_last", preprocess=False,
        )
        explain_outputs_list = [line_crop, cam_line, cam_char, align_img, align_df, extra_gallery, explain_md]
        assert len(explain_outputs_list) == n_explain_outputs
        gr.on(
            triggers=[explain_btn.click, explain_tab.select, char_dd.input],
            fn=do_explain, inputs=[image, *settings, line_dd, char_dd, extra_methods],
            outputs=explain_outputs_list, api_name="explain", concurrency_id="model",
            trigger_mode="always_last", preprocess=False,
        )
        line_dd.input(on_line_change, inputs=[image, *settings, line_dd], outputs=[char_dd, line_crop],
                      api_visibility="private", preprocess=False, concurrency_id="model").then(
            do_explain, inputs=[image, *settings, line_dd, char_dd, extra_methods], outputs=explain_outputs_list,
            api_visibility="private", concurrency_id="model", preprocess=False)
        gr.on(triggers=[annotated.select, lines_df.select], fn=on_pick_line, inputs=[image, *settings],
              outputs=[line_dd, char_dd, line_crop], api_visibility="private", preprocess=False,
              concurrency_id="model")
        gr.on(triggers=[attr_btn.click, truth.submit], fn=do_attribute,
              inputs=[image, *settings, line_dd, truth], outputs=[attr_md, attr_gallery, attr_df],
              api_name="attribute_errors", concurrency_id="model", preprocess=False)
        pattr_btn.click(do_attribute_preprocessing, inputs=[image, *settings, line_dd], outputs=[pattr_md, pattr_df],
                        api_name="attribute_preprocessing", concurrency_id="model", preprocess=False)
    return blocks


def load_examples(examples_dir: Path = EXAMPLES_DIR) -> tuple[list[list[str]], list[str]]:
    """``examples/index.jsonl`` -> [[path]], labels; without an index, every image in the folder."""
    index = examples_dir / "index.jsonl"
    items: list[tuple[str, str]] = []
    if index.exists():
        for raw in index.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            path = examples_dir / str(entry.get("image", ""))
            if path.is_file():
                items.append((str(path), str(entry.get("description") or path.stem)))
    elif examples_dir.is_dir():
        for path in sorted(examples_dir.iterdir()):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
                items.append((str(path), path.stem))
    return [[p] for p, _ in items], [label for _, label in items]


# ---------------------------------------------------------------- the app


def concurrency() -> int:
    return max(1, int(os.environ.get("OCR_UI_CONCURRENCY", "1")))


def build_app(service: OCRService | None = None, *, examples_dir: Path = EXAMPLES_DIR):
    """One FastAPI app: REST routes (``/api/v1/*``, docs at ``/docs``) + the Gradio UI mounted at ``/``."""
    service = service or OCRService.load()
    api = create_api(service)
    blocks = build_blocks(service, examples_dir=examples_dir)
    # A short queue: past it Gradio answers 503 "Queue is full" at once. With 32 places, the last of 32
    # users waited over 3 minutes on 2 cores (RELIABILITY.md); 8 keeps the worst wait near a minute.
    blocks.queue(default_concurrency_limit=concurrency(), max_size=int(os.environ.get("OCR_UI_QUEUE", "8")))
    # Gradio keeps each session's copy of the UI state (about 0.25 MB here) until 10,000 sessions;
    # every API call is a new session. OCR_UI_SESSIONS (1000) bounds that memory (read when mounting).
    blocks.state_session_capacity = max(1, int(os.environ.get("OCR_UI_SESSIONS", "1000")))
    ttl = cache_ttl()
    if ttl:  # demo/cache.py sweeps instead: Gradio's own delete_cache task dies under load
        blocks.delete_cache = None
    app = gr.mount_gradio_app(api, blocks, path="/", theme=gr.themes.Soft(primary_hue="indigo"), css=CSS,
                              max_file_size=MAX_IMAGE_BYTES, show_error=True, footer_links=["api", "gradio"],
                              allowed_paths=[str(examples_dir)])
    # Gradio checks that a file path submitted to an event was uploaded by a user only once the
    # Blocks "has launched", which mount_gradio_app never sets: without this, an API client could
    # name any file on the server and have Gradio copy it into its cache for the event.
    blocks.has_launched = True
    if ttl:
        from gradio.utils import get_upload_folder

        install_sweeper(app, blocks, ttl, Path(get_upload_folder()))
    return app


def warm_examples(service: OCRService, examples_dir: Path = EXAMPLES_DIR) -> None:
    """Read every example once (default settings) so clicking one answers from the pipeline's cache."""
    examples, _ = load_examples(examples_dir)
    started = time.perf_counter()
    for (path,) in examples:
        try:
            service.pipeline.run(load_image(Path(path)))
        except Exception:  # noqa: BLE001 - warming is best effort
            log.warning("could not pre-read example %s", path, exc_info=True)
    log.info("pre-read %d examples in %.1f s", len(examples), time.perf_counter() - started)
