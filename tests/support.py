"""Helpers shared by the tests that serve the real app or build image payloads."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from typing import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks.loadtest.server import free_port  # the one free-port helper

__all__ = ["free_port", "png_bytes", "serve"]


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@contextlib.contextmanager
def serve(app, startup_timeout: float = 120) -> Iterator[tuple[str, int]]:
    """``app`` under uvicorn on 127.0.0.1 (a free port) until the block ends; yields (url, port)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_timeout
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("the app did not start")
        yield url, port
    finally:
        server.should_exit = True
        thread.join(30)
