"""The demo app: the REST API's FastAPI app with the Gradio UI mounted on it at ``/``.

    app = build_app(service, settings)     # /api/v1/* (docs at /docs) and the UI at /
    uvicorn.run(app, host=settings.host, port=settings.port)

This package is the only place web frameworks are imported; the model work is
``ocr.service.OCRService``'s, the same for the UI (``demo.ui``) and REST (``demo.rest``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gradio as gr

from demo.cache import cache_ttl, install_sweeper
from demo.http_input import MAX_IMAGE_BYTES
from demo.rest import create_api
from demo.ui import CSS, build_blocks, load_examples
from ocr.imageio import load_image
from ocr.service import OCRService
from ocr.settings import EXAMPLES_DIR, Settings

log = logging.getLogger("demo")


def build_app(service: OCRService, settings: Settings | None = None, *, examples_dir: Path = EXAMPLES_DIR) -> Any:
    """One FastAPI app: REST routes (``/api/v1/*``, docs at ``/docs``) + the Gradio UI mounted at ``/``."""
    settings = settings or Settings.from_env()
    api = create_api(service, settings=settings)
    blocks = build_blocks(service, examples_dir=examples_dir)
    # A short queue: past it Gradio answers 503 "Queue is full" at once. With 32 places, the last of 32
    # users waited over 3 minutes on 2 cores (RELIABILITY.md); 8 keeps the worst wait near a minute.
    blocks.queue(default_concurrency_limit=settings.ui_concurrency, max_size=settings.ui_queue)
    # Gradio keeps each session's copy of the UI state (about 0.25 MB here) until 10,000 sessions;
    # every API call is a new session. OCR_UI_SESSIONS (1000) bounds that memory (read when mounting).
    blocks.state_session_capacity = settings.ui_sessions
    ttl = cache_ttl(settings)
    if ttl:  # demo/cache.py sweeps instead: Gradio's own delete_cache task dies under load
        blocks.delete_cache = None
    app = gr.mount_gradio_app(api, blocks, path="/", theme=gr.themes.Soft(primary_hue="indigo"), css=CSS,
                              max_file_size=MAX_IMAGE_BYTES, show_error=True, footer_links=["api", "gradio"],
                              allowed_paths=[str(examples_dir)])
    # Gradio checks that a file path submitted to an event was uploaded by a user only once the
    # Blocks "has launched", which mount_gradio_app never sets: without this, an API client could
    # name any file on the server and have Gradio copy it into its cache for the event.
    blocks.has_launched = True
    if ttl:
        from gradio.utils import get_upload_folder

        install_sweeper(app, blocks, ttl, Path(get_upload_folder()))
    return app


def warm_examples(service: OCRService, examples_dir: Path = EXAMPLES_DIR) -> None:
    """Read every example once (default settings) so clicking one answers from the pipeline's cache."""
    examples, _ = load_examples(examples_dir)
    started = time.perf_counter()
    for (path,) in examples:
        try:
            service.ocr(load_image(Path(path)))
        except Exception:  # noqa: BLE001 - warming is best effort
            log.warning("could not pre-read example %s", path, exc_info=True)
    log.info("pre-read %d examples in %.1f s", len(examples), time.perf_counter() - started)
