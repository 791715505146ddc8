"""The Gradio Blocks UI: one function per part of the page, then the events wired to ``demo.handlers``.

Every model event shares one queue (``concurrency_id="model"``) and has an ``api_name`` for
``gradio_client``: ``/ocr``, ``/explain``, ``/attribute_errors``, ``/attribute_preprocessing``.
Events take the raw upload (``preprocess=False``) and decode it with ``ocr.imageio.load_image``,
so a bad upload gets the project's own short message, never a stack trace.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from demo import handlers, model_info, render
from ocr.preprocess import STEP_ORDER
from ocr.service import OCRService
from ocr.settings import EXAMPLES_DIR

log = logging.getLogger("demo")

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


@dataclass
class Components:
    """The UI's components that events read or write (the handlers' ``{component: value}`` keys)."""

    image: Any
    run_btn: Any
    text: Any
    summary: Any
    dl_txt: Any
    dl_json: Any
    annotated: Any
    highlighted: Any
    lines_df: Any
    page_json: Any
    mode: Any
    steps: Any
    denoise_h: Any
    clahe_clip: Any
    block_size: Any
    bin_c: Any
    deskew_angle: Any
    prep_md: Any
    steps_gallery: Any
    det_view: Any
    explain_tab: Any
    line_dd: Any
    char_dd: Any
    extra_methods: Any
    explain_btn: Any
    explain_md: Any
    line_crop: Any
    cam_line: Any
    cam_char: Any
    align_img: Any
    align_df: Any
    extra_gallery: Any
    truth: Any
    attr_btn: Any
    attr_md: Any
    attr_gallery: Any
    attr_df: Any
    pattr_btn: Any
    pattr_md: Any
    pattr_df: Any

    @property
    def settings(self) -> list[Any]:
        """The Preprocess tab's controls, in ``handlers.UISettings`` order."""
        return [self.mode, self.steps, self.denoise_h, self.clahe_clip, self.block_size, self.bin_c, self.deskew_angle]


def input_panel(examples: list[list[str]], labels: list[str]) -> dict[str, Any]:
    """The upload, the read button, the examples, and the result text beside them."""
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
    return dict(image=image, run_btn=run_btn, text=text, summary=summary, dl_txt=dl_txt, dl_json=dl_json)


def result_tab() -> dict[str, Any]:
    """Lines on the page, per-character confidence, the line table, the JSON."""
    with gr.Tab("结果 Result", id="result"):
        with gr.Row():
            annotated = gr.AnnotatedImage(label="文字行 Lines on the page", show_legend=False, height=520)
            with gr.Column():
                highlighted = gr.HighlightedText(label="逐字置信度 Per-character confidence",
                                                 color_map=render.CONF_COLORS, show_legend=True,
                                                 show_inline_category=False, elem_id="highlighted")
        lines_df = gr.Dataframe(headers=render.LINES_HEADERS, label="行列表 Lines", interactive=False,
                                elem_id="lines-table", wrap=True, max_height=400)
        page_json = gr.JSON(label="JSON", open=False)
    return dict(annotated=annotated, highlighted=highlighted, lines_df=lines_df, page_json=page_json)


def preprocess_tab() -> dict[str, Any]:
    """Every preprocessing step with its reason, the controls, and the detector's probability map."""
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
                deskew_angle = gr.Slider(-15, 15, value=0, step=0.5, label="纠斜角度 Deskew angle (manual; 0 = measure)")
            with gr.Column(scale=5):
                prep_md = gr.Markdown(label="预处理摘要 Preprocessing summary")
                steps_gallery = gr.Gallery(label="预处理步骤 Preprocessing steps", columns=3, height=420,
                                           object_fit="contain", format="png")
                det_view = gr.Image(label="检测概率图与文字框 Detector probability map and boxes",
                                    interactive=False, height=420)
    return dict(mode=mode, steps=steps, denoise_h=denoise_h, clahe_clip=clahe_clip, block_size=block_size,
                bin_c=bin_c, deskew_angle=deskew_angle, prep_md=prep_md, steps_gallery=steps_gallery,
                det_view=det_view)


def explain_tab() -> dict[str, Any]:
    """Line and character pickers, Grad-CAM, the CTC alignment, opt-in methods, and the two attributions."""
    with gr.Tab("解释 Explain", id="explain") as tab:
        gr.Markdown("选择一行（和一个字）看模型依据的像素与时间步；也可在结果页点击文字框或表格行 · Pick a line "
                    "(and a character) to see which pixels and time steps the model used — or click a box or "
                    "a row in the Result tab.")
        with gr.Row():
            line_dd = gr.Dropdown(choices=[("1", 0)], value=0, label="行 Line", type="value", elem_id="line-select")
            char_dd = gr.Dropdown(choices=handlers.char_choices(None, None), value=handlers.WHOLE_LINE,
                                  label="字 Character (Grad-CAM)", type="value")
            extra_methods = gr.CheckboxGroup(OPTIONAL_METHODS, value=[], label="更多方法 More methods (opt-in)")
        explain_btn = gr.Button("解释 Explain", variant="primary", elem_id="explain-button")
        views = dict(
            explain_md=gr.Markdown(label="解释说明 Notes", elem_id="explain-notes"),
            line_crop=gr.Image(label="行图像（字符框） Line image with character boxes", interactive=False, height=150),
            cam_line=gr.Image(label="Grad-CAM 整行 whole line", interactive=False, elem_id="cam-line", height=170),
            cam_char=gr.Image(label="Grad-CAM 单字 character", interactive=False, elem_id="cam-char", height=170),
            align_img=gr.Image(label="CTC 对齐热图 alignment heatmap (time step × class)", interactive=False,
                               elem_id="alignment"),
            align_df=gr.Dataframe(label="时间步 Time steps", interactive=False, max_height=320),
            extra_gallery=gr.Gallery(label="更多视图 More views (confidence, top-k, saliency, occlusion, IG)",
                                     columns=2, height=300, object_fit="contain"))
        attribution = attribution_panels()
    return dict(explain_tab=tab, line_dd=line_dd, char_dd=char_dd, extra_methods=extra_methods,
                explain_btn=explain_btn, **views, **attribution)


