"""A value made on first use, once: the torch networks behind onnxruntime engines.

Reading text runs on onnxruntime; only explanations need the torch models, so the
recogniser and the detector build theirs the first time one is asked for (and torch
is imported then, not at load). Threads may ask at the same time; one builds.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class BuildOnce(Generic[T]):
    """``value`` if given, else ``build()`` on the first ``get()``; ``build`` is dropped after."""

    def __init__(self, value: T | None = None, build: Callable[[], T] | None = None) -> None:
        if value is None and build is None:
            raise ValueError("BuildOnce needs a value or a build function")
        self._value = value
        self._build = build
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    assert self._build is not None
                    self._value = self._build()
                    self._build = None
        return self._value
