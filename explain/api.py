"""One call for the UI and REST layers: explain a line image with the chosen methods.

    out = explain_line(recognizer, image, methods=("gradcam", "alignment"))
    out["text"], out["chars"]            # reading and per-character table rows
    out["images"]["gradcam_chars"][3]    # uint8 RGB overlay for character 3
    out["maps"]["gradcam_chars"][3]      # float32 [H, W] map in [0,1], original image size

Safe for concurrent calls: recognition goes through the recogniser's own
lock, Grad-CAM holds :data:`explain.hooks.EXPLAIN_LOCK` while its hooks are
on the shared model, and the gradient-only methods change no model state.
Bad input raises an :class:`ocr.errors.OCRError` subclass with a short
message (an unreadable image, an unknown method, a character out of range).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from explain import render
from explain.alignment import LineAlignment, align_line
from explain.gradcam import CAM_METHODS, DEFAULT_LAYER, GradCAMExplainer
from explain.maps import to_image_size
from explain.occlusion import occlusion_maps
from explain.saliency import extent_from_gradient, ig_maps, input_gradients, saliency_from_gradient
from explain.targets import CharLogit, CharScore, LinePathScore
from ocr.errors import OCRError
from ocr.imageio import load_image

METHODS = ("alignment", "gradcam", "saliency", "occlusion", "ig")
#: rough share of the run time of each method, for one overall progress fraction
_COST = {"alignment": 0.05, "gradcam": 0.1, "saliency": 0.1, "occlusion": 0.45, "ig": 0.4}

Progress = Callable[[float], None]


class ExplainRequestError(OCRError):
    """An explanation request that cannot be served as asked (unknown method or layer, bad index)."""

    code = "bad_explain_request"
    default_message = "bad explanation request"


def resolve_methods(methods: str | Iterable[str]) -> list[str]:
    """Validated methods in run order; ``"all"`` means every one."""
    names = [methods] if isinstance(methods, str) else list(methods)
    if "all" in names:
        return list(METHODS)
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ExplainRequestError(f"unknown method(s) {', '.join(map(str, unknown))}; "
                                  f"choose from {', '.join(METHODS)} or all")
    return [m for m in METHODS if m in names]


class _Stages:
    """Turns each method's own 0..1 progress into one overall fraction."""

    def __init__(self, callback: Progress | None, methods: Sequence[str]) -> None:
        self.callback = callback
        total = sum(_COST[m] for m in methods) or 1.0
        self.share = {m: _COST[m] / total for m in methods}
        self.done = 0.0

    def stage(self, method: str) -> Progress | None:
        if self.callback is None:
            return None
        start, share, callback = self.done, self.share[method], self.callback
        return lambda f: callback(min(1.0, start + share * min(max(float(f), 0.0), 1.0)))

    def finish(self, method: str) -> None:
        self.done += self.share[method]
        if self.callback is not None:
            self.callback(min(1.0, self.done))


