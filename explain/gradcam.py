"""Class-activation maps of CTC scores, with torchcam's extractors.

    with GradCAMExplainer(model, layers=["backbone.blocks.8"]) as cam:
        line = cam.line_map(x, LinePathScore.from_probs(probs, steps))
        chars = cam.char_maps(x, [CharScore.from_span(c) for c in result.chars])

One forward pass per call; each target then costs one backward from the
logits down to the hooked layer only (``torch.autograd.grad`` with
``retain_graph``, inside torchcam's ``_backprop``), never through the rest of
the CNN.

Which CAM. ``method="layercam"`` (default) weights every activation by its
own positive gradient; ``"gradcam"`` (the original) weights each channel by
its gradient averaged over the *whole line*. A CRNN line is a sequence of
many small classification problems sharing one feature map, so that global
average gives a character's channel weights and then lights up every place
those channels fire -- other characters included. On a clean 20-character
line, Grad-CAM per character put ~12% of its mass inside the character's box
(peak inside for 8/20 characters); LayerCAM ~88% (19/20). Grad-CAM stays
available for whole-line maps and comparison.

The model is shared: the explainer takes :data:`explain.hooks.EXPLAIN_LOCK`
for its whole ``with`` block, puts the model in eval mode with frozen
parameters, and on exit (exceptions included) removes every hook and
restores modes and flags. Hooks only record in the thread that entered, so a
plain recognition running in another thread meanwhile is unaffected.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn
from torchcam.methods import GradCAM, GradCAMpp, LayerCAM, XGradCAM

from explain.hooks import guarded_model
from explain.maps import LineInput, ModelInput, as_line_input, normalize01, to_image_size, upsample
from explain.targets import Target

__all__ = ["CAM_METHODS", "DEFAULT_LAYER", "GradCAMExplainer", "available_layers", "to_image_size"]

DEFAULT_LAYER = "backbone.blocks.8"
Fuse = Literal["mean", "max"]


class _OwnThreadHooks:
    """Mixin: torchcam hooks that ignore forwards run by other threads on the shared model."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._owner = threading.get_ident()
        super().__init__(*args, **kwargs)

    def _hook_a(self, module: nn.Module, inputs: Any, output: torch.Tensor, idx: int = 0) -> None:
        if threading.get_ident() == self._owner:
            super()._hook_a(module, inputs, output, idx=idx)  # type: ignore[misc]

    def _hook_g(self, module: nn.Module, inputs: Any, output: torch.Tensor, idx: int = 0) -> None:
        if threading.get_ident() == self._owner:
            super()._hook_g(module, inputs, output, idx=idx)  # type: ignore[misc]


CAM_METHODS: dict[str, type] = {
    name: type(f"_ThreadBound{cls.__name__}", (_OwnThreadHooks, cls), {})
    for name, cls in (("layercam", LayerCAM), ("gradcam", GradCAM), ("gradcampp", GradCAMpp),
                      ("xgradcam", XGradCAM))
}


def available_layers(model: nn.Module) -> list[str]:
    """Layers with a 2-D (height x width) output worth a CAM: the CNN stems and blocks, input to output."""
    names: list[str] = []
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    for child_name, child in backbone.named_children():
        if isinstance(child, nn.Sequential):
            names.extend(f"backbone.{child_name}.{i}" for i in range(len(child)))
        elif isinstance(child, nn.Conv2d):
            names.append(f"backbone.{child_name}")
    return names


def _layer_list(model: nn.Module, layers: str | Sequence[str] | None) -> list[str]:
    if layers is None:
        return [DEFAULT_LAYER]
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("give at least one layer")
    known = dict(model.named_modules())
    unknown = [n for n in names if n not in known or n == ""]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; available: {', '.join(available_layers(model))}")
    return names


class GradCAMExplainer:
    """CAM maps of arbitrary scalar targets of a CRNN (see the module docstring).

    Enter and use it in one thread (it holds a reentrant lock and its hooks
    record only that thread's forwards). Maps come at the prepared input size
    ``[48, width]``; :func:`to_image_size` maps them onto the original image.
    """

    def __init__(self, model: nn.Module, layers: str | Sequence[str] | None = None, *,
                 method: str = "layercam", fuse: Fuse = "mean") -> None:
        if method not in CAM_METHODS:
            raise ValueError(f"unknown CAM method {method!r}; choose from {', '.join(CAM_METHODS)}")
        if fuse not in ("mean", "max"):
            raise ValueError("fuse must be 'mean' or 'max'")
        self.model = model
        self.layers = _layer_list(model, layers)
        self.method = method
        self.fuse = fuse
        self._cam: Any = None
        self._stack: contextlib.ExitStack | None = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> "GradCAMExplainer":
        if self._stack is not None:
            raise RuntimeError("this GradCAMExplainer is already in use")
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(guarded_model(self.model))
            cam = CAM_METHODS[self.method](self.model, target_layer=list(self.layers))
            stack.callback(self._release, cam)
        except BaseException:
            stack.close()
            raise
        self._cam, self._stack = cam, stack
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stack, self._stack, self._cam = self._stack, None, None
        if stack is not None:
            stack.close()  # hooks removed first, then model state restored, then the lock released

    @staticmethod
    def _release(cam: Any) -> None:
        try:
            cam.remove_hooks()
        finally:
            cam.reset_hooks()  # drops the stored activations and the graph they hold

    # ------------------------------------------------------------ maps

    def maps(self, x: ModelInput, targets: Sequence[Target], width: int | None = None) -> list[np.ndarray]:
        """One ``[48, width]`` float32 map in [0,1] per target, from a single forward pass."""
        if self._cam is None:
            raise RuntimeError("use GradCAMExplainer as a context manager: `with GradCAMExplainer(...) as cam:`")
        line = as_line_input(x, width)
        targets = list(targets)
        if not targets:
            return []
        with torch.inference_mode(False), torch.enable_grad():
            inp = line.tensor.clone().requires_grad_(True)  # parameters are frozen: the input carries the graph
            try:
                logits = self.model(inp)
                out = []
                for i, target in enumerate(targets):
                    cams = self._cam(targets=target, scores=logits, normalized=False,
                                     retain_graph=i < len(targets) - 1)
                    out.append(self._combine(cams, line))
                return out
            finally:
                self._cam.reset_hooks()

    def line_map(self, x: ModelInput, target: Target, width: int | None = None) -> np.ndarray:
        """The map of one whole-line score (e.g. :class:`explain.targets.LinePathScore`)."""
        return self.maps(x, [target], width)[0]

    def char_maps(self, x: ModelInput, targets: Sequence[Target], width: int | None = None) -> list[np.ndarray]:
        """One map per character target, all from one forward pass."""
        return self.maps(x, targets, width)

    def _combine(self, cams: list[torch.Tensor], line: LineInput) -> np.ndarray:
        """Per-layer maps -> input size, each scaled to [0,1], then fused (mean or max) and rescaled."""
        padded = int(line.tensor.shape[3])
        per_layer = [normalize01(upsample(c[0], line.height, padded, line.width)) for c in cams]
        if len(per_layer) == 1:
            return per_layer[0]
        stacked = np.stack(per_layer)
        return normalize01(stacked.mean(0) if self.fuse == "mean" else stacked.max(0))
