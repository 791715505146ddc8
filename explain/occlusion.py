"""Occlusion sensitivity: grey out one patch at a time and see whose score drops.

Model-agnostic and gradient-free, so it checks the gradient methods: a patch
that a character really depends on lowers that character's log-probability
when hidden. The patch is 0 in the normalised input, i.e. mid-grey (127.5).

Every occluded copy is scored for *all* targets at once, so the cost is the
number of patch positions (about ``5 * width / 8`` forwards with the default
16x16 patch, stride 8, at most ``5 * MAX_X_POSITIONS``), not that times the
number of characters.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from explain.hooks import eval_guard
from explain.maps import ModelInput, as_line_input, normalize01
from explain.targets import Target, batch_scores

Progress = Callable[[float], None]

#: patch positions along a line at most: a longer line gets a proportionally longer stride and patch, so its
#: cost grows with its width once, not with its square (lines up to 1,616 input px keep stride 8)
MAX_X_POSITIONS = 200
#: input columns per forward batch (32 words of 160 px): a long line is occluded a few copies at a time, so
#: progress -- and a cancelled request's stop -- comes every few seconds, not after minutes
BATCH_COLUMNS = 32 * 160


def _positions(length: int, size: int, stride: int) -> list[int]:
    """Patch offsets covering ``0..length`` with the last patch flush with the end."""
    last = max(length - size, 0)
    pos = list(range(0, last + 1, stride))
    if pos[-1] != last:
        pos.append(last)
    return pos


def occlusion_drops(model: nn.Module, x: ModelInput, targets: Sequence[Target], *,
                    patch: int | tuple[int, int] = 16, stride: int = 8, batch_size: int = 32,
                    value: float = 0.0, progress: Progress | None = None,
                    width: int | None = None) -> np.ndarray:
    """Mean score drop per pixel, ``[N targets, 48, width]`` float32 (signed: > 0 means the pixels helped).

    ``progress(fraction)`` is called after every batch and ends at 1.0; an
    exception raised by it aborts the run (a way to cancel).
    """
    if stride < 1 or batch_size < 1:
        raise ValueError("stride and batch_size must be positive")
    ph, pw = (patch, patch) if isinstance(patch, int) else (int(patch[0]), int(patch[1]))
    line = as_line_input(x, width)
    h, w = line.height, line.width
    stride_x = max(stride, math.ceil(max(w - pw, 0) / MAX_X_POSITIONS))
    ph, pw = min(ph, h), min(max(pw, 2 * stride_x), w)
    batch_size = max(1, min(batch_size, BATCH_COLUMNS // max(w, 1)))
    coords = [(y, x0) for y in _positions(h, ph, stride) for x0 in _positions(w, pw, stride_x)]
    targets = list(targets)
    drops = np.zeros((len(targets), len(coords)), np.float32)
    if targets:
        with eval_guard(model), torch.inference_mode():
            logits = model(line.tensor)  # once: the line's own scores for every target (not a forward each)
            base = torch.stack([batch_scores(t, logits)[0] for t in targets])
            for start in range(0, len(coords), batch_size):
                chunk = coords[start : start + batch_size]
                xb = line.tensor.repeat(len(chunk), 1, 1, 1)
                for j, (y, x0) in enumerate(chunk):
                    xb[j, :, y : y + ph, x0 : x0 + pw] = value
                logits = model(xb)
                scores = torch.stack([batch_scores(t, logits) for t in targets])  # [N, b]
                drops[:, start : start + len(chunk)] = (base[:, None] - scores).numpy()
                if progress is not None:
                    progress(min(1.0, (start + len(chunk)) / len(coords)))
    elif progress is not None:
        progress(1.0)
    total = np.zeros((len(targets), h, w), np.float32)
    count = np.zeros((h, w), np.float32)
    for k, (y, x0) in enumerate(coords):
        total[:, y : y + ph, x0 : x0 + pw] += drops[:, k, None, None]
        count[y : y + ph, x0 : x0 + pw] += 1.0
    return total / np.maximum(count, 1.0)


def occlusion_maps(model: nn.Module, x: ModelInput, targets: Sequence[Target], **kwargs: object) -> list[np.ndarray]:
    """One ``[48, width]`` map in [0,1] per target: where hiding the image lowered its score most."""
    return [normalize01(d) for d in occlusion_drops(model, x, targets, **kwargs)]  # type: ignore[arg-type]
