"""The explanation methods behind one registry, and the one call that runs them on a line image.

A new method is one function ``run(line, progress)`` and one ``REGISTRY`` entry here.

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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from explain import render
from explain.alignment import EXPLAINED_WITH, LineAlignment, align_line, as_read, decoder_choices
from explain.gradcam import CAM_METHODS, DEFAULT_LAYER, GradCAMExplainer
from explain.maps import to_image_size
from explain.occlusion import occlusion_maps
from explain.saliency import extent_from_gradient, ig_maps, input_gradients, saliency_from_gradient
from explain.targets import CharLogit, CharScore, LinePathScore
from ocr.errors import OCRError
from ocr.imageio import load_image

Progress = Callable[[float], None]


class ExplainRequestError(OCRError):
    """An explanation request that cannot be served as asked (unknown method or layer, bad index)."""

    code = "bad_explain_request"
    default_message = "bad explanation request"


def _char_panels(rgb: np.ndarray, al: LineAlignment, maps: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    chars = al.decoding.chars
    return {i: render.draw_char_boxes(render.overlay(rgb, m), chars, highlight=i, labels=False)
            for i, m in maps.items()}


@dataclass
class LineUnderExplanation:
    """Everything a method needs about the line, and the answer it adds its images, maps and tables to."""

    recognizer: Any
    rgb: np.ndarray
    al: LineAlignment
    selected: list[int]
    options: dict[str, Any]
    images: dict[str, Any] = field(default_factory=dict)
    maps: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]

    @property
    def targets(self) -> list[CharScore]:
        chars = self.al.decoding.chars
        return [CharScore.from_span(chars[i]) for i in self.selected]

    def per_char(self, name: str, prepared_maps: Sequence[np.ndarray]) -> None:
        """Per-character maps at image size, and their overlays, under ``{name}_chars``."""
        full = {i: to_image_size(m, self.size) for i, m in zip(self.selected, prepared_maps)}
        self.maps[f"{name}_chars"] = full
        self.images[f"{name}_chars"] = _char_panels(self.rgb, self.al, full)


def _alignment(line: LineUnderExplanation, progress: Progress | None) -> None:
    al = line.al
    line.images["alignment"] = render.alignment_image(al.topk, title=al.decoding.text)
    line.images["alignment_matrix"] = render.alignment_matrix_image(al.matrix, title=al.decoding.text)
    line.tables["alignment"] = {"topk": al.topk.to_dict(), "frame_columns": np.round(al.frame_columns, 1).tolist()}


def _gradcam(line: LineUnderExplanation, progress: Progress | None) -> None:
    al, opts = line.al, line.options
    try:
        # the recogniser's own layer by default: the last CNN block differs between the fast and accurate networks
        layer = opts["layer"] or getattr(line.recognizer, "cam_layer", DEFAULT_LAYER)
        explainer = GradCAMExplainer(line.recognizer.model, layer, method=opts["cam_method"])
    except ValueError as exc:
        raise ExplainRequestError(str(exc)) from exc
    line_target = LinePathScore.from_probs(al.probs, al.prepared.steps)
    with explainer as cam:
        cams = cam.maps(al.prepared, [line_target, *[CharLogit.from_target(t) for t in line.targets]])
    line.maps["gradcam_line"] = to_image_size(cams[0], line.size)
    line.images["gradcam_line"] = render.draw_char_boxes(render.overlay(line.rgb, line.maps["gradcam_line"]),
                                                         al.decoding.chars)
    line.per_char("gradcam", cams[1:])
    line.tables["gradcam"] = {"layers": explainer.layers, "method": opts["cam_method"]}


def _saliency(line: LineUnderExplanation, progress: Progress | None) -> None:
    targets, al = line.targets, line.al
    grads = input_gradients(line.recognizer.model, al.prepared, targets, progress=progress)
    line.per_char("saliency", [saliency_from_gradient(g) for g in grads])
    spans = [(c.t_start, c.t_end) for c in al.decoding.chars]
    line.tables["reach"] = {i: extent_from_gradient(g, t, spans=spans, scale=al.prepared.scale).to_dict()
                            for i, g, t in zip(line.selected, grads, targets)}


def _occlusion(line: LineUnderExplanation, progress: Progress | None) -> None:
    opts = line.options
    line.per_char("occlusion", occlusion_maps(line.recognizer.model, line.al.prepared, line.targets,
                                              patch=opts["occlusion_patch"], stride=opts["occlusion_stride"],
                                              progress=progress))


def _ig(line: LineUnderExplanation, progress: Progress | None) -> None:
    line.per_char("ig", ig_maps(line.recognizer.model, line.al.prepared, line.targets,
                                steps=line.options["ig_steps"], progress=progress))


@dataclass(frozen=True)
class Method:
    """One explanation method: what it runs, and its rough share of the run time (for progress)."""

    run: Callable[[LineUnderExplanation, Progress | None], None]
    cost: float


#: every explanation method, in run order
REGISTRY: dict[str, Method] = {
    "alignment": Method(_alignment, 0.05),
    "gradcam": Method(_gradcam, 0.1),
    "saliency": Method(_saliency, 0.1),
    "occlusion": Method(_occlusion, 0.45),
    "ig": Method(_ig, 0.4),
}
METHODS = tuple(REGISTRY)


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
        total = sum(REGISTRY[m].cost for m in methods) or 1.0
        self.share = {m: REGISTRY[m].cost / total for m in methods}
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


def explain_line(recognizer: Any, image: Any, methods: str | Iterable[str] = ("gradcam", "alignment"),
                 char_index: int | None = None, layer: str | Sequence[str] | None = None,
                 progress: Progress | None = None, *, cam_method: str = "layercam", top_k: int = 5,
                 ig_steps: int = 24, occlusion_patch: int = 16, occlusion_stride: int = 8,
                 reading: Any = None) -> dict[str, Any]:
    """Read ``image`` (one text line) and explain the reading.

    ``char_index`` restricts per-character maps to that character (position
    in the text); ``layer`` is one CNN layer name or several (maps fused);
    ``cam_method`` one of :data:`explain.gradcam.CAM_METHODS`; ``reading``: the
    :class:`~ocr.results.LineResult` already read from ``image`` (a page's line), else it is read here.
    Returns a dict of plain data: ``text``, ``confidence``, ``chars`` (table
    rows), ``images`` (uint8 RGB arrays; per-character ones as
    ``{char position: image}``), ``maps`` (float32 [0,1] at image size),
    ``tables`` and ``timings`` (seconds per method); ``explained_with`` (always the float torch
    model), ``reading_engine`` (what read the text: int8, float ONNX or torch) and
    ``force_aligned`` (the float model's own best path reads otherwise, so the text's characters
    were force-aligned to its frames: ``text`` is always the reading being explained); ``decoder_choices``
    (``explain.alignment.decoder_choices``: characters the decoder chose over what their frames prefer).
    """
    run = resolve_methods(methods)
    if cam_method not in CAM_METHODS:
        raise ExplainRequestError(f"unknown CAM method {cam_method!r}; choose from {', '.join(CAM_METHODS)}")
    stages = _Stages(progress, run)
    t0 = time.perf_counter()
    rgb, reading = as_read(recognizer, load_image(image), reading)  # every view shows the image as read
    al = align_line(recognizer, rgb, k=top_k, reading=reading)
    chars = al.decoding.chars
    if char_index is not None and not 0 <= int(char_index) < len(chars):
        shown = int(char_index) if abs(int(char_index)) < 10**6 else "out of range"  # never echo a 4000-digit number
        raise ExplainRequestError(f"character {shown} does not exist: the line reads {len(chars)} characters")
    selected = [int(char_index)] if char_index is not None else list(range(len(chars)))
    line = LineUnderExplanation(recognizer, rgb, al, selected, {
        "layer": layer, "cam_method": cam_method, "ig_steps": ig_steps,
        "occlusion_patch": occlusion_patch, "occlusion_stride": occlusion_stride})
    line.images.update(confidence=render.confidence_strip(al.decoding.text, [c.confidence for c in chars]),
                       boxes=render.draw_char_boxes(rgb, chars))
    timings = {"recognize": round(time.perf_counter() - t0, 4)}
    for method in run:
        t0 = time.perf_counter()
        REGISTRY[method].run(line, stages.stage(method))
        stages.finish(method)
        timings[method] = round(time.perf_counter() - t0, 4)
    if progress is not None and not run:
        progress(1.0)
    return {"text": al.decoding.text, "confidence": round(float(al.decoding.confidence), 4),
            "width": rgb.shape[1], "height": rgb.shape[0], "chars": al.rows, "selected_chars": selected,
            "methods": run, "images": line.images, "maps": line.maps, "tables": line.tables, "timings": timings,
            "explained_with": EXPLAINED_WITH, "reading_engine": al.reading_engine, "force_aligned": al.force_aligned,
            "decoder_choices": decoder_choices(chars, al.probs)}
