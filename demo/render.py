"""Pictures and tables for the demo, from pipeline / explanation results (no gradio here)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from explain.render import shown_space, with_colorbar
from ocr.results import HIGH_CONFIDENCE, LOW_CONFIDENCE

#: per-character confidence classes, shown in the Result tab's coloured text (bounds: ``ocr.results``)
CONF_HIGH = "≥90% 高 high"
CONF_MID = "70–90% 中 mid"
CONF_LOW = "<70% 低 low"
CONF_COLORS = {CONF_HIGH: "#2e9d4a", CONF_MID: "#e0a800", CONF_LOW: "#d9363e"}


def conf_class(confidence: float) -> str:
    if confidence >= HIGH_CONFIDENCE:
        return CONF_HIGH
    if confidence >= LOW_CONFIDENCE:
        return CONF_MID
    return CONF_LOW


def quad_bbox(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    xs, ys = box[0::2], box[1::2]
    x1 = int(np.clip(np.floor(min(xs)), 0, max(width - 1, 0)))
    y1 = int(np.clip(np.floor(min(ys)), 0, max(height - 1, 0)))
    x2 = int(np.clip(np.ceil(max(xs)), x1 + 1, width))
    y2 = int(np.clip(np.ceil(max(ys)), y1 + 1, height))
    return x1, y1, x2, y2


def short(text: str, n: int = 18) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def line_label(index: int, text: str) -> str:
    return f"{index + 1}: {short(text)}"


def line_at(page: Any, x: float, y: float) -> int | None:
    """The line whose box holds the point (x, y) of the page; else the nearest one (None: no lines)."""
    best, best_d = None, float("inf")
    for i, line in enumerate(page.lines):
        x1, y1, x2, y2 = quad_bbox(line.box, page.width, page.height)
        dx, dy = max(x1 - x, 0, x - x2), max(y1 - y, 0, y - y2)
        d = dx * dx + dy * dy
        if d < best_d:
            best, best_d = i, d
    return best


def page_view(page: Any) -> np.ndarray | None:
    """The page with every line's box drawn thinly and numbered (one picture, not a mask per line)."""
    if page.image is None:
        return None
    scale = max(1, round(max(page.width, page.height) / 1200))
    return draw_quads(page.image, [line.box for line in page.lines], color=(220, 30, 60), thickness=scale)


def compact_json(page: Any) -> dict[str, Any]:
    """The page as the UI shows it: text, confidences and integer boxes; the .json download has everything."""
    return {"text": page.text, "confidence": round(float(page.confidence), 3), "width": page.width,
            "height": page.height, "rotation": page.rotation,
            "timings_ms": {k: round(v * 1000) for k, v in (page.timings or {}).items()},
            "lines": [{"box": [round(v) for v in line.box], "text": line.text,
                       "confidence": round(float(line.confidence), 3),
                       "chars": [{"char": c.char, "confidence": round(float(c.confidence), 3)} for c in line.chars]}
                      for line in page.lines]}


def highlighted(page: Any) -> list[tuple[str, str | None]]:
    """Every character with its confidence class; lines separated by newlines."""
    out: list[tuple[str, str | None]] = []
    for i, line in enumerate(page.lines):
        if i:
            out.append(("\n", None))
        if line.chars:
            out.extend((c.char, conf_class(c.confidence)) for c in line.chars)
        else:
            out.append((line.text, conf_class(line.confidence)))
    return out


def read_by(line: Any) -> str:
    """Which network read the line: "fast", "accurate", or "accurate ↺" where auto re-read a fast reading."""
    result = getattr(line, "line_result", None)
    if result is None:
        return ""
    return f"{result.model} ↺" if result.reread else result.model


def lines_table(page: Any) -> list[list[Any]]:
    rows = []
    for i, line in enumerate(page.lines):
        low = [c.char for c in line.chars if c.confidence < LOW_CONFIDENCE]
        rows.append([i + 1, line.text, round(float(line.confidence), 3), len(line.text), "".join(low), read_by(line),
                     ", ".join(f"{v:.0f}" for v in quad_bbox(line.box, page.width, page.height))])
    return rows


LINES_HEADERS = ["#", "文本 Text", "置信度 Confidence", "字数 Chars", "低置信字 Low-conf chars",
                 "模型 Read by (↺ re-read)", "框 Box (x1,y1,x2,y2)"]