def attribution_panels() -> dict[str, Any]:
    """Error attribution (from the true text) and preprocessing attribution, folded away."""
    with gr.Accordion("误差归因 Error attribution — 输入正确文本 type the true text", open=False):
        truth = gr.Textbox(value="", label="正确文本 True text of the line", placeholder="例如 e.g. 价税合计")
        attr_btn = gr.Button("归因 Attribute errors")
        attr_md = gr.Markdown(label="归因摘要 Attribution summary")
        attr_gallery = gr.Gallery(label="误差证据 Evidence", columns=2, height=260, object_fit="contain")
        attr_df = gr.Dataframe(label="差异 Differences", interactive=False)
    with gr.Accordion("预处理归因 Preprocessing attribution — 每一步帮了还是害了 which step helps or hurts", open=False):
        gr.Markdown("在该行图像上逐一切换每个预处理步骤并重读 · Each step is toggled on the line image and "
                    "the line re-read; Δ = confidence change per character.", elem_classes=["small-note"])
        pattr_btn = gr.Button("分析 Analyse preprocessing")
        pattr_md = gr.Markdown(label="预处理归因摘要 Preprocessing attribution summary")
        pattr_df = gr.Dataframe(label="每一步 Per step", interactive=False, wrap=True)
    return dict(truth=truth, attr_btn=attr_btn, attr_md=attr_md, attr_gallery=attr_gallery, attr_df=attr_df,
                pattr_btn=pattr_btn, pattr_md=pattr_md, pattr_df=pattr_df)


def model_tab(service: OCRService) -> None:
    """Architecture with tensor shapes, charset, parameters, measured accuracy, the model card."""
    with gr.Tab("模型 Model", id="model"):
        try:
            gr.Markdown(model_info.summary_markdown(service))
            gr.Dataframe(value=model_info.architecture_rows(service.recognizer.model),
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


def wire_events(c: Components, service: OCRService) -> None:
    """Every event: inputs, outputs, queue and API name, each calling one handler."""
    def bind(handler: Any) -> Any:
        return handlers.bind(handler, service, c)

    ocr_outputs = [c.text, c.annotated, c.highlighted, c.lines_df, c.page_json, c.dl_txt, c.dl_json, c.summary,
                   c.steps_gallery, c.det_view, c.line_dd, c.char_dd, c.line_crop, c.prep_md]
    explain_outputs = [c.line_crop, c.cam_line, c.cam_char, c.align_img, c.align_df, c.extra_gallery, c.explain_md]
    explain_inputs = [c.image, *c.settings, c.line_dd, c.char_dd, c.extra_methods]
    gr.on(triggers=[c.image.change, c.run_btn.click, c.mode.change, c.steps.change, c.denoise_h.release,
                    c.clahe_clip.release, c.block_size.release, c.bin_c.release, c.deskew_angle.release],
          fn=bind(handlers.read_image), inputs=[c.image, *c.settings], outputs=ocr_outputs, api_name="ocr",
          concurrency_id="model", trigger_mode="always_last", preprocess=False)
    gr.on(triggers=[c.explain_btn.click, c.explain_tab.select, c.char_dd.input], fn=bind(handlers.explain),
          inputs=explain_inputs, outputs=explain_outputs, api_name="explain", concurrency_id="model",
          trigger_mode="always_last", preprocess=False)
    c.line_dd.input(bind(handlers.line_changed), inputs=[c.image, *c.settings, c.line_dd],
                    outputs=[c.char_dd, c.line_crop], api_visibility="private", preprocess=False,
                    concurrency_id="model").then(
        bind(handlers.explain), inputs=explain_inputs, outputs=explain_outputs, api_visibility="private",
        concurrency_id="model", preprocess=False)
    gr.on(triggers=[c.annotated.select, c.lines_df.select], fn=bind(handlers.pick_line), inputs=[c.image, *c.settings],
          outputs=[c.line_dd, c.char_dd, c.line_crop], api_visibility="private", preprocess=False,
          concurrency_id="model")
    gr.on(triggers=[c.attr_btn.click, c.truth.submit], fn=bind(handlers.attribute_errors),
          inputs=[c.image, *c.settings, c.line_dd, c.truth], outputs=[c.attr_md, c.attr_gallery, c.attr_df],
          api_name="attribute_errors", concurrency_id="model", preprocess=False)
    c.pattr_btn.click(bind(handlers.attribute_preprocessing), inputs=[c.image, *c.settings, c.line_dd],
                      outputs=[c.pattr_md, c.pattr_df], api_name="attribute_preprocessing", concurrency_id="model",
                      preprocess=False)


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


def build_blocks(service: OCRService, *, examples_dir: Path = EXAMPLES_DIR) -> gr.Blocks:
    """The Blocks UI around a loaded service (queue() is called by ``demo.app.build_app``)."""
    examples, labels = load_examples(examples_dir)
    with gr.Blocks(title=TITLE, delete_cache=(3600, 7200)) as blocks:
        gr.Markdown(INTRO)
        top = input_panel(examples, labels)
        with gr.Tabs():
            parts = {**result_tab(), **preprocess_tab(), **explain_tab()}
            model_tab(service)
        components = Components(**top, **parts)
        wire_events(components, service)
    return blocks
