"""The recognisers one process reads with, by name (``fast``, ``accurate``, ``auto``), each loaded on first use.

    models = Recognizers("auto", threads=1)
    models.get()            # the default: the cascade, made of ...
    models.get("fast")      # ... this recogniser and ...
    models.get("accurate")  # ... this one (one network of each kind in memory, never two)

The pipeline and the service read with ``models.get(request's model)``; a request for a model not
loaded yet pays its load once (an onnxruntime session: the torch network is built only when an
explanation asks for it).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ocr.engines import BuildOnce
from ocr.recognize.models import MODELS, check_model


class Recognizers:
    """Thread-safe: each model is built once even when requests ask for it at the same time."""

    def __init__(self, default: str = "fast", *, loaded: dict[str, Any] | None = None, **load_kwargs: Any) -> None:
        """``loaded``: recognisers already made, by name; ``load_kwargs`` go to ``Recognizer.load``."""
        self.default = check_model(default)
        self._load_kwargs = load_kwargs
        self._held: dict[str, BuildOnce[Any]] = {name: BuildOnce(build=partial(self._build, name)) for name in MODELS}
        for name, recognizer in (loaded or {}).items():
            self._held[check_model(name)] = BuildOnce(value=recognizer)

    @classmethod
    def of(cls, recognizer: Any, **load_kwargs: Any) -> "Recognizers":
        """Around one recogniser (its model the default); a cascade brings its two recognisers along."""
        name = getattr(recognizer, "model_name", "fast")
        loaded = {name: recognizer}
        if name == "auto":
            loaded.update(fast=recognizer.fast, accurate=recognizer.accurate)
        return cls(name, loaded=loaded, **load_kwargs)

    def _build(self, name: str) -> Any:
        if name == "auto":  # the cascade shares the single-model recognisers
            from ocr.recognize.cascade import CascadeRecognizer

            return CascadeRecognizer(self.get("fast"), self.get("accurate"))
        from ocr.recognize.recognizer import Recognizer

        return Recognizer.load(model=name, **self._load_kwargs)

    def get(self, name: str | None = None) -> Any:
        """The recogniser of ``name`` (None: the default), loaded now if it is not yet."""
        return self._held[check_model(name or self.default)].get()

    def torch_models(self) -> list[Any]:
        """The torch networks built so far, each once (explanations hook them)."""
        out: list[Any] = []
        for name in ("fast", "accurate"):
            holder = self._held[name]
            if holder.built:
                out += [m for m in holder.get().torch_models() if all(m is not o for o in out)]
        return out
