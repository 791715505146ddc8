"""Start the demo: ``python app.py`` serves the UI at / and the REST API at /api/v1 (docs at /docs).

Environment: ``PORT`` (default 7860), ``HOST`` (default 0.0.0.0), ``OCR_THREADS`` (torch threads),
``OCR_WARM_EXAMPLES=0`` to skip pre-reading the examples in the background; ``MALLOC_ARENA_MAX``
(2) and ``MALLOC_MMAP_THRESHOLD_`` (1 MB) tune glibc's allocator (``tune_malloc``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading

M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3  # glibc's mallopt parameters


def tune_malloc(arenas: int = 2, mmap_threshold: int = 1 << 20) -> None:
    """Keep glibc from holding on to freed memory (call before any thread starts).

    glibc gives threads their own arenas, up to 8 per core, and an arena keeps its peak size; and
    after big blocks are freed it raises its mmap threshold (up to 32 MB), so later page images and
    activations come from those arenas too. Under load RSS then climbs by steps long after warm-up
    (RELIABILITY.md). Two arenas and a fixed 1 MB threshold: big arrays go back to the system when
    freed. ``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_``, if set, win.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        if not os.environ.get("MALLOC_ARENA_MAX"):
            libc.mallopt(M_ARENA_MAX, arenas)
        if not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
            libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def main() -> int:
    tune_malloc()
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ocr.errors import OCRError

    threads = int(os.environ["OCR_THREADS"]) if os.environ.get("OCR_THREADS") else None
    try:
        from ocr.api import OCRService

        service = OCRService.load(threads=threads)
    except OCRError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one clear line, no traceback
        print(f"error: the OCR model could not be loaded ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return 1

    import uvicorn

    from demo.app import build_app, warm_examples

    app = build_app(service)
    if os.environ.get("OCR_WARM_EXAMPLES", "1") != "0":
        threading.Thread(target=warm_examples, args=(service,), name="warm-examples", daemon=True).start()
    host = os.environ.get("HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "7860"))
    print(f"Serving on http://{host}:{port}  (UI at /, REST API at /api/v1, docs at /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("UVICORN_LOG_LEVEL", "warning"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
