"""Start the demo: ``python app.py`` serves the UI at / and the REST API at /api/v1 (docs at /docs).

Environment: ``PORT`` (default 7860), ``HOST`` (default 0.0.0.0), ``OCR_THREADS`` (torch threads),
``OCR_WARM_EXAMPLES=0`` to skip pre-reading the examples in the background.
"""

from __future__ import annotations

import logging
import os
import sys
import threading


def main() -> int:
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