def _char_panels(rgb: np.ndarray, al: LineAlignment, maps: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    chars = al.decoding.chars
    return {i: render.draw_char_boxes(render.overlay(rgb, m), chars, highlight=i, labels=False)
            for i, m in maps.items()}


def explain_line(recognizer: Any, image: Any, methods: str | Iterable[str] = ("gradcam", "alignment"),
                 char_index: int | None = None, layer: str | Sequence[str] | None = None,
                 progress: Progress | None = None, *, cam_method: str = "layercam", top_k: int = 5,
                 ig_steps: int = 24, occlusion_patch: int = 16, occlusion_stride: int = 8) -> dict[str, Any]:
    """Read ``image`` (one text line) and explain the reading.

    ``char_index`` restricts per-character maps to that character (position
    in the text); ``layer`` is one CNN layer name or several (maps fused);
    ``cam_method`` one of :data:`explain.gradcam.CAM_METHODS`.
    Returns a dict of plain data: ``text``, ``confidence``, ``chars`` (table
    rows), ``images`` (uint8 RGB arrays; per-character ones as
    ``{char position: image}``), ``maps`` (float32 [0,1] at image size),
    ``tables`` and ``timings`` (seconds per method).
    """
    run = resolve_methods(methods)
    if cam_method not in CAM_METHODS:
        raise ExplainRequestError(f"unknown CAM method {cam_method!r}; choose from {', '.join(CAM_METHODS)}")
    stages = _Stages(progress, run)
    rgb = load_image(image)
    h, w = rgb.shape[:2]
    t0 = time.perf_counter()
    al = align_line(recognizer, rgb, k=top_k)
    chars = al.decoding.chars
    if char_index is not None and not 0 <= int(char_index) < len(chars):
        raise ExplainRequestError(f"character {char_index} does not exist: the line reads {len(chars)} characters")
    selected = [int(char_index)] if char_index is not None else list(range(len(chars)))
    char_tg = [CharScore.from_span(chars[i]) for i in selected]
    spans = [(c.t_start, c.t_end) for c in chars]

    out: dict[str, Any] = {
        "text": al.decoding.text,
        "confidence": round(float(al.decoding.confidence), 4),
        "width": w,
        "height": h,
        "chars": al.rows,
        "selected_chars": selected,
        "methods": run,
        "images": {
            "confidence": render.confidence_strip(al.decoding.text, [c.confidence for c in chars]),
            "boxes": render.draw_char_boxes(rgb, chars),
        },
        "maps": {},
        "tables": {},
        "timings": {"recognize": round(time.perf_counter() - t0, 4)},
    }
    images, maps, tables, timings = out["images"], out["maps"], out["tables"], out["timings"]

    def per_char(name: str, prepared_maps: Sequence[np.ndarray]) -> None:
        full = {i: to_image_size(m, (h, w)) for i, m in zip(selected, prepared_maps)}
        maps[f"{name}_chars"] = full
        images[f"{name}_chars"] = _char_panels(rgb, al, full)

    for method in run:
        t0 = time.perf_counter()
        sub = stages.stage(method)
        if method == "alignment":
            images["alignment"] = render.alignment_image(al.topk, title=al.decoding.text)
            images["alignment_matrix"] = render.alignment_matrix_image(al.matrix, title=al.decoding.text)
            tables["alignment"] = {"topk": al.topk.to_dict(),
                                   "frame_columns": np.round(al.frame_columns, 1).tolist()}
        elif method == "gradcam":
            try:
                explainer = GradCAMExplainer(recognizer.model, layer or DEFAULT_LAYER, method=cam_method)
            except ValueError as exc:
                raise ExplainRequestError(str(exc)) from exc
            line_target = LinePathScore.from_probs(al.probs, al.prepared.steps)
            with explainer as cam:
                cams = cam.maps(al.prepared, [line_target, *[CharLogit.from_target(t) for t in char_tg]])
            maps["gradcam_line"] = to_image_size(cams[0], (h, w))
            images["gradcam_line"] = render.draw_char_boxes(render.overlay(rgb, maps["gradcam_line"]), chars)
            per_char("gradcam", cams[1:])
            tables["gradcam"] = {"layers": explainer.layers, "method": cam_method}
        elif method == "saliency":
            grads = input_gradients(recognizer.model, al.prepared, char_tg, progress=sub)
            per_char("saliency", [saliency_from_gradient(g) for g in grads])
            tables["reach"] = {
                i: extent_from_gradient(g, t, spans=spans, scale=al.prepared.scale).to_dict()
                for i, g, t in zip(selected, grads, char_tg)
            }
        elif method == "occlusion":
            per_char("occlusion", occlusion_maps(recognizer.model, al.prepared, char_tg, patch=occlusion_patch,
                                                 stride=occlusion_stride, progress=sub))
        elif method == "ig":
            per_char("ig", ig_maps(recognizer.model, al.prepared, char_tg, steps=ig_steps, progress=sub))
        stages.finish(method)
        timings[method] = round(time.perf_counter() - t0, 4)
    if progress is not None and not run:
        progress(1.0)
    return out
