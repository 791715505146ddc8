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
.tab-intro { margin-bottom: 0.4rem; }
#status { border-left: 4px solid #d9363e; padding: 0.4rem 0.8rem; background: #fff5f5; border-radius: 4px; }
#status.status-info { border-left-color: #2f6fde; background: #f0f5ff; }
.pic .icon-button-wrapper.top-panel { position: static; display: flex; justify-content: flex-end; margin: 0 0 2px 0; }
/* tab labels are "中文\nEnglish": one line on a desktop; on a phone two short lines, so the four tabs fit in one
   row instead of three of them hiding behind a "⋯" menu */
@media (max-width: 560px) {
  .tab-wrapper button { white-space: pre-line; line-height: 1.15; font-size: 0.8rem !important; padding: 2px 6px !important; }
}
#lines-table th, #timesteps th, #steps-table th { white-space: nowrap; min-width: 4rem; }
/* preprocessing "off": the step boxes are disabled; ticked ones stayed accent-blue, as if they still applied */
#prep-steps:has(input:disabled) { --checkbox-background-color-selected: var(--neutral-400);
  --checkbox-border-color-selected: var(--neutral-400); --checkbox-label-background-fill-selected: transparent;
  --checkbox-label-border-color-selected: var(--border-color-primary); --checkbox-label-text-color-selected: inherit;
  opacity: 0.6; }
"""
#: run once when the page loads. Every slider here acts on "release", which Gradio's slider sends on a pointer-up
#: or when its number box loses focus: Enter in the number box and the arrow keys on the slider did nothing (the
#: page picker and the preprocessing settings showed a value that was not the one read). Enter now leaves the
#: box, and a key that moves a slider sends the pointer-up a mouse would. A PDF dropped on the image input goes
#: to the PDF / TIFF box.
JS = r"""() => {
  const sliderOf = (el) => el instanceof HTMLInputElement && el.closest(".block")?.querySelector("input[type=range]");
  document.addEventListener("keydown", (event) => {
    const box = event.target;
    if (event.key === "Enter" && box.type === "number" && sliderOf(box)) {
      box.blur();
    }
  });
  // a PDF dropped on the image input (which takes images only: the browser refused it with a toast) goes to the
  // PDF / TIFF box instead, which reads its first page and offers the others
  document.addEventListener("drop", (event) => {
    const files = event.dataTransfer?.files;
    const onImage = event.target instanceof Element && event.target.closest("#input-image");
    const isPdf = (f) => f.type === "application/pdf" || /\.pdf$/i.test(f.name);
    const box = document.querySelector("#doc-upload input[type=file]");
    if (!onImage || !box || !files?.length || !isPdf(files[0])) return;
    event.preventDefault();
    event.stopPropagation();
    const moved = new DataTransfer();
    moved.items.add(files[0]);
    box.files = moved.files;
    box.dispatchEvent(new Event("change", {bubbles: true}));
  }, true);
  const moves = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"];
  document.addEventListener("keyup", (event) => {
    const range = event.target;
    if (moves.includes(event.key) && range instanceof HTMLInputElement && range.type === "range") {
      range.dispatchEvent(new PointerEvent("pointerup", {bubbles: true}));
    }
  });
}"""
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
    status: Any
    text: Any
    summary: Any
    dl_txt: Any
    dl_json: Any
    page_img: Any
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
    prep_tab: Any
    other_tabs: list  # the tabs whose selection hides the Preprocess tab
    prep_shown: Any
    prep_md: Any
    steps_gallery: Any
    steps_df: Any
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
    views: dict  # "more views": name -> (column, image), see render.EXPLAIN_VIEWS
    truth: Any
    attr_btn: Any
    attr_md: Any
    attr_img: Any
    attr_df: Any
    pattr_btn: Any
    pattr_md: Any
    pattr_df: Any
    fields_df: Any
    model: Any = None  # the Fast / Auto / Accurate switch, when the service offers it
    lm: Any = None  # the language-model checkbox, beside the model switch
    doc: Any = None  # a PDF or (multi-page) TIFF upload, put page by page into ``image``
    doc_page: Any = None  # its page picker, shown for a document of two pages or more
    examples: Any = None  # the sample pages' gallery (None without examples)

    @property
    def prep_controls(self) -> list[Any]:
        """The Preprocess tab's step boxes and settings (the mode switch aside)."""
        return [self.steps, self.denoise_h, self.clahe_clip, self.block_size, self.bin_c, self.deskew_angle]

    @property
    def settings(self) -> list[Any]:
        """The reading's controls, in ``handlers.UISettings`` order (the model switch and the
        language-model checkbox last, when there)."""
        return [self.mode, *self.prep_controls] + ([self.model, self.lm] if self.model is not None else [])


