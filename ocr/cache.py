"""The page-result cache: an LRU keyed by image content and settings, bounded in entries and in bytes.

A repeated example in the demo comes back at once, and results can never outlive the
weights they came from (the cache lives in the process, beside the loaded model). A cached
page keeps its image, every line crop and the preprocessing steps' pictures, ~8 MB for a
1000x700 invoice and hundreds of MB for a large photo, so the bytes are bounded, not only
the entries.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from ocr.results import PageResult

#: memory the result cache may hold unless told otherwise (``OCR_CACHE_MB``, ``ocr.settings``)
DEFAULT_CACHE_MB = 256


def _pixels_hash(rgb: np.ndarray) -> Any:
    # the array's own buffer, not ``tobytes()``: same digest without a copy of the page (100 MB at 35 MP)
    digest = hashlib.sha256(np.ascontiguousarray(rgb).data)
    digest.update(repr(rgb.shape).encode())
    return digest


def page_keys(rgb: np.ndarray, config: Any, options: dict) -> tuple[str, str]:
    """The page's pixels hashed once, two keys: its image digest (:func:`image_digest`, the key of its
    preprocessing steps) and its page key (:func:`page_key`, the key of its result)."""
    digest = _pixels_hash(rgb)
    image = digest.copy().hexdigest()
    digest.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    digest.update(json.dumps(options, sort_keys=True).encode())
    return image, digest.hexdigest()


def page_key(rgb: np.ndarray, config: Any, options: dict) -> str:
    """SHA-256 of the page's pixels, its shape, the preprocessing config and the run options."""
    return page_keys(rgb, config, options)[1]


def image_digest(rgb: np.ndarray) -> str:
    """SHA-256 of a page's pixels and shape: the key of its preprocessing steps (``Preprocessor.run``)."""
    return _pixels_hash(rgb).hexdigest()


def result_nbytes(result: PageResult) -> int:
    """Bytes of the arrays a cached result keeps alive, each buffer once, plus its full-size
    probability map (float32, made when the UI shows it): the cache's memory estimate."""
    buffers: dict[int, int] = {}

    def add(array: Any) -> None:
        if isinstance(array, np.ndarray):
            owner = array
            while isinstance(owner.base, np.ndarray):
                owner = owner.base
            buffers[id(owner)] = owner.nbytes

    add(result.image)
    add(result.processed)
    if result.preprocess is not None:
        add(result.preprocess.image)
        for step in result.preprocess.steps:
            add(step.image)
    for line in result.lines:
        add(line.crop)
    return sum(buffers.values()) + 4 * result.width * result.height


class ResultCache:
    """Thread-safe LRU of page results (or preprocessing steps); evicts the oldest until both bounds hold."""

    def __init__(self, entries: int = 64, max_bytes: int = DEFAULT_CACHE_MB * 2**20,
                 size_of: Callable[[Any], int] = result_nbytes) -> None:
        """``size_of``: the bytes an entry holds (page results by default; any value with its own measure)."""
        self.entries = entries
        self.max_bytes = max_bytes
        self.size_of = size_of
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def keys(self) -> list[str]:
        """Keys from the oldest to the most recently used."""
        with self._lock:
            return list(self._items)

    @property
    def nbytes(self) -> int:
        """Estimated bytes the cached results hold."""
        return self._total

    def get(self, key: str) -> Any:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: str, result: Any) -> None:
        """Cache ``result``; one too big for the whole budget is not kept."""
        size = self.size_of(result)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._total -= self._sizes[key]
            self._items[key] = result
            self._items.move_to_end(key)
            self._sizes[key] = size
            self._total += size
            while len(self._items) > self.entries or self._total > self.max_bytes:
                old, _ = self._items.popitem(last=False)
                self._total -= self._sizes.pop(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._sizes.clear()
            self._total = 0