def colorize(heat: np.ndarray, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """A [0,1] float map -> RGB uint8 with a colour map."""
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    heat = np.clip(heat, 0.0, 1.0)
    bgr = cv2.applyColorMap((heat * 255).astype(np.uint8), colormap)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``heat`` ([0,1], any size) resized onto ``image`` and blended."""
    h, w = image.shape[:2]
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape[:2] != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    return cv2.addWeighted(rgb.astype(np.uint8), 1 - alpha, colorize(heat), alpha, 0)


def draw_quads(image: np.ndarray, quads: Iterable[Sequence[float]], color=(255, 40, 40), thickness: int = 2,
               labels: bool = True) -> np.ndarray:
    out = np.ascontiguousarray(image.copy())
    for i, quad in enumerate(quads):
        pts = np.round(np.asarray(quad, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
        cv2.polylines(out, [pts], True, color, thickness, cv2.LINE_AA)
        if labels:
            x, y = int(pts[:, 0].min()), int(pts[:, 1].min())
            cv2.putText(out, str(i + 1), (x, max(y - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return out


def detector_view(page: Any) -> np.ndarray | None:
    """The detector's probability map over the page, with the line boxes drawn."""
    if page.image is None:
        return None
    base = page.image
    if page.prob_map is not None:
        base = overlay(base, page.prob_map, alpha=0.45)
    return draw_quads(base, [line.box for line in page.lines])


STEP_HEADERS = ["步骤 Step", "应用 Applied", "原因 Why", "参数 Params", "毫秒 ms"]


def steps_gallery(prep: Any, original: np.ndarray | None = None) -> list[tuple[np.ndarray, str]]:
    """The input and the output of every step that changed the image (skipped steps are in the table)."""
    if prep is None:
        return []
    items = [(_as_rgb(original), "0. 原图 input")] if original is not None else []
    for i, step in enumerate(prep.steps):
        if step.image is None or not step.applied:
            continue
        items.append((_as_rgb(step.image), f"{i + 1}. {step.name} — {short(step.description, 80)}"))
    return items


def steps_table(prep: Any) -> list[list[Any]]:
    """Every step: applied or not, the measured reason, its parameters and its time."""
    rows = []
    for step in getattr(prep, "steps", []) or []:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in (step.params or {}).items())
        rows.append([step.name, "✓" if step.applied else "—", step.description, params, round(step.seconds * 1000)])
    return rows


def steps_summary(prep: Any, mode: str | None) -> str:
    """One sentence: what preprocessing did to this image, and why to look at the table."""
    if prep is None or mode == "off":  # "off" said "it is clean enough" (black-box pass): nothing was judged
        return "预处理已关闭 Preprocessing is off: the detector saw the image as uploaded."
    applied = list(prep.applied)
    angle = f"（纠斜 deskewed {prep.angle:+.2f}°）" if prep.angle else ""
    if not applied:
        clean = "图像已足够清晰 it is clean enough" if (mode or "auto") == "auto" else "没有选择步骤 no step was chosen"
        return (f"**{mode or 'auto'}**: 没有步骤改变图像 no step changed this image — {clean} "
                "(the table says why each step was skipped).")
    return (f"**{mode or 'auto'}** 应用了 applied: **{', '.join(applied)}**{angle} — 下表给出每一步的原因 "
            "the table gives each step's measured reason; the pictures show the input and each applied step.")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        if image.dtype == np.bool_:
            image = image.astype(np.uint8) * 255
        else:
            image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return image[:, :, :3]
    return image


def timings_markdown(page: Any, answered_s: float | None = None) -> str:
    """Lines, confidence, re-reads and the stage times; ``answered_s``: how long this answer took, said when it
    came from the cache (the stage times are then of the page's first read, not of this click)."""
    parts = [f"{k} {v * 1000:.0f} ms" for k, v in (page.timings or {}).items()]
    total = (page.timings or {}).get("total")
    if answered_s is not None and total and answered_s < 0.5 * total:
        parts.append(f"缓存 cached: 本次 {answered_s * 1000:.0f} ms answered now (the times are of its first read)")
    rot = f" · 旋转 rotated {page.rotation}°" if page.rotation else ""
    reread = sum(bool(getattr(getattr(ln, "line_result", None), "reread", False)) for ln in page.lines)
    rot += f" · **{reread}** 行由精确模型重读 re-read by Accurate (↺)" if reread else ""
    return (f"**{len(page.lines)}** 行 lines · 平均置信度 mean confidence **{page.confidence:.1%}**{rot}  \n"
            f"耗时 time: {' · '.join(parts)}")


def mark_errors(crop: np.ndarray | None, errors: Sequence[dict]) -> np.ndarray | None:
    """The line with every misread character boxed (red) and every missed one's place marked (blue)."""
    if crop is None:
        return None
    out = np.ascontiguousarray(_as_rgb(crop).copy())
    h, w = out.shape[:2]
    scale = max(1, round(h / 48))
    for e in errors:
        missed = e.get("op") == "delete"
        xr = (e.get("true_x_range") if missed else None) or e.get("x_range")
        if not xr:
            continue
        x0, x1 = int(max(0, np.floor(xr[0]))), int(min(w - 1, np.ceil(xr[1])))
        color = (40, 90, 255) if missed else (230, 30, 30)
        cv2.rectangle(out, (x0, 1), (max(x1, x0 + 1), h - 2), color, scale, cv2.LINE_AA)
    return out


