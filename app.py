"""Start the demo: ``python app.py`` serves the UI at / and the REST API at /api/v1 (docs at /docs).

settings -> service -> web app -> uvicorn. The environment is read once (``ocr.settings``:
``PORT``, ``HOST``, ``OCR_THREADS``, ``OCR_WARM_EXAMPLES`` ... one table there); a bad value or
unusable weights end the start with one line on stderr, never a traceback.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from typing import Any

M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3  # glibc's mallopt parameters


def tune_malloc(arenas: int = 2, mmap_threshold: int = 1 << 20) -> None:
    """Keep glibc from holding on to freed memory (call before any thread starts).

    glibc gives threads their own arenas, up to 8 per core, and an arena keeps its peak size; and
    after big blocks are freed it raises its mmap threshold (up to 32 MB), so later page images and
    activations come from those arenas too. Under load RSS then climbs by steps long after warm-up
    (RELIABILITY.md). Two arenas and a fixed 1 MB threshold: big arrays go back to the system when
    freed. ``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_``, if set, win (glibc read them at start).
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
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import explain
    from ocr.errors import OCRError
    from ocr.service import OCRService
    from ocr.settings import Settings

    try:
        settings = Settings.from_env()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # the model first: unusable weights end the start before the web frameworks are even imported
        service = OCRService.load(settings, explainer=explain)
    except OCRError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one clear line, no traceback
        print(f"error: the OCR model could not be loaded ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return 1

    from demo.app import build_app, warm_examples

    app = build_app(service, settings)
    if settings.warm_examples:
        threading.Thread(target=warm_examples, args=(service,), name="warm-examples", daemon=True).start()
    try:
        make_server(app, settings).run()
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down cleanly, then raised the signal again
        pass
    return 0


def make_server(app: Any, settings: Any) -> Any:
    """uvicorn's server for ``app`` on ``HOST``:``PORT``, saying "Serving on ..." only once it listens:
    a port in use ends the start with uvicorn's one error line, not after a false "Serving on"."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)  # a failed bind exits here
            print(f"Serving on http://{settings.host}:{settings.port}  (UI at /, REST API at /api/v1, docs at /docs)",
                  flush=True)

    return Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.uvicorn_log_level))


if __name__ == "__main__":
    sys.exit(main())