def titled_image(title: str, **kwargs: Any) -> Any:
    """An output picture with its title above it (Gradio's label chip sits over the picture's corner)."""
    gr.Markdown(f"**{title}**", elem_classes=["small-note"])
    # "pic": its toolbar (fullscreen, download) sits above the picture, not over a line's right end
    return gr.Image(show_label=False, interactive=False, elem_classes=["pic"], **kwargs)


def intro(text: str) -> None:
    """One plain sentence saying what the tab shows."""
    gr.Markdown(text, elem_classes=["tab-intro"])


def input_panel(examples: list[list[str]], default_model: str = "auto", default_lm: bool = False,
                example_labels: list[str] | None = None) -> dict[str, Any]:
    """Left: the upload, the one place for messages, the documents box and its page picker (beside the message
    a page change may give), the model switch, the read button. Right: the result, and under it the examples
    (captioned: several look alike as thumbnails; under the upload they pushed the documents box off the
    first screen, and below everything they were off it themselves)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            image = gr.Image(show_label=False, sources=["upload", "clipboard", "webcam"], type="filepath",
                             image_mode=None, format="png", height=320, elem_id="input-image",
                             placeholder="拖入或点击上传图片 Drop an image here or click to upload (PNG, JPEG, BMP, WebP, TIFF, GIF)")
            status = gr.Markdown(visible=False, elem_id="status")
            with gr.Row(equal_height=True):
                doc = gr.File(label="PDF / TIFF 文件 file (发票、传真 invoices, faxes; 每页可读 every page can be read)",
                              file_types=[".pdf", ".tif", ".tiff"], height=150, elem_id="doc-upload", scale=3)
                doc_page = gr.Slider(1, 2, value=1, step=1, label="页 Page", visible=False, elem_id="doc-page",
                                     scale=2)
            model = gr.Radio(handlers.MODEL_CHOICES, value=default_model, label="模型 Model", elem_id="model-switch",
                             info=handlers.model_trade_off())
            lm = gr.Checkbox(value=default_lm, label="语言模型 Language model", elem_id="lm-switch",
                             info=handlers.LM_TRADE_OFF)
            run_btn = gr.Button("识别 Read text", variant="primary", elem_id="run-button")
        with gr.Column(scale=6):
            text = gr.Textbox(label="识别结果 Result text", lines=10, max_lines=24, buttons=["copy"],
                              elem_id="result-text", interactive=False)
            summary = gr.Markdown(elem_id="summary")
            with gr.Row():
                dl_txt = gr.DownloadButton("下载 .txt Download", interactive=False, size="sm")
                dl_json = gr.DownloadButton("下载 .json Download", interactive=False, size="sm")
            examples_view = examples_gallery(examples, example_labels or [p[0] for p in examples])
    return dict(image=image, run_btn=run_btn, status=status, text=text, summary=summary, dl_txt=dl_txt,
                dl_json=dl_json, model=model, lm=lm, doc=doc, doc_page=doc_page, examples=examples_view)


def examples_gallery(examples: list[list[str]], labels: list[str]) -> Any:
    """The sample pages as captioned thumbnails: a click puts one into the image input, which reads it."""
    if not examples:
        return None
    gr.Markdown("**示例（点击即识别） Examples — click one to read it**", elem_classes=["small-note"])
    return gr.Gallery(value=[(row[0], label) for row, label in zip(examples, labels)], show_label=False,
                      columns=5, height=270, allow_preview=False, object_fit="contain", buttons=[], elem_id="examples")


def result_tab() -> dict[str, Any]:
    """Lines on the page, per-character confidence, the line table, the JSON."""
    with gr.Tab("结果\nResult", id="result") as tab:
        intro("页面上每个找到的文字行（点击一行即可在“解释”页查看），以及每个字的置信度 · Every text line found on "
              "the page (click one to explain it) and how sure the model is of each character. 在 5,781 行测试文字上，"
              "绿色的字 99% 正确，黄色 87–92%，红色约一半多 · On 5,781 benchmark lines, green characters were right 99% "
              "of the time, amber 87–92%, red 53–59%.")
        fields_df = gr.Dataframe(headers=render.FIELD_HEADERS,
                                 label="字段 Fields (low confidence marked ⚠️; click one to see where it was read)",
                                 interactive=False, visible="hidden", wrap=True, elem_id="fields")
        with gr.Row():
            with gr.Column():
                page_img = titled_image("文字行 Lines on the page (click one to explain it)", height=520,
                                        format="jpeg", elem_id="page-lines")
            highlighted = gr.HighlightedText(label="逐字置信度 Per-character confidence",
                                             color_map=render.CONF_COLORS, show_legend=True,
                                             show_inline_category=False, elem_id="highlighted")
        lines_df = gr.Dataframe(headers=render.LINES_HEADERS, label="行列表 Lines", interactive=False,
                                elem_id="lines-table", wrap=True, max_height=400)
        page_json = gr.JSON(label="JSON（精简；完整版请下载 compact — the .json download has everything）", open=False)
    return dict(result_tab=tab, fields_df=fields_df, page_img=page_img, highlighted=highlighted, lines_df=lines_df, page_json=page_json)


def preprocess_tab() -> dict[str, Any]:
    """What preprocessing did and why, the controls, and the detector's probability map."""
    with gr.Tab("预处理\nPreprocess", id="preprocess") as tab:
        intro("识别前对图像做了什么、为什么；改动设置会重新识别 · What was done to the image before reading it, "
              "and why; changing a setting reads it again.")
        with gr.Row():
            with gr.Column(scale=2):
                mode = gr.Radio(MODE_CHOICES, value="auto", label="模式 Mode",
                                info="auto: 每步按图像自行决定 each step decides from the image")
                steps = gr.CheckboxGroup([(STEP_LABELS[s], s) for s in STEP_ORDER], value=["contrast", "deskew"],
                                         label="步骤（手动模式） Steps (manual mode)",
                                         info="自动模式每步自行决定，只取“尺寸归一” · auto decides each step itself and "
                                              "takes only normalize size from here; the settings below apply to both",
                                         elem_id="prep-steps")
                denoise_h = gr.Slider(0, 30, value=7, step=1, label="去噪强度 Denoise h")
                clahe_clip = gr.Slider(0.5, 10, value=2.0, step=0.5, label="CLAHE 限幅 clip limit")
                block_size = gr.Slider(3, 99, value=11, step=2, label="二值化窗口 Binarize block size")
                bin_c = gr.Slider(-20, 40, value=2, step=1, label="二值化常数 Binarize C")
                deskew_angle = gr.Slider(-15, 15, value=0, step=0.5, label="纠斜角度 Deskew angle (manual; 0 = measure)")
            with gr.Column(scale=5):
                prep_md = gr.Markdown(elem_id="prep-summary")
                steps_df = gr.Dataframe(headers=render.STEP_HEADERS, label="每一步 Every step", interactive=False,
                                        wrap=True, elem_id="steps-table")
                steps_gallery = gr.Gallery(label="原图与应用的步骤 The input and each applied step", columns=2,
                                           height=420, object_fit="contain")
                det_view = titled_image("检测概率图与文字框 Detector probability map (red: text) and boxes",
                                        height=420, format="jpeg")
    return dict(mode=mode, steps=steps, denoise_h=denoise_h, clahe_clip=clahe_clip, block_size=block_size,
                bin_c=bin_c, deskew_angle=deskew_angle, prep_tab=tab, prep_md=prep_md,
                steps_df=steps_df, steps_gallery=steps_gallery, det_view=det_view)


