"""``model="auto"``: every line read by the fast model, the unsure ones re-read by the accurate one.

    rec = Recognizer.load(model="auto")          # = CascadeRecognizer.load()
    line = rec.recognize_one("line.png")
    line.model, line.reread                      # "fast", False  or  "accurate", True

A line whose fast reading has a confidence below ``threshold`` is read again by the accurate
model, and that reading is kept. The threshold is the one chosen on the validation slice of
``../shared/train`` (``python -m training.choose_cascade``, written to
``ocr.recognize.cascade_choice``): the lowest that keeps every kind of text within 0.5 points of char
accuracy of the accurate model alone, on the whole slice and on each half of it (split by source page), so
the fewest lines pay for the accurate model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ocr.imageio import load_image
from ocr.recognize.cascade_choice import THRESHOLD
from ocr.recognize.charset import Charset
from ocr.recognize.plates import looks_like_plate
from ocr.results import LineResult

if TYPE_CHECKING:
    from ocr.recognize.recognizer import Recognizer


class CascadeRecognizer:
    """Two recognisers behaving as one (the interface of :class:`~ocr.recognize.recognizer.Recognizer`
    that reading and explaining use). Thread-safe as its two recognisers are."""

    model_name = "auto"

    def __init__(self, fast: "Recognizer", accurate: "Recognizer", threshold: float = THRESHOLD) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], not {threshold}")
        self.fast = fast
        self.accurate = accurate
        self.threshold = threshold

    @classmethod
    def load(cls, *, threshold: float = THRESHOLD, **kwargs: Any) -> "CascadeRecognizer":
        """Both recognisers, loaded as ``Recognizer.load(model=...)`` loads them (``kwargs`` go to both)."""
        from ocr.recognize.recognizer import Recognizer

        return cls(Recognizer.load(model="fast", **kwargs), Recognizer.load(model="accurate", **kwargs),  # type: ignore[arg-type]
                   threshold)

    @property
    def first_stage(self) -> "Recognizer":
        """The recogniser every line is read by first (the pipeline's page-orientation probe uses it)."""
        return self.fast

    @property
    def charset(self) -> Charset:
        """The accurate model's vocabulary: it contains every character of the fast one's."""
        return self.accurate.charset

    @property
    def engine_name(self) -> str:
        return self.fast.engine_name

    @property
    def model(self) -> Any:
        """The fast model's torch network (what a single-network view, e.g. the model card, shows)."""
        return self.fast.model

    @property
    def model_built(self) -> bool:
        return self.fast.model_built

    def for_model(self, name: str | None) -> "Recognizer":
        """The recogniser that produced a line marked ``model=name`` (explanations explain that one)."""
        if name in (None, "fast"):
            return self.fast
        if name == "accurate":
            return self.accurate
        raise ValueError(f"a cascade line comes from 'fast' or 'accurate', not {name!r}")

    def torch_models(self) -> list[Any]:
        return self.fast.torch_models() + self.accurate.torch_models()

    def unsure(self, results: Sequence[LineResult]) -> list[int]:
        """Indices of readings to re-read: fast, of a real image (width > 0), below the threshold or a licence
        plate (or one but for its province). A plate hangs on one character the fast model misreads
        confidently (a wrong province at 0.9); plates are short and rare, so re-reading them costs little."""
        return [i for i, r in enumerate(results)
                if r.model == "fast" and r.width > 0 and (r.confidence < self.threshold or looks_like_plate(r.text))]

    def uses_lm(self, lm: bool | None = None) -> bool:
        return self.fast.uses_lm(lm)

    def refine(self, images: Sequence[Any], results: list[LineResult], lm: bool | None = None) -> list[LineResult]:
        """``results`` (the fast model's, of ``images``) with the unsure lines re-read by the accurate model."""
        todo = self.unsure(results)
        out = list(results)
        if todo:
            for i, line in zip(todo, self.accurate.recognize([images[i] for i in todo], lm=lm)):
                line.reread = True
                out[i] = line
        return out

    def recognize(self, images: Sequence[Any], lm: bool | None = None) -> list[LineResult]:
        rgbs = [load_image(img) for img in images]  # decoded once for both models
        return self.refine(rgbs, self.fast.recognize(rgbs, lm=lm), lm=lm)

    def recognize_one(self, image: Any) -> LineResult:
        return self.recognize([image])[0]
