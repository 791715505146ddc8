"""What reading returns: a line's text with per-character evidence, and a page of such lines.

Plain data (numpy only), shared by the recogniser, the pipeline, the service and both web faces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ocr.decode import CharSpan

if TYPE_CHECKING:
    from ocr.preprocess import PreprocessResult


class LazyArray:
    """Dataclass field descriptor: holds an array, or a function that makes it on first read.

    A page's full-resolution probability map costs ~1.8 s and 140 MB for a 5000x7000 scan,
    and only the UI overlay reads it: the pipeline hands over a function instead.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_lazy_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> np.ndarray | None:
        if obj is None:
            return None  # the dataclass default
        value = getattr(obj, self.slot, None)
        if callable(value):
            value = value()
            setattr(obj, self.slot, value)
        return value

    def __set__(self, obj: Any, value: np.ndarray | Callable[[], np.ndarray] | None) -> None:
        setattr(obj, self.slot, value)


#: a character at or above this confidence is shown "sure" (green), below ``LOW_CONFIDENCE`` "unsure" (red);
#: how often each band is right: ``python -m benchmarks.calibration``
HIGH_CONFIDENCE = 0.9
LOW_CONFIDENCE = 0.7


@dataclass
class LineResult:
    text: str
    confidence: float
    chars: list[CharSpan] = field(default_factory=list)
    width: int = 0  # of the input image, pixels
    height: int = 0
    model: str = "fast"  # the network that produced this reading ("fast" or "accurate")
    reread: bool = False  # read by the fast model first, then re-read by the accurate one (model="auto")
    #: degrees the image was turned counter-clockwise before reading (90, 270: a vertical line or a word on its
    #: side); the characters' x ranges run along the turned image (``ocr.detect.geometry.rotate``)
    turned: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "model": self.model,
            "reread": self.reread,
            "turned": self.turned,
            "chars": [
                {"char": c.char, "confidence": round(c.confidence, 4), "t_start": c.t_start, "t_end": c.t_end,
                 "x_start": round(c.x_start, 1), "x_end": round(c.x_end, 1),
                 "candidates": [[ch, round(p, 4)] for ch, p in c.candidates]}
                for c in self.chars
            ],
        }


@dataclass
class PageChar:
    char: str
    confidence: float
    box: list[float]  # x1,y1,...,x4,y4 in page coordinates
    candidates: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class PageLine:
    box: list[float]  # x1,y1,x2,y2,x3,y3,x4,y4 clockwise from top-left, page coordinates
    text: str
    confidence: float
    chars: list[PageChar]
    crop: np.ndarray | None = None  # the rectified line image the recogniser read
    line_result: LineResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box],
            "text": self.text,
            "confidence": round(self.confidence, 4),
            **({"model": self.line_result.model, "reread": self.line_result.reread} if self.line_result else {}),
            "chars": [{"char": c.char, "confidence": round(c.confidence, 4), "box": [round(v, 1) for v in c.box],
                       "candidates": [[ch, round(p, 4)] for ch, p in c.candidates]} for c in self.chars],
        }


@dataclass
class PageResult:
    lines: list[PageLine]
    width: int
    height: int
    rotation: int = 0  # degrees the input was rotated (counter-clockwise) before reading
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    preprocess: PreprocessResult | None = None
    #: detector probability map over the input page, in [0, 1]; made on first read (``ocr.detect.LazyArray``)
    prob_map: np.ndarray | Callable[[], np.ndarray] | None = LazyArray()  # type: ignore[assignment]
    image: np.ndarray | None = None  # the input page (RGB); every box is in its coordinates
    processed: np.ndarray | None = None  # the page as the detector saw it (preprocessed, rotated)

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines if line.text)

    @property
    def confidence(self) -> float:
        chars = sum(len(ln.text) for ln in self.lines)
        if not chars:
            return 0.0
        return sum(ln.confidence * len(ln.text) for ln in self.lines) / chars

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(self.confidence, 4), "width": self.width,
                "height": self.height, "rotation": self.rotation,
                "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
                "lines": [line.to_dict() for line in self.lines]}