def explain_tab() -> dict[str, Any]:
    """Line and character pickers, Grad-CAM, the CTC alignment, opt-in methods, and the two attributions."""
    with gr.Tab("解释\nExplain", id="explain") as tab:
        intro("模型读这一行时看了哪些像素：越红越重要 · Which pixels the model looked at to read this line: "
              "the redder, the more they mattered. Pick a line (or click it on the Result tab) and a character.")
        with gr.Row():
            line_dd = gr.Dropdown(choices=[("1", 0)], value=0, label="行 Line", type="value", elem_id="line-select")
            char_dd = gr.Dropdown(choices=handlers.char_choices(None, None), value=handlers.WHOLE_LINE,
                                  label="字 Character (Grad-CAM)", type="value")
            extra_methods = gr.CheckboxGroup(OPTIONAL_METHODS, value=[], label="更多方法 More methods (opt-in)")
        explain_btn = gr.Button("解释 Explain", variant="primary", elem_id="explain-button")
        explain_md = gr.Markdown(elem_id="explain-notes")
        main = dict(
            line_crop=titled_image("行图像（字符框） The line with each character's columns", format="png"),
            cam_line=titled_image("Grad-CAM 整行 whole line — 红：最左右整行读数把握的像素（多在最不确定的字上） "
                                  "red: the pixels that move the whole reading's probability most (mostly at its "
                                  "least sure characters)",
                                  elem_id="cam-line", format="png"),
            cam_char=titled_image("Grad-CAM 单字 one character (bracketed in magenta)", elem_id="cam-char",
                                  format="png"),
            align_img=titled_image("CTC 对齐热图 alignment (time step × class): a clean reading is a staircase",
                                   elem_id="alignment", format="png"),
            align_df=gr.Dataframe(label="时间步 Time steps", interactive=False, max_height=320, elem_id="timesteps"))
        gr.Markdown("### 更多视图 More views", elem_classes=["small-note"])
        views = {}
        for name, (title, caption) in render.EXPLAIN_VIEWS.items():
            with gr.Column(visible="hidden", elem_id=f"view-{name}") as column:
                gr.Markdown(f"**{title}** — {caption}", elem_classes=["small-note"])
                views[name] = (column, gr.Image(show_label=False, interactive=False, elem_id=f"view-{name}-img",
                                                format="png", elem_classes=["pic"]))
        attribution = attribution_panels()
    return dict(explain_tab=tab, line_dd=line_dd, char_dd=char_dd, extra_methods=extra_methods,
                explain_btn=explain_btn, explain_md=explain_md, views=views, **main, **attribution)