TIMESTEP_HEADERS = ["t", "x (px)", "字 Char", "第1 Top-1", "第2 Top-2", "第3 Top-3"]


def timestep_table(alignment: dict | None, chars: Sequence[dict]) -> tuple[list[str], list[list[Any]]]:
    """One row per CTC time step: its image columns, the character it belongs to, its top-3 classes."""
    if not alignment or "topk" not in alignment:
        return ["—"], []
    labels = alignment["topk"].get("labels") or []
    probs = alignment["topk"].get("probs") or []
    cols = alignment.get("frame_columns") or []
    owner: dict[int, str] = {}
    for c in chars:
        for t in range(int(c.get("t_start", 0)), int(c.get("t_end", -1)) + 1):
            owner[t] = shown_space(c.get("char", ""))
    rows = []
    for t, (labs, ps) in enumerate(zip(labels, probs)):
        x = f"{cols[t][0]:.0f}–{cols[t][1]:.0f}" if t < len(cols) else ""
        top = [f"{shown_space(lab)} {p:.2f}" for lab, p in list(zip(labs, ps))[:3]]
        rows.append([t, x, owner.get(t, ""), *(top + [""] * (3 - len(top)))])
    return TIMESTEP_HEADERS, rows


PREP_ATTR_HEADERS = ["步骤 Step", "基准 Base → 变体 Variant", "读成 Reads", "Δ 置信度 confidence",
                     "改变 Changed", "消失 Gone", "新增 New", "↑ / ↓ chars", "说明 What the step does"]


def preprocess_attribution(report: dict) -> tuple[str, list[str], list[list[Any]]]:
    base = report.get("base") or {}
    md = [f"基准读数 Base reading: **{base.get('text', '')}** · 置信度 confidence "
          f"{float(base.get('confidence') or 0):.1%} · 已应用 applied: {', '.join(base.get('applied') or []) or '—'}"]
    rows = []
    best = None
    for v in report.get("variants") or []:
        counts = v.get("counts") or {}
        delta = v.get("confidence_delta")
        toggle = f"{'on' if v.get('base_on') else 'off'} → {'on' if v.get('enabled') else 'off'}"
        rows.append([v.get("step"), toggle, v.get("text", ""), None if delta is None else round(delta, 4),
                     counts.get("changed", 0), counts.get("disappeared", 0), counts.get("appeared", 0),
                     f"{counts.get('up', 0)} / {counts.get('down', 0)}", v.get("description", "")])
        if delta is not None and (best is None or abs(delta) > abs(best[1])):
            best = (v.get("step"), delta, v.get("text_changed"))
    if best:
        md.append(f"影响最大 Largest effect: **{best[0]}** (Δ {best[1]:+.3f}{', 文本改变 text changes' if best[2] else ''}).")
        md.append("Δ < 0: 切换后更差 toggling the step makes the reading worse; Δ > 0: better.")
    return "\n\n".join(md), PREP_ATTR_HEADERS, rows


def upscale(image: np.ndarray | None, min_height: int = 96, max_width: int = 2400) -> np.ndarray | None:
    """Small line images enlarged for display (a 20 px invoice line is unreadable on screen)."""
    if image is None or not isinstance(image, np.ndarray) or image.ndim < 2:
        return image
    h, w = image.shape[:2]
    if h >= min_height or h == 0:
        return image
    scale = min(min_height / h, max_width / max(w, 1))
    if scale <= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_CUBIC)


ERROR_HEADERS = ["操作 Op", "读成 Read", "应为 Truth", "位置 x (px)", "定位 Located by", "P(truth)", "排名 Rank",
                 "候选 Candidates", "原因 Why"]


def error_attribution(report: Any, crop: np.ndarray) -> tuple[str, np.ndarray | None, list[str], list[list]]:
    """An error-attribution report (``explain.errors``) as summary markdown, the line with the errors
    marked (None when there are none) and the table."""
    data = report.to_dict()
    errors = data["errors"]
    md = [f"识别 Read: **{data['prediction']}** · 正确 Truth: **{data['truth']}** · "
          f"字符错误率 CER **{float(data['cer']):.1%}** ({data['distance']} 处编辑 edits)"]
    if not errors:
        md.append("✅ 没有错误 No errors: the reading matches the true text.")
    summary = {k: v for k, v in (data.get("summary") or {}).items() if v}
    if summary:
        md.append("原因统计 Causes: " + ", ".join(f"`{k}` × {v}" for k, v in summary.items()))
    if data.get("forced_alignment") is False and errors:
        md.append("⚠️ 无法强制对齐正确文本 The true text could not be force-aligned; gaps are used for missing characters.")
    marked = upscale(mark_errors(crop, errors)) if errors else None
    rows = []
    for e in errors:
        cands = ", ".join(f"{c} {p:.2f}" for c, p in (e.get("candidates") or [])[:3])
        why = "; ".join(f"{d['name']}: {d['detail']}" for d in e.get("diagnoses") or []) or "—"
        rows.append([e.get("op"), e.get("pred_char") or "∅", e.get("true_char") or "∅",
                     "–".join(f"{v:.0f}" for v in e.get("x_range") or []), e.get("location"),
                     e.get("true_prob"), e.get("true_rank"), cands, why])
    return "\n\n".join(md), marked, ERROR_HEADERS, rows


