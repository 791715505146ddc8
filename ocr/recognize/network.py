"""The CRNN: a convolutional feature extractor, a 2-layer BiLSTM and a linear CTC head.

The CNN is the PP-OCRv6-tiny recogniser's backbone (PaddleOCR, Apache-2.0),
rebuilt as plain torch modules so its weights can be ported from ONNX
(``training.convert``) and explained with gradients. BatchNorm is folded into the
convolution biases, exactly as in the exported graph.

Kept free of training code: this module only defines the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from ocr.recognize.lineprep import INPUT_HEIGHT, STRIDE_X  # noqa: F401 (re-exported: the model's geometry)


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x)  # exact (erf) GELU, as in the ONNX graph


class SqueezeExcite(nn.Module):
    """Channel attention: global mean -> reduce -> ReLU -> expand -> hard sigmoid."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = F.hardsigmoid(self.expand(F.relu(self.reduce(s))))
        return x * s


class MixerBlock(nn.Module):
    """Depthwise 3x3 (optionally strided in height) + optional SE + GELU feed-forward.

    The feed-forward is residual only when it keeps the channel count.
    """

    def __init__(self, c_in: int, c_out: int, hidden: int, stride: tuple[int, int] = (1, 1),
                 se_reduced: int | None = None) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in)
        self.se = SqueezeExcite(c_in, se_reduced) if se_reduced else None
        self.ffn_in = nn.Conv2d(c_in, hidden, 1)
        self.ffn_out = nn.Conv2d(hidden, c_out, 1)
        self.residual = c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw(x)
        if self.se is not None:
            x = self.se(x)
        y = self.ffn_out(_gelu(self.ffn_in(x)))
        return x + y if self.residual else y


class Backbone(nn.Module):
    """Image [B,3,48,W] -> feature map [B,160,1,W//8]: height collapsed to one row."""

    out_channels = 160

    def __init__(self) -> None:
        super().__init__()
        self.stem1 = nn.Conv2d(3, 24, 3, stride=2, padding=1)
        self.stem2 = nn.Conv2d(24, 48, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(
            MixerBlock(48, 48, 96, se_reduced=12),
            MixerBlock(48, 48, 96),
            MixerBlock(48, 96, 96, stride=(2, 1)),
            MixerBlock(96, 96, 192, se_reduced=24),
            MixerBlock(96, 96, 192),
            MixerBlock(96, 160, 192, stride=(2, 1)),
            MixerBlock(160, 160, 320, se_reduced=40),
            MixerBlock(160, 160, 320),
            MixerBlock(160, 160, 320),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem2(_gelu(self.stem1(x)))
        x = self.blocks(x)
        return F.avg_pool2d(x, kernel_size=(3, 2), stride=(3, 2))


class SequenceNeck(nn.Module):
    """Per-column mixing of the feature sequence: 1x5 depthwise + pointwise, BN + hard-swish.

    Input and output [B,160,T].
    """

    def __init__(self, channels: int = 160) -> None:
        super().__init__()
        self.dw = nn.Conv1d(channels, channels, 5, padding=2, groups=channels, bias=False)
        self.bn1 = nn.BatchNorm1d(channels)
        self.pw = nn.Conv1d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.bn1(self.dw(x)))
        return F.hardswish(self.bn2(self.pw(x)))


@dataclass(frozen=True)
class CRNNConfig:
    num_classes: int = 6906
    lstm_hidden: int = 96
    lstm_layers: int = 2
    bottleneck: int = 80


class CRNN(nn.Module):
    """CNN -> BiLSTM -> linear CTC head. Output: logits [B, T, num_classes], blank = 0.

    The CTC head is linear in the concatenation of the CNN feature and the
    BiLSTM output, factored through an 80-d bottleneck to stay cheap. With the
    BiLSTM's projection at zero it reproduces the pretrained PP-OCRv6-tiny head
    exactly; training then teaches the BiLSTM what context adds.
    """

    #: tells loaders which network a weights file holds (saved in training checkpoints as "arch")
    arch = "crnn"

    def __init__(self, config: CRNNConfig = CRNNConfig()) -> None:
        super().__init__()
        self.config = config
        self.backbone = Backbone()
        self.neck = SequenceNeck(Backbone.out_channels)
        self.lstm = nn.LSTM(Backbone.out_channels, config.lstm_hidden, num_layers=config.lstm_layers,
                            bidirectional=True, batch_first=True)
        self.feature_proj = nn.Linear(Backbone.out_channels, config.bottleneck)
        self.context_proj = nn.Linear(2 * config.lstm_hidden, config.bottleneck, bias=False)
        self.classifier = nn.Linear(config.bottleneck, config.num_classes)
        nn.init.zeros_(self.context_proj.weight)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,48,W] -> CNN feature sequence [B,T,160]."""
        fmap = self.backbone(images).squeeze(2)
        return self.neck(fmap).transpose(1, 2)

    def context_is_inert(self) -> bool:
        """True while the BiLSTM cannot change the output: its projection is exactly zero."""
        return not bool(self.context_proj.weight.any())

    def head(self, seq: torch.Tensor) -> torch.Tensor:
        base = self.feature_proj(seq)
        if not self.training and self.context_is_inert():
            # An untrained BiLSTM (the start of training, and the shipped weights until a run
            # beats them) adds exactly zero; skipping it changes no output, only the cost.
            return self.classifier(base)
        context, _ = self.lstm(seq)
        return self.classifier(base + self.context_proj(context))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class PPOCRTinyRecognizer(nn.Module):
    """The unmodified PP-OCRv6-tiny recogniser (no BiLSTM): the parity reference
    for the converter, and the distillation start point. Output: probabilities."""

    def __init__(self, num_classes: int = 6906) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.neck = SequenceNeck(Backbone.out_channels)
        self.fc1 = nn.Linear(Backbone.out_channels, 80)
        self.fc2 = nn.Linear(80, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        seq = self.neck(self.backbone(images).squeeze(2)).transpose(1, 2)
        return self.fc2(self.fc1(seq)).softmax(-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