def attribution_panels() -> dict[str, Any]:
    """Error attribution (from the true text) and preprocessing attribution, folded away."""
    with gr.Accordion("误差归因 Error attribution — 改正该行的读数 correct the line's reading", open=False):
        truth = gr.Textbox(value="", label="正确文本 True text of the line (starts as the reading: fix what is wrong)",
                           elem_id="truth")
        attr_btn = gr.Button("归因 Attribute errors")
        attr_md = gr.Markdown(elem_id="attr-summary")
        attr_img = gr.Image(label="错误位置 Where the errors are (red: read wrongly, blue: missed)",
                            interactive=False, visible="hidden", format="png")
        attr_df = gr.Dataframe(label="差异 Differences", interactive=False, visible="hidden", wrap=True)
    with gr.Accordion("预处理归因 Preprocessing attribution — 每一步帮了还是害了 which step helps or hurts", open=False):
        gr.Markdown("在该行图像上逐一切换每个预处理步骤并重读 · Each step is toggled on the line image and "
                    "the line re-read; Δ = confidence change per character.", elem_classes=["small-note"])
        pattr_btn = gr.Button("分析 Analyse preprocessing")
        pattr_md = gr.Markdown()
        pattr_df = gr.Dataframe(label="每一步 Per step", interactive=False, wrap=True)
    return dict(truth=truth, attr_btn=attr_btn, attr_md=attr_md, attr_img=attr_img, attr_df=attr_df,
                pattr_btn=pattr_btn, pattr_md=pattr_md, pattr_df=pattr_df)


