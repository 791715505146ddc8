"""Turn line images into the model's input: 48 px high, aspect kept, BGR, [-1, 1], right-padded.

Shared by inference, training and explanations so all three see identical tensors. The input
geometry (``INPUT_HEIGHT``, ``STRIDE_X``) lives here, torch-free: the model, CTC decoding and
page preprocessing all agree on it, and the onnxruntime path never imports torch to read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np


if TYPE_CHECKING:
    import torch

#: every line is resized to this height (the pretrained CNN's input height)
INPUT_HEIGHT = 48
#: horizontal down-sampling: one CTC time step covers this many input pixels
STRIDE_X = 8
#: widest normalised line (px); wider lines are squeezed horizontally to fit
MAX_WIDTH = 3200
MIN_WIDTH = 16
#: batches are right-padded to at least this width: the pretrained CNN was trained on
#: 3x48x320 inputs (PP-OCRv6 inference.yml, RecResizeImg) and its squeeze-excite blocks
#: average over the whole width, so unpadded short words shift them. Measured on 600
#: synthetic validation lines read one at a time (seed 10000): char accuracy 91.15% padded
#: to 320, 91.10% to 160, 91.02% unpadded; 160 halves the work on a short word.
PAD_MIN_WIDTH = 160


@dataclass(frozen=True)
class PreparedLine:
    tensor: np.ndarray  # [3, 48, width] float32, BGR order, values in [-1, 1]
    width: int  # normalised width in pixels, before batch padding
    scale: float  # original width / normalised width: maps model columns back to the image
    #: the narrowest batch the line is read in: its model's minimum padded width (the accurate
    #: model's attention sees the padding, so explanations must pad exactly as inference did)
    pad_to: int = PAD_MIN_WIDTH
    #: time steps read past the content (its model's ``ModelSpec.tail_frames``): a tightly cropped word's last
    #: character peaks a frame beyond the last column it covers, and was cut off (``profit`` read ``profi``)
    tail_frames: int = 0
    #: decode at least this many steps (the accurate model's attention may put a squeezed word's last characters
    #: in the padding of its narrowest batch, where PaddleOCR decodes them too: ``ModelSpec.decode_padding``)
    min_steps: int = 0

    @property
    def steps(self) -> int:
        """CTC time steps decoded: those that carry image content, ``tail_frames`` more, at least ``min_steps``."""
        return max(max(1, math.ceil(self.width / STRIDE_X)) + self.tail_frames, self.min_steps)

    @property
    def padded_width(self) -> int:
        """The narrowest batch width that holds every decoded step of this line."""
        return max(self.pad_to, self.width + STRIDE_X * self.tail_frames, STRIDE_X * self.min_steps)


def input_width(h: int, w: int, height: int = INPUT_HEIGHT, max_width: int = MAX_WIDTH) -> int:
    """The width an ``h`` x ``w`` line image gets at the model's input height (aspect kept, capped)."""
    return min(max(int(math.ceil(height * w / max(h, 1))), MIN_WIDTH), max_width)


def input_columns(h: int, w: int, pad_to: int = PAD_MIN_WIDTH) -> int:
    """The input columns the network reads for such a line alone (padded to ``pad_to``): what it costs."""
    return max(pad_to, input_width(h, w))


def prepare_line(rgb: np.ndarray, height: int = INPUT_HEIGHT, max_width: int = MAX_WIDTH,
                 pad_to: int = PAD_MIN_WIDTH, tail_frames: int = 0, min_steps: int = 0) -> PreparedLine:
    """``rgb``: HxWx3 uint8. Aspect ratio kept; the width is capped at ``max_width``; ``pad_to``:
    the minimum batch width of the model that will read it; ``tail_frames``: its steps read past the content."""
    h, w = rgb.shape[:2]
    target_w = input_width(h, w, height, max_width)
    resized = cv2.resize(rgb, (target_w, height), interpolation=cv2.INTER_LINEAR if target_w > w else cv2.INTER_AREA)
    bgr = resized[:, :, ::-1].astype(np.float32)
    tensor = (bgr.transpose(2, 0, 1) / 127.5 - 1.0).astype(np.float32)
    return PreparedLine(np.ascontiguousarray(tensor), target_w, w / target_w, pad_to, tail_frames, min_steps)


def batch_array(lines: list[PreparedLine], pad_to: int | None = None) -> np.ndarray:
    """Stack prepared lines, zero-padding on the right to the widest with its tail frames (at least ``pad_to``;
    default: the lines' own ``pad_to``, their model's)."""
    if pad_to is None:
        pad_to = max(line.pad_to for line in lines)
    width = max(pad_to, max(line.padded_width for line in lines))
    width = int(math.ceil(width / STRIDE_X) * STRIDE_X)
    out = np.zeros((len(lines), 3, lines[0].tensor.shape[1], width), np.float32)
    for i, line in enumerate(lines):
        out[i, :, :, : line.width] = line.tensor
    return out


def batch_tensor(lines: list[PreparedLine], pad_to: int | None = None) -> "torch.Tensor":
    """``batch_array`` as a torch tensor (training and explanations; inference may run without torch)."""
    import torch

    return torch.from_numpy(batch_array(lines, pad_to))
