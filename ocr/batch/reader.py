"""The one thing a batch worker calls per page: a :class:`PageReader`, ``rgb -> REST answer dict``.

Every backend (process pool, Ray actors) builds its reader once per worker with a
:data:`ReaderFactory` and calls it for each page. The reader is ``OCRService.page_answer``, the
function ``POST /api/v1/ocr`` answers with, so a batch record is the REST answer by construction.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np


class PageReader(Protocol):
    """Reads one page: ``rgb`` is HxWx3 uint8; the answer is the REST API's JSON body for it."""

    def __call__(self, rgb: np.ndarray) -> dict[str, Any]: ...


#: builds a reader in a worker; must be picklable (a module-level function), since workers are
#: separate processes (spawned, or Ray actors) that load their own models
ReaderFactory = Callable[[], PageReader]


class ServiceReader:
    """The REST answer of ``POST /api/v1/ocr`` (kind page, no preprocessing options) for one page."""

    def __init__(self, service: Any, lm: bool | None = None) -> None:
        self.service = service
        self.lm = lm

    def __call__(self, rgb: np.ndarray) -> dict[str, Any]:
        # no result cache: a batch never reads the same page twice, and the cache would only hold memory
        return self.service.page_answer(rgb, use_cache=False, lm=self.lm)


def load_reader(threads: int = 1, model: str | None = None, lm: bool | None = None) -> PageReader:
    """The default factory: the service with one thread, since the batch runs one worker per core; ``model``:
    the recogniser (None: ``OCR_MODEL``); ``lm``: the language model on or off (None: the model's default)."""
    import cv2

    from ocr.service import OCRService

    cv2.setNumThreads(threads)
    return ServiceReader(OCRService.load(threads=threads, model=model), lm)


#: the keys of an answer that measure time, so differ between two reads of the same page
TIMING_KEYS = ("processing_time_ms", "timings_ms")