def model_tab(service: OCRService) -> Any:
    """What the model is, in a few lines; the architecture, accuracy and model card folded away."""
    with gr.Tab("模型\nModel", id="model") as tab:
        intro("识别模型是什么、有多准；细节折叠在下面 · What the recogniser is and how accurate it is; the "
              "details are folded below.")
        try:
            gr.Markdown(model_info.summary_markdown(service))
            with gr.Accordion("结构 Architecture (tensor shapes for a line 320 px wide)", open=False):
                gr.Dataframe(value=model_info.architecture_rows(service.recognizer.model),
                             headers=model_info.ARCH_HEADERS, show_label=False, interactive=False, wrap=True)
        except Exception:  # noqa: BLE001 - the tab must not break the app
            log.exception("model summary failed")
            gr.Markdown("_模型摘要不可用 Model summary unavailable._")
        with gr.Accordion("准确率 Measured accuracy", open=False):
            gr.Markdown(model_info.accuracy_markdown())
        with gr.Accordion("模型卡 Model card (weights/README.md)", open=False):
            gr.Markdown(model_info.model_card())
        gr.Markdown("REST API: `POST /api/v1/ocr`, `POST /api/v1/explain`, `GET /api/v1/health` — "
                    "[OpenAPI docs](/docs)", elem_classes=["small-note"])
    return tab


def wire_reading(c: Components, service: OCRService) -> None:
    """Reading (``/ocr``) and the Preprocess tab's views, made after it only while that tab is shown."""
    def bind(handler: Any) -> Any:
        return handlers.bind(handler, service, c)

    ocr_outputs = [c.text, c.page_img, c.highlighted, c.lines_df, c.page_json, c.dl_txt, c.dl_json, c.summary,
                   c.line_dd, c.char_dd, c.line_crop, c.status, c.image, c.truth, c.fields_df]
    prep_outputs = [c.prep_md, c.steps_gallery, c.steps_df, c.det_view]
    reading = gr.on(triggers=[c.image.change, c.run_btn.click, c.mode.change, c.steps.change, c.denoise_h.release,
                              c.clahe_clip.release, c.block_size.release, c.bin_c.release, c.deskew_angle.release,
                              c.model.change, c.lm.change],
                    fn=bind(handlers.read_image), inputs=[c.image, *c.settings], outputs=ocr_outputs, api_name="ocr",
                    concurrency_id="model", trigger_mode="always_last", preprocess=False)
    reading.then(bind(handlers.preprocess_views), inputs=[c.image, *c.settings, c.prep_shown], outputs=prep_outputs,
                 api_visibility="private", concurrency_id="views", preprocess=False)
    c.prep_tab.select(handlers.shown_preprocess, None, c.prep_shown, queue=False, api_visibility="private").then(
        bind(handlers.preprocess_views), inputs=[c.image, *c.settings, c.prep_shown], outputs=prep_outputs,
        api_visibility="private", concurrency_id="views", preprocess=False)
    for tab in c.other_tabs:
        tab.select(handlers.shown_other_tab, None, c.prep_shown, queue=False, api_visibility="private")
    # preprocessing off: its controls change nothing, so they are greyed out (they looked live; black-box pass)
    c.mode.change(bind(handlers.mode_controls), [c.mode], c.prep_controls, queue=False, api_visibility="private")
    if c.examples is not None:  # a sample page goes into the image input too
        c.examples.select(handlers.example_picked, None, [c.image], queue=False, api_visibility="private")
    # a document's page (PDF, multi-page TIFF) goes into the image input, whose change reads it like any upload
    doc_outputs = [c.image, c.doc_page, c.status]
    c.doc.upload(bind(handlers.document_uploaded), inputs=[c.doc], outputs=doc_outputs, api_visibility="private",
                 concurrency_id="views", preprocess=False)
    c.doc.clear(bind(handlers.document_cleared), None, [c.doc_page], queue=False, api_visibility="private")
    c.doc_page.release(bind(handlers.document_page), inputs=[c.doc, c.doc_page], outputs=doc_outputs,
                       api_visibility="private", concurrency_id="views", preprocess=False)