#: what each error code means, in Chinese (the English half is the error's own message)
ZH_ERRORS = {
    "invalid_image": "这个文件无法作为图片读取（不是图片、已损坏或为空）",
    "image_too_large": "图片太大",
    "unsupported_image": "不支持这种文件类型",
    "bad_setting": "设置无效",
    "invalid_line": "没有这一行",
    "not_available": "此功能未启用",
    "bad_explain_request": "无法按此请求解释",
    "no_text": "没有可用的文字行",
}
#: errors about the file itself: the message suggests choosing another file
FILE_ERRORS = ("invalid_image", "image_too_large", "unsupported_image")
SUPPORTED = "PNG, JPEG, BMP, WebP, TIFF, GIF"


def user_message(code: str, english: str) -> str:
    """One bilingual message for a person: what went wrong, and what to do next (no paths, no codes)."""
    zh = ZH_ERRORS.get(code, "无法处理这张图片")
    english = english[:1].upper() + english[1:] if english else "This image cannot be processed"
    hint = f"  \n请换一个图片文件 Please choose another image file ({SUPPORTED})." if code in FILE_ERRORS else ""
    return f"⚠️ **{zh}。** {english.rstrip('.')}.{hint}"


def heat_panel(image: np.ndarray | None, title: str = "Grad-CAM") -> np.ndarray | None:
    """A heat overlay enlarged for the screen, with its colour scale under it."""
    big = upscale(image)
    return None if big is None else with_colorbar(big, title=title, low="低 low", high="高 high")


def similarity(a: str, b: str) -> float:
    """How alike two texts are (0..1), spaces ignored: a true text from another line scores low."""
    from difflib import SequenceMatcher

    a, b = "".join(a.split()), "".join(b.split())
    return SequenceMatcher(None, a, b).ratio() if a or b else 1.0


#: the Explain tab's "more views": title, and how to read it (shown beside each picture)
EXPLAIN_VIEWS = {
    "confidence": ("逐字置信度 Per-character confidence",
                   "每个字的置信度（%）：绿色有把握，红色没把握。 Each character's confidence in percent: "
                   "green = sure, red = unsure."),
    "topk": ("每个时间步的前 k 名 Top-k classes per time step",
             "横轴为时间步（每步约 8 个输入像素），纵轴为第 1…k 名；越亮概率越高，ε 为空白。 x: time steps "
             "(about 8 input pixels each), y: ranks 1…k; brighter = more probable; ε = blank. A clean reading "
             "has one bright top-1 cell per character with blanks between."),
    "saliency": ("梯度显著图 Saliency",
                 "像素稍有变化、该字分数变化多大：红色最敏感。快但有噪声。 How much a small change of each pixel "
                 "would change this character's score: red = most sensitive. Fast, but noisy."),
    "occlusion": ("遮挡 Occlusion",
                  "依次遮住一小块再重读：红色区域被遮住时该字分数降得最多。慢但可靠。 Each small patch is hidden "
                  "in turn and the line re-read: red = hiding it hurts this character most. Slow, but faithful."),
    "ig": ("积分梯度 Integrated gradients",
           "从空白图到原图累积的梯度：红色像素对该字贡献最大。 Gradients summed on the way from a blank image "
           "to this one: red = the pixels that contributed most to this character."),
}


FIELD_HEADERS = ["字段 Field", "值 Value", "把握 Sure?", "行 Lines", "依据 Why"]


def fields_table(fields: dict[str, Any]) -> list[list[Any]]:
    """A page's key fields (``FieldSet.to_dict()``) as rows: name, value, confidence mark, source lines
    (1-based, as in the line picker), why; [] when the page has none."""
    rows = []
    for name, f in fields["fields"].items():
        lines = ", ".join(str(int(i) + 1) for i in f["lines"])
        rows.append([f["label"] or name, f["value"], "⚠️ 低 low" if f["low_confidence"] else "✓", lines,
                     f["explanation"]["reason"]])
    return rows
