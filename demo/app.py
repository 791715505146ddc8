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
from demo.ui import CSS, JS, build_blocks, load_examples
from ocr.imageio import load_image
from ocr.service import OCRService
from ocr.settings import EXAMPLES_DIR, Settings

log = logging.getLogger("demo")


DOCS_ASSETS = "/docs-assets"


def serve_docs_offline(api: Any) -> None:
    """``/docs`` with Swagger UI's files served by the app (no CDN: the page works offline).

    The files come from the ``swagger-ui-py`` package (Swagger UI 5, which reads the OpenAPI 3.1
    FastAPI writes; ``swagger-ui-bundle`` ships 4.15, which cannot)."""
    import swagger_ui
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    api.router.routes = [r for r in api.router.routes if getattr(r, "path", None) != api.docs_url]
    api.mount(DOCS_ASSETS, StaticFiles(directory=Path(swagger_ui.__file__).parent / "static"), name="docs-assets")

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=api.openapi_url, title=f"{api.title} — API docs",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")

    api.add_api_route("/docs", docs, include_in_schema=False, response_class=HTMLResponse)


def build_app(service: OCRService, settings: Settings | None = None, *, examples_dir: Path = EXAMPLES_DIR) -> Any:
    """One FastAPI app: REST routes (``/api/v1/*``, docs at ``/docs``) + the Gradio UI mounted at ``/``."""
    settings = settings or Settings.from_env()
    api = create_api(service, settings=settings)
    serve_docs_offline(api)
    blocks = build_blocks(service, examples_dir=examples_dir)
    # Past the queue Gradio answers "Queue is full" at once. A cached or single-line read now answers in
    # well under a second (the UI renders each page result once), so 64 places (OCR_UI_QUEUE) serve a
    # burst of clicks, each shown its place; uncached pages (~1-2 s each on 2 cores) bound the worst wait.
    blocks.queue(default_concurrency_limit=settings.ui_concurrency, max_size=settings.ui_queue)
    # Gradio keeps each session's copy of the UI state (about 0.25 MB here) until 10,000 sessions;
    # every API call is a new session. OCR_UI_SESSIONS (1000) bounds that memory (read when mounting).
    blocks.state_session_capacity = settings.ui_sessions
    ttl = cache_ttl(settings)
    if ttl:  # demo/cache.py sweeps instead: Gradio's own delete_cache task dies under load
        blocks.delete_cache = None
    app = gr.mount_gradio_app(api, blocks, path="/", theme=gr.themes.Soft(primary_hue="indigo"), css=CSS, js=JS,
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