def wire_events(c: Components, service: OCRService) -> None:
    """Every event: inputs, outputs, queue and API name, each calling one handler."""
    def bind(handler: Any) -> Any:
        return handlers.bind(handler, service, c)

    wire_reading(c, service)
    views = [v for pair in c.views.values() for v in pair]
    explain_outputs = [c.line_crop, c.cam_line, c.cam_char, c.align_img, c.align_df, c.explain_md, *views]
    explain_inputs = [c.image, *c.settings, c.line_dd, c.char_dd, c.extra_methods]
    pick_outputs = [c.line_dd, c.char_dd, c.line_crop, c.truth]
    gr.on(triggers=[c.explain_btn.click, c.explain_tab.select, c.char_dd.input], fn=bind(handlers.explain),
          inputs=explain_inputs, outputs=explain_outputs, api_name="explain", concurrency_id="model",
          trigger_mode="always_last", preprocess=False)
    c.line_dd.input(bind(handlers.line_changed), inputs=[c.image, *c.settings, c.line_dd],
                    outputs=[c.char_dd, c.line_crop, c.truth], api_visibility="private", preprocess=False,
                    concurrency_id="views").then(
        bind(handlers.explain), inputs=explain_inputs, outputs=explain_outputs, api_visibility="private",
        concurrency_id="model", preprocess=False)
    c.lines_df.select(bind(handlers.pick_line), inputs=[c.image, *c.settings], outputs=pick_outputs,
                      api_visibility="private", preprocess=False, concurrency_id="views")
    c.page_img.select(bind(handlers.pick_line_on_page), inputs=[c.image, *c.settings], outputs=pick_outputs,
                      api_visibility="private", preprocess=False, concurrency_id="views")
    c.fields_df.select(bind(handlers.pick_field), inputs=[c.image, *c.settings], outputs=[*pick_outputs, c.page_img],
                       api_visibility="private", preprocess=False, concurrency_id="views")
    gr.on(triggers=[c.attr_btn.click, c.truth.submit], fn=bind(handlers.attribute_errors),
          inputs=[c.image, *c.settings, c.line_dd, c.truth], outputs=[c.attr_md, c.attr_img, c.attr_df],
          api_name="attribute_errors", concurrency_id="model", preprocess=False)
    c.pattr_btn.click(bind(handlers.attribute_preprocessing), inputs=[c.image, *c.settings, c.line_dd],
                      outputs=[c.pattr_md, c.pattr_df], api_name="attribute_preprocessing", concurrency_id="model",
                      preprocess=False)


def load_examples(examples_dir: Path = EXAMPLES_DIR) -> tuple[list[list[str]], list[str]]:
    """``examples/index.jsonl`` -> [[path]], captions; without an index, every image in the folder."""
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
                items.append((str(path), str(entry.get("caption") or entry.get("description") or path.stem)))
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
        top = input_panel(examples, default_model=service.default_model, default_lm=service.reader().uses_lm(),
                          example_labels=labels)
        with gr.Tabs():
            parts = {**result_tab(), **preprocess_tab(), **explain_tab()}
            model = model_tab(service)
        other_tabs = [parts.pop("result_tab"), parts["explain_tab"], model]
        # the State outside the tabs: a State made inside a Tab made Gradio 6.31's tab bar relabel its last tab
        components = Components(**top, **parts, other_tabs=other_tabs, prep_shown=gr.State(False))
        wire_events(components, service)
    return blocks
