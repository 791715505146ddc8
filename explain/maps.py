"""Attribution maps: the model-input form every explainer takes, and the [0,1] map form it returns.

Every explainer returns maps at the *prepared* input size ``[48, width]``
(the line as the model saw it, padding cut off), float32 in [0, 1]. They map
back onto the original image with a plain resize, because
:func:`ocr.recognize.lineprep.prepare_line` is a plain resize.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ocr.recognize.lineprep import PreparedLine, batch_tensor

ModelInput = Union[torch.Tensor, PreparedLine]


@dataclass(frozen=True)
class LineInput:
    """A single line as a padded model batch ``[1,3,48,W8]`` plus its real width."""

    tensor: torch.Tensor
    width: int

    @property
    def height(self) -> int:
        return int(self.tensor.shape[2])


def as_line_input(x: ModelInput, width: int | None = None) -> LineInput:
    """Accept a :class:`PreparedLine`, a ``[3,48,W]`` or a ``[1,3,48,W]`` tensor (one line only)."""
    if isinstance(x, LineInput):
        return x
    if isinstance(x, PreparedLine):
        with torch.inference_mode(False):  # a normal tensor even when the caller is in inference mode
            return LineInput(batch_tensor([x]), x.width if width is None else int(width))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a PreparedLine or a tensor, got {type(x).__name__}")
    t = x.detach()
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[0] != 1 or t.shape[1] != 3:
        raise ValueError(f"expected one line [1,3,H,W], got shape {tuple(x.shape)}")
    w = t.shape[3] if width is None else int(width)
    if not 0 < w <= t.shape[3]:
        raise ValueError(f"width {w} is outside the tensor's {t.shape[3]} columns")
    with torch.inference_mode(False):  # a caller's inference tensor cannot join an autograd graph
        return LineInput(t.float().clone().contiguous(), w)


def normalize01(m: np.ndarray | torch.Tensor, percentile: float | None = None) -> np.ndarray:
    """Non-negative part scaled by its maximum: 0 keeps meaning "no evidence"; all-zero stays zero.

    ``percentile`` (e.g. 99.5) scales by that percentile instead and clips:
    pixel-level gradients are a few bright pixels, invisible when scaled by
    the single brightest one.
    """
    arr = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    arr = np.maximum(arr, 0.0)
    peak = float(arr.max()) if arr.size else 0.0
    if percentile is not None and peak > 0.0:
        peak = float(np.percentile(arr, percentile)) or peak
    if peak <= 0.0:
        return np.zeros_like(arr, dtype=np.float32)
    return np.clip(arr / peak, 0.0, 1.0).astype(np.float32)


def upsample(cam: torch.Tensor, height: int, padded_width: int, width: int) -> torch.Tensor:
    """A low-resolution map ``[h,w']`` of the padded batch -> ``[height, width]`` (padding cropped)."""
    m = cam.detach().float().reshape(1, 1, *cam.shape[-2:])
    m = F.interpolate(m, size=(height, padded_width), mode="bilinear", align_corners=False)
    return m[0, 0, :, :width]


def to_image_size(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A map at the prepared size -> the original image's ``(height, width)``, still in [0, 1]."""
    h, w = int(size[0]), int(size[1])
    arr = np.asarray(m, dtype=np.float32)
    out = cv2.resize(arr, (max(w, 1), max(h, 1)), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
