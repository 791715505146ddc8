"""Pictures and tables for the demo, from pipeline / explanation results (no gradio here)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import cv2
import numpy as np

#: per-character confidence classes, shown in the Result tab's coloured text
CONF_HIGH = "≥90% 高 high"
CONF_MID = "70–90% 中 mid"
CONF_LOW = "<70% 低 low"
CONF_COLORS = {CONF_HIGH: "#2e9d4a", CONF_MID: "#e0a800", CONF_LOW: "#d9363e"}


def conf_class(confidence: float) -> str:
    if confidence >= 0.9:
        return CONF_HIGH
    if confidence >= 0.7:
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


def annotations(page: Any) -> list[tuple[tuple[int, int, int, int], str]]:
    """Line boxes for gr.AnnotatedImage, labelled "n: text"."""
    return [(quad_bbox(line.box, page.width, page.height), line_label(i, line.text))
            for i, line in enumerate(page.lines)]


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


def lines_table(page: Any) -> list[list[Any]]:
    rows = []
    for i, line in enumerate(page.lines):
        low = [c.char for c in line.chars if c.confidence < 0.7]
        rows.append([i + 1, line.text, round(float(line.confidence), 3), len(line.text), "".join(low),
                     ", ".join(f"{v:.0f}" for v in quad_bbox(line.box, page.width, page.height))])
    return rows


LINES_HEADERS = ["#", "文本 Text", "置信度 Confidence", "字数 Chars", "低置信字 Low-conf chars", "框 Box (x1,y1,x2,y2)"]


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


def steps_gallery(prep: Any) -> list[tuple[np.ndarray, str]]:
    """Each preprocessing step's output with its description, for gr.Gallery."""
    if prep is None:
        return []
    items = []
    for i, step in enumerate(prep.steps):
        image, applied, seconds, params, desc = step.image, step.applied, step.seconds, step.params, step.description
        if image is None:
            continue
        caption = f"{i + 1}. {step.name}{'' if applied else ' (跳过 skipped)'}"
        if desc:
            caption += f" — {desc}"
        if params:
            caption += " [" + ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()) + "]"
        if seconds is not None:
            caption += f" ({seconds * 1000:.0f} ms)"
        items.append((_as_rgb(image), caption))
    return items


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


def timings_markdown(page: Any) -> str:
    parts = [f"{k} {v * 1000:.0f} ms" for k, v in (page.timings or {}).items()]
    rot = f" · 旋转 rotated {page.rotation}°" if page.rotation else ""
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
            owner[t] = c.get("char", "")
    rows = []
    for t, (labs, ps) in enumerate(zip(labels, probs)):
        x = f"{cols[t][0]:.0f}–{cols[t][1]:.0f}" if t < len(cols) else ""
        top = [f"{lab} {p:.2f}" for lab, p in list(zip(labs, ps))[:3]]
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


def error_attribution(report: Any, crop: np.ndarray) -> tuple[str, list, list[str], list[list]]:
    """An error-attribution report (``explain.errors``) as summary markdown, evidence gallery and table."""
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
    marked = upscale(mark_errors(crop, errors))
    gallery = [(marked, "错误位置 Where the errors are (red: read wrongly, blue: missed)")] if marked is not None else []
    rows = []
    for e in errors:
        cands = ", ".join(f"{c} {p:.2f}" for c, p in (e.get("candidates") or [])[:3])
        why = "; ".join(f"{d['name']}: {d['detail']}" for d in e.get("diagnoses") or []) or "—"
        rows.append([e.get("op"), e.get("pred_char") or "∅", e.get("true_char") or "∅",
                     "–".join(f"{v:.0f}" for v in e.get("x_range") or []), e.get("location"),
                     e.get("true_prob"), e.get("true_rank"), cands, why])
    return "\n\n".join(md), gallery, ERROR_HEADERS, rows
