"""The text detector: PP-OCRv6's DB (Differentiable Binarization) network as plain torch modules.

Rebuilt from the exported ONNX graphs (PaddleOCR, Apache-2.0) so their weights can
be ported (``training.convert_det``) and explained with gradients. BatchNorm is
folded into the convolution biases, as in the exported graphs. The ``tiny`` and
``small`` releases have the same topology (same ops in the same order) and differ
only in widths and the FPN smoothing kernel, so one network with a ``DetConfig``
covers both (``VARIANTS``).

    image [B,3,H,W] (H, W multiples of 32; BGR, (x/255 - mean) / std)
      -> backbone: PP-HGNet stem (stride 4) + four stages of the same
         depthwise/SE/GELU mixer blocks as the recogniser -> strides 4, 8, 16, 32
      -> neck (RSE-FPN): 1x1 laterals with residual squeeze-excite, top-down
         nearest-neighbour sum, per-level kxk depthwise + 1x1 + residual SE,
         all levels upsampled to stride 4 and concatenated
      -> DB head: 3x3 conv, two 2x2 transposed convs (stride 4 -> 1), sigmoid
      -> probability that a pixel lies inside a (shrunk) text region [B,1,H,W]

Kept free of conversion and post-processing code: this module only defines the network.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

# the torch-free definitions live in ocr.detect.config (the onnxruntime path never imports torch);
# re-exported here for the callers that take them from the network's module
from ocr.detect.config import VARIANTS, DetConfig  # noqa: F401
from ocr.recognize.network import MixerBlock


def _max_pool_2x2_same(x: torch.Tensor) -> torch.Tensor:
    """2x2 stride-1 max pool, 'SAME' padded at the bottom/right (padding never wins).

    In torch two shifted maxima: same values as ``F.max_pool2d`` on the padded map, ~10x faster on
    CPU. In an ONNX export one ``MaxPool`` node with asymmetric pads (ONNX pads never win either):
    onnxruntime ran the exported pad + four slices + two maxima in 4-11% of the small detector's
    int8 time at 800x800 / 736x1024, the same values in one kernel.
    """
    if torch.onnx.is_in_onnx_export():
        return _OnnxMaxPool2x2Same.apply(x)
    return _shifted_max_pool(x)


def _shifted_max_pool(x: torch.Tensor) -> torch.Tensor:
    x = F.pad(x, (0, 1, 0, 1), value=float("-inf"))
    x = torch.maximum(x[..., :-1], x[..., 1:])
    return torch.maximum(x[..., :-1, :], x[..., 1:, :])


class _OnnxMaxPool2x2Same(torch.autograd.Function):
    """Exports as ``MaxPool(kernel 2x2, stride 1, pads bottom/right)``; only ever run while exporting."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:  # the traced values (shape and dtype)
        return _shifted_max_pool(x)

    @staticmethod
    def symbolic(g: object, x: object) -> object:
        return g.op("MaxPool", x, kernel_shape_i=[2, 2], strides_i=[1, 1], pads_i=[0, 0, 1, 1])


