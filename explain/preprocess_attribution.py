"""Which preprocessing step helps or hurts the reading of a line, character by character.

    report = attribute_preprocessing(recognizer, line_image)
    for v in report["variants"]:
        v["step"], v["enabled"], v["text"], v["confidence_delta"]
        [(c["char"], c["status"], c["delta"]) for c in v["chars"]]   # one entry per base character

The line is preprocessed with ``base_config`` (default: ``PreprocessConfig()``,
auto mode) and read: that is the *base* reading. Then, for every step in
``steps``, the line is preprocessed again with only that step toggled (on if
it was off in the base run, off if it was on) and read again.

The base run is first turned into the equivalent manual configuration: a step
is "on" if the base run applied it (auto mode) or enabled it (manual mode),
and an auto-measured deskew angle is pinned. So a variant differs from the
base in exactly one step; in auto mode, switching off denoising cannot change
what the contrast step decides downstream.

Each variant's reading is aligned to the base reading with edit operations
(:func:`explain.errors.align`). ``chars`` has one entry per *base* character:
``status`` is ``"same"`` (the variant reads the same character there; ``delta``
is its confidence change), ``"changed"`` (another character is read in its
place; ``delta`` compares the two readings' confidences and ``base_char_prob``
is the probability the variant still gives the base character over those
frames) or ``"disappeared"`` (nothing is read there; ``delta`` is None).
Characters only the variant reads are listed in ``appeared``, each with the
base position it follows. Character x-ranges are in the coordinates of the
image each reading was made on (deskew enlarges the canvas, normalize_size
rescales it), given as ``image_size``.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Sequence

import numpy as np

from explain.alignment import as_read
from explain.errors import align
from ocr.recognize.charset import BLANK
from ocr.decode import greedy_decode
from ocr.imageio import load_image
from ocr.preprocess import STEP_ORDER, PreprocessConfig, Preprocessor, PreprocessResult, config_from_dict

__all__ = ["attribute_preprocessing", "effective_config", "DEFAULT_STEPS"]

DEFAULT_STEPS = ("denoise", "contrast", "binarize", "deskew")


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd) + 0.0  # + 0.0: no "-0.0" in the JSON


def effective_config(config: PreprocessConfig, run: PreprocessResult) -> PreprocessConfig:
    """The manual configuration that reproduces ``run`` (made with ``config``)."""
    manual = copy.deepcopy(config)
    manual.mode = "manual"
    for name in STEP_ORDER:
        step_cfg = manual.step_config(name)
        if config.mode == "manual":
            continue
        step = run.step(name)
        step_cfg.enabled = bool(step.applied)
        if name == "deskew" and step.applied and config.mode == "auto":
            step_cfg.angle = float(step.params["angle"])  # what auto measured: rotate exactly that
    return manual


def _was_on(config: PreprocessConfig, run: PreprocessResult, name: str) -> bool:
    if config.mode == "off":
        return False
    if config.mode == "manual":
        return bool(config.step_config(name).enabled)
    return bool(run.step(name).applied)


class _Reading:
    """One recognition with the frame probabilities kept (for ``base_char_prob``)."""

    def __init__(self, recognizer: Any, image: np.ndarray) -> None:
        probs, prepared = recognizer.probabilities([image])[0]
        self.probs = np.asarray(probs)
        if recognizer.decoder == "greedy":
            line = greedy_decode(self.probs, recognizer.charset, scale=prepared.scale, image_width=image.shape[1])
            self.text, self.confidence, self.chars = line.text, float(line.confidence), list(line.chars)
        else:  # beam search (or another decoder): let the recogniser decode
            res = recognizer.recognize_one(image)
            self.text, self.confidence, self.chars = res.text, float(res.confidence), list(res.chars)
        self.size = [int(image.shape[1]), int(image.shape[0])]

    def char_dicts(self) -> list[dict[str, Any]]:
        return [{"char": c.char, "confidence": _r(c.confidence), "x_start": _r(c.x_start, 1),
                 "x_end": _r(c.x_end, 1)} for c in self.chars]


def _prob_of(reading: _Reading, charset: Any, char: str, t0: int, t1: int) -> float | None:
    idx = charset.encode(char)
    if len(idx) != 1 or idx[0] == BLANK or reading.probs.shape[0] == 0:
        return None
    return float(reading.probs[t0 : t1 + 1, idx[0]].mean(dtype=np.float64))


def _compare(base: _Reading, var: _Reading, charset: Any) -> dict[str, Any]:
    ops = align(var.text, base.text)  # "truth" = base: delete = disappeared, insert = appeared
    chars: list[dict[str, Any]] = []
    appeared: list[dict[str, Any]] = []
    last_base = -1
    for op in ops:
        if op.op == "insert":
            vc = var.chars[op.pred_index]
            appeared.append({"variant_index": op.pred_index, "char": vc.char, "confidence": _r(vc.confidence),
                             "after_base_index": last_base, "x_start": _r(vc.x_start, 1), "x_end": _r(vc.x_end, 1)})
            continue
        bc = base.chars[op.truth_index]
        last_base = op.truth_index
        entry: dict[str, Any] = {"index": op.truth_index, "char": bc.char, "base_confidence": _r(bc.confidence),
                                 "status": "disappeared", "variant_index": None, "variant_char": None,
                                 "variant_confidence": None, "delta": None}
        if op.op in ("match", "substitute"):
            vc = var.chars[op.pred_index]
            entry.update(status="same" if op.op == "match" else "changed", variant_index=op.pred_index,
                         variant_char=vc.char, variant_confidence=_r(vc.confidence),
                         delta=_r(vc.confidence - bc.confidence), x_start=_r(vc.x_start, 1), x_end=_r(vc.x_end, 1))
            if op.op == "substitute":
                entry["base_char_prob"] = _r(_prob_of(var, charset, bc.char, vc.t_start, vc.t_end))
        chars.append(entry)
    deltas = [c["delta"] for c in chars if c["status"] == "same"]
    return {
        "text": var.text,
        "confidence": _r(var.confidence),
        "confidence_delta": _r(var.confidence - base.confidence),
        "text_changed": var.text != base.text,
        "distance": sum(op.op != "match" for op in ops),
        "chars": chars,
        "appeared": appeared,
        "counts": {
            "same": sum(c["status"] == "same" for c in chars),
            "changed": sum(c["status"] == "changed" for c in chars),
            "disappeared": sum(c["status"] == "disappeared" for c in chars),
            "appeared": len(appeared),
            "up": sum(d > 0 for d in deltas),
            "down": sum(d < 0 for d in deltas),
        },
        "mean_char_delta": _r(float(np.mean(deltas))) if deltas else None,
        "ops": [op.to_dict() for op in ops],
        "image_size": var.size,
    }


def attribute_preprocessing(recognizer: Any, image: Any, steps: Sequence[str] = DEFAULT_STEPS,
                            base_config: PreprocessConfig | dict | None = None) -> dict[str, Any]:
    """Re-read ``image`` (a text line) with each of ``steps`` toggled relative to ``base_config``.

    Returns ``{"base": {...}, "steps": [...], "variants": [one per step, in order]}``
    (see the module docstring); everything is JSON-friendly.
    """
    started = time.perf_counter()
    rgb = as_read(recognizer, load_image(image))[0]  # a vertical line: attributed as it is read, turned
    unknown = [s for s in steps if s not in STEP_ORDER]
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {', '.join(map(str, unknown))}; "
                         f"expected some of {', '.join(STEP_ORDER)}")
    config = config_from_dict(base_config)
    base_run = Preprocessor(config).run(rgb)
    manual = effective_config(config, base_run)
    base = _Reading(recognizer, base_run.image)
    charset = recognizer.charset

    variants = []
    for name in steps:
        t0 = time.perf_counter()
        was_on = _was_on(config, base_run, name)
        cfg = copy.deepcopy(manual)
        cfg.step_config(name).enabled = not was_on
        if name == "deskew" and not was_on:
            cfg.deskew.angle = None  # measure the tilt afresh
        run = Preprocessor(cfg).run(rgb)
        reading = _Reading(recognizer, run.image)
        # what the toggled step did: its run in the variant when switched on, in the base when switched off
        step = run.step(name) if not was_on else base_run.step(name)
        variant = {
            "step": name,
            "base_on": was_on,
            "enabled": not was_on,
            "step_applied": bool(step.applied),
            "description": step.description,
            "applied": run.applied,
        }
        variant.update(_compare(base, reading, charset))
        variant["seconds"] = round(time.perf_counter() - t0, 4)
        variants.append(variant)

    return {
        "base": {
            "config": config.to_dict(),
            "applied": base_run.applied,
            "text": base.text,
            "confidence": _r(base.confidence),
            "chars": base.char_dicts(),
            "image_size": base.size,
        },
        "steps": list(steps),
        "variants": variants,
        "seconds": round(time.perf_counter() - started, 4),
    }
