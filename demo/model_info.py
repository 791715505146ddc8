"""The Model tab's content: architecture with tensor shapes, sizes, the model card (no gradio here)."""

from __future__ import annotations

import json
import re
from typing import Any

import torch

from ocr.recognize.network import INPUT_HEIGHT, STRIDE_X, count_parameters
from ocr.settings import ROOT, WEIGHTS_DIR

MODEL_CARD = WEIGHTS_DIR / "README.md"


def _shape(t: Any) -> str:
    if isinstance(t, (tuple, list)):
        t = t[0]
    return "[" + ", ".join(str(d) for d in t.shape) + "]" if hasattr(t, "shape") else "?"


def architecture_rows(model: torch.nn.Module, width: int = 320) -> list[list[Any]]:
    """One row per stage: name, what it is, output shape for a 1x3x48xW line, parameters."""
    stages = [
        ("backbone.stem1", "Conv 3×3 /2 + GELU"),
        ("backbone.stem2", "Conv 3×3 /2"),
        ("backbone.blocks", "9 MixerBlocks (depthwise 3×3, SE, GELU FFN); height /4"),
        ("backbone", "avg-pool 3×2 → height 1"),
        ("neck", "1×5 depthwise + pointwise, BN + hard-swish"),
        ("lstm", f"BiLSTM, {model.config.lstm_layers} layers × {model.config.lstm_hidden} per direction"),
        ("classifier", "feature + context → bottleneck → classes (CTC, blank = 0)"),
    ]
    shapes: dict[str, str] = {}
    hooks = []
    modules = dict(model.named_modules())
    for name, _ in stages:
        mod = modules.get(name)
        if mod is not None:
            hooks.append(mod.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, _shape(o))))
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, INPUT_HEIGHT, width))
    finally:
        for h in hooks:
            h.remove()
    rows = [["input", f"RGB line, height {INPUT_HEIGHT}, width W (here {width})", f"[1, 3, {INPUT_HEIGHT}, {width}]", 0]]
    for name, what in stages:
        mod = modules.get(name)
        params = count_parameters(mod) if mod is not None else 0
        if name == "backbone":
            params = 0  # counted in its parts above
        if name == "classifier":
            params = sum(count_parameters(modules[n]) for n in ("feature_proj", "context_proj", "classifier") if n in modules)
        rows.append([name, what, shapes.get(name, "?"), params])
    rows.append(["output", f"softmax per time step (T = W/{STRIDE_X})", shapes.get("classifier", "?"), 0])
    return rows


ARCH_HEADERS = ["模块 Stage", "说明 What", "输出形状 Output shape", "参数 Params"]


def summary_markdown(service: Any) -> str:
    """The default recogniser in a few lines; for ``auto``, the network every line is read by first (its
    parameters and charset belong together), then what re-reads the unsure lines."""
    default = service.recognizer
    rec = getattr(default, "first_stage", default)
    model = rec.model
    n_params = count_parameters(model)
    det_params = None
    det = getattr(service.pipeline, "detector", None)
    det_model = getattr(det, "model", None)
    if isinstance(det_model, torch.nn.Module):
        det_params = count_parameters(det_model)
    lines = [
        "### 识别模型 Recogniser: CRNN = CNN → BiLSTM → CTC",
        "",
        f"- 字符集 Charset: **{len(rec.charset):,}** characters + blank = {rec.charset.num_classes:,} classes",
        f"- 参数量 Parameters: **{n_params:,}** ({n_params * 4 / 2**20:.1f} MB float32)",
        f"- 输入 Input: RGB line scaled to height {INPUT_HEIGHT}, aspect kept; one CTC time step per {STRIDE_X} px",
    ]
    if rec.uses_lm():
        words = (f" and the English word list (a Latin word one unsure letter from a known word is corrected where "
                 f"its frames allow: margin {rec.lexicon_margin:g} nats)" if rec.lexicon_margin is not None else "")
        lines.append(f"- 解码 Decoding: CTC beam search with the character language model (weight {rec.lm_weight:g})"
                     f"{words}; greedy with the Language model box off")
    if rec is not default:
        second = default.accurate
        lines.append(f"- 自动 Auto (the default): every line is read by this network; a line below confidence "
                     f"{default.threshold:.3f}, or read as a licence plate, is re-read by the accurate network "
                     f"(PP-OCRv6 small's CNN and attention neck → BiLSTM → CTC, {len(second.charset):,} characters)")
    if det_params:
        variant = getattr(det, "variant", "tiny")
        lines.append(f"- 文本检测 Detector: DB (PP-OCRv6-{variant} det), **{det_params:,}** parameters")
    if service.weights_sha256:
        lines.append(f"- 权重指纹 Weights fingerprint (SHA-256 of both recognisers, both detectors and their charsets): `{service.weights_sha256[:16]}…`")
    return "\n".join(lines)


def model_card() -> str:
    try:
        text = MODEL_CARD.read_text(encoding="utf-8")
    except OSError:
        return "_模型卡尚未提供 The model card (weights/README.md) is not available yet._"
    # drop a YAML front matter block if any
    return re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)


def _section(text: str, title_pattern: str) -> str | None:
    """A markdown section (heading included) whose title matches, up to the next heading of its level."""
    m = re.search(rf"^(#+)[^\n]*(?:{title_pattern})[^\n]*\n(.*?)(?=^\1 |\Z)", text, flags=re.S | re.M | re.I)
    return m.group(0).strip() if m else None


def accuracy_markdown() -> str:
    """Measured accuracy: the model card's section and the accuracy tables of BENCHMARKS.md."""
    parts = []
    card = _section(model_card(), "accuracy|准确率")
    if card:
        body = re.sub(r"<!--.*?-->", "", card.split("\n", 1)[1] if "\n" in card else "", flags=re.S).strip()
        if body and not re.fullmatch(r"see benchmarks\.md[^\n]*", body, flags=re.I):
            parts.append(body)
    try:
        bench = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    except OSError:
        bench = ""
    parent = None
    for m in re.finditer(r"^(#+) +([^\n]*)\n", bench, flags=re.M):
        level, title = len(m.group(1)), m.group(2).strip()
        if level <= 2:
            parent = title
        if title.lower() not in ("accuracy", "准确率"):
            continue
        nxt = re.search(rf"^#{{1,{level}}} ", bench[m.end():], flags=re.M)
        body = bench[m.end(): m.end() + nxt.start()] if nxt else bench[m.end():]
        body = re.sub(r"<!--.*?-->", "", body, flags=re.S).strip()
        parts.append(f"#### {parent or 'Accuracy'}\n\n{body}\n\n_(BENCHMARKS.md)_")
    for name in ("metrics.json", "eval.json", "accuracy.json"):
        path = WEIGHTS_DIR / name
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                parts.append("```json\n" + json.dumps(data, ensure_ascii=False, indent=2)[:4000] + "\n```")
            except (OSError, ValueError):
                pass
    return "\n\n".join(parts) or "_准确率尚未测量 Accuracy has not been measured yet (see the model card)._"