class StemBlock(nn.Module):
    """PP-HGNet stem: [B,3,H,W] -> [B,c_out,H/4,W/4].

    3x3/2 conv, then a 2x2-conv branch and a 2x2 max-pool branch (both 'SAME'
    padded at the bottom/right), concatenated, 3x3/2 conv and 1x1 conv; ReLU after every conv.
    """

    def __init__(self, mid: int = 16, c_out: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, mid, 3, stride=2, padding=1)
        self.branch1 = nn.Conv2d(mid, mid // 2, 2)
        self.branch2 = nn.Conv2d(mid // 2, mid, 2)
        self.fuse = nn.Conv2d(2 * mid, mid, 3, stride=2, padding=1)
        self.proj = nn.Conv2d(mid, c_out, 1)

    @staticmethod
    def _same(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """A 2x2 stride-1 conv with ONNX's auto_pad SAME_UPPER (one zero row/column at the
        bottom/right): computed with padding 1 all round, minus the first row and column."""
        y = F.conv2d(x, conv.weight, conv.bias, padding=1)
        return y[:, :, 1:, 1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        branch = F.relu(self._same(self.branch2, F.relu(self._same(self.branch1, x))))
        pooled = _max_pool_2x2_same(x)
        x = F.relu(self.fuse(torch.cat([pooled, branch], dim=1)))
        return F.relu(self.proj(x))


def _stage(c_in: int, c_out: int, blocks: int, downsample: bool) -> nn.Sequential:
    """Optionally a strided block (no SE) changing the width, then ``blocks`` blocks
    alternating with and without SE; hidden width = 2x the block's input."""
    layers = [MixerBlock(c_in, c_out, 2 * c_in, stride=(2, 2))] if downsample else []
    layers += [MixerBlock(c_out, c_out, 2 * c_out, se_reduced=c_out // 4 if i % 2 == 0 else None)
               for i in range(blocks)]
    return nn.Sequential(*layers)


class DetBackbone(nn.Module):
    """Image -> feature maps at strides 4, 8, 16, 32 with ``config.widths`` channels."""

    def __init__(self, config: DetConfig = VARIANTS["tiny"]) -> None:
        super().__init__()
        w = config.widths
        self.out_channels = tuple(w)
        self.stem = StemBlock(config.stem, w[0])
        self.stage1 = _stage(w[0], w[0], 2, downsample=False)
        self.stage2 = _stage(w[0], w[1], 2, downsample=True)
        self.stage3 = _stage(w[1], w[2], 4, downsample=True)
        self.stage4 = _stage(w[2], w[3], 2, downsample=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c2 = self.stage1(self.stem(x))
        c3 = self.stage2(c2)
        c4 = self.stage3(c3)
        c5 = self.stage4(c4)
        return [c2, c3, c4, c5]


def _paddle_hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Paddle's hard sigmoid (slope 0.2, not torch's 1/6): clip(0.2 x + 0.5, 0, 1)."""
    return (0.2 * x + 0.5).clamp(0.0, 1.0)


class ResidualSE(nn.Module):
    """x + x * SE(x): global mean -> reduce /4 -> ReLU -> expand -> hard sigmoid (slope 0.2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // 4, 1)
        self.expand = nn.Conv2d(channels // 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = _paddle_hard_sigmoid(self.expand(F.relu(self.reduce(s))))
        return x + x * s


class Lateral(nn.Module):
    """A backbone level -> 64 channels: 1x1 conv (no bias) + residual SE."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.se = ResidualSE(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.conv(x))


class Smooth(nn.Module):
    """A fused level -> c_out channels: kxk depthwise, 1x1 conv (no bias), residual SE."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 5) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c_in, c_in, kernel, padding=kernel // 2, groups=c_in)
        self.pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.se = ResidualSE(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.pw(self.dw(x)))


class RSEFPN(nn.Module):
    """Feature pyramid -> one stride-4 map with ``channels`` channels (4 levels x channels / 4).

    ``lateral[i]`` / ``smooth[i]`` belong to level i (strides 4, 8, 16, 32).
    """

    def __init__(self, in_channels: tuple[int, ...] = VARIANTS["tiny"].widths, channels: int = 64,
                 kernel: int = 5) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(Lateral(c, channels) for c in in_channels)
        self.smooth = nn.ModuleList(Smooth(channels, channels // 4, kernel) for _ in in_channels)
        self.out_channels = channels

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        lat = [layer(f) for layer, f in zip(self.lateral, feats)]
        merged = [lat[3]]
        for level in (2, 1, 0):  # top-down: add the coarser level, upsampled x2 (nearest)
            merged.insert(0, lat[level] + F.interpolate(merged[0], scale_factor=2.0, mode="nearest"))
        outs = []
        for level, (layer, m) in enumerate(zip(self.smooth, merged)):
            p = layer(m)
            if level:
                p = F.interpolate(p, scale_factor=float(2 ** level), mode="nearest")
            outs.append(p)
        return torch.cat(outs[::-1], dim=1)  # coarsest first, as in the exported graph


class DBHead(nn.Module):
    """Stride-4 features -> text-probability logits at input resolution [B,1,H,W]."""

    def __init__(self, channels: int = 64, hidden: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, hidden, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(hidden, hidden, 2, stride=2)
        self.up2 = nn.ConvTranspose2d(hidden, 1, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        x = F.relu(self.up1(x))
        return self.up2(x)


class DetModel(nn.Module):
    """PP-OCRv6 text detector. [B,3,H,W] normalised BGR -> probability map [B,1,H,W] in [0,1]."""

    def __init__(self, config: DetConfig | str = "tiny") -> None:
        super().__init__()
        self.config = VARIANTS[config] if isinstance(config, str) else config
        c = self.config
        self.backbone = DetBackbone(c)
        self.neck = RSEFPN(self.backbone.out_channels, c.neck, c.smooth_kernel)
        self.head = DBHead(c.neck, c.neck // 4)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid map: better behaved than the probability for gradient explanations."""
        return self.head(self.neck(self.backbone(images)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(images))
