"""What one simulated user sends: the example images (made unique per request) and the three calls.

Every request carries a new image by default (a corner pixel encodes a serial number) because
the pipeline answers a repeated image from its cache without any model work: a load test of
cache hits would measure nothing. The text read stays the same.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
from PIL import Image

from ocr.settings import EXAMPLES_DIR
EXPLAIN_METHODS = "gradcam,alignment"


@dataclass(frozen=True)
class Example:
    name: str
    kind: str  # "page" or "line", from examples/index.jsonl
    rgb: np.ndarray = field(repr=False)


def load_examples(names: list[str] | None = None, examples_dir: Path = EXAMPLES_DIR) -> list[Example]:
    """The examples of ``index.jsonl`` (all, or those whose file stem is in ``names``), decoded once."""
    out = []
    for raw in (examples_dir / "index.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(raw)
        path = examples_dir / entry["image"]
        if names is not None and path.stem not in names:
            continue
        with Image.open(path) as im:
            out.append(Example(path.stem, entry.get("kind", "page"), np.asarray(im.convert("RGB")).copy()))
    if not out:
        raise ValueError(f"no example matched {names}")
    return out


def image_bytes(example: Example, serial: int | None) -> bytes:
    """PNG of the example; with a serial, pixels (0,0) and (0,1) encode it, so the image is new."""
    rgb = example.rgb
    if serial is not None:
        rgb = rgb.copy()
        rgb[0, 0] = [(serial >> s) & 0xFF for s in (0, 8, 16)]
        rgb[0, 1] = [(serial >> s) & 0xFF for s in (24, 32, 40)]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@dataclass
class Outcome:
    """One logical request: its endpoint, final status and time. ``status`` is the HTTP status as
    text, or ``hang`` (no answer within the client timeout), ``conn_error``, ``event_error``
    (a Gradio event that ended in an error) or ``bad_body`` (200 without the expected JSON)."""

    endpoint: str
    status: str
    latency: float
    started: float
    code: str | None = None        # the error code (REST) or message start (Gradio) of a refusal
    json_body: bool = True         # False: an error answer that was not JSON
    retry_after: float | None = None


def _error_info(r: httpx.Response) -> tuple[str | None, bool]:
    try:
        body = r.json()
    except ValueError:
        return None, False
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("code"):
            return str(err["code"]), True
        if body.get("detail"):  # Gradio's own refusals, e.g. 503 "Queue is full"
            return str(body["detail"])[:40], True
    return None, False


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return float(r.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _finish(endpoint: str, started: float, r: httpx.Response, ok: Callable[[dict], bool]) -> Outcome:
    latency = time.perf_counter() - started
    if r.status_code == 200:
        try:
            good = ok(r.json())
        except ValueError:
            good = False
        return Outcome(endpoint, "200" if good else "bad_body", latency, started)
    code, is_json = _error_info(r)
    return Outcome(endpoint, str(r.status_code), latency, started, code, is_json, _retry_after(r))


def _guard(endpoint: str, call: Callable[[float], Outcome]) -> Outcome:
    """Run one call; a timeout is a hang, any other transport failure a connection error."""
    started = time.perf_counter()
    try:
        return call(started)
    except httpx.TimeoutException:
        return Outcome(endpoint, "hang", time.perf_counter() - started, started)
    except httpx.TransportError as exc:
        return Outcome(endpoint, "conn_error", time.perf_counter() - started, started, type(exc).__name__)


def rest_ocr(client: httpx.Client, url: str, data: bytes, kind: str = "page") -> Outcome:
    """POST /api/v1/ocr (multipart)."""
    def call(started: float) -> Outcome:
        r = client.post(f"{url}/api/v1/ocr", files={"image": ("image.png", data, "image/png")}, data={"kind": kind})
        return _finish("rest_ocr", started, r, lambda b: b.get("success") is True and isinstance(b.get("text"), str))
    return _guard("rest_ocr", call)


def rest_explain(client: httpx.Client, url: str, data: bytes, kind: str = "line") -> Outcome:
    """POST /api/v1/explain: Grad-CAM (hooks on the shared model) and the CTC alignment."""
    def call(started: float) -> Outcome:
        r = client.post(f"{url}/api/v1/explain", files={"image": ("image.png", data, "image/png")},
                        data={"kind": kind, "methods": EXPLAIN_METHODS})
        return _finish("rest_explain", started, r, lambda b: b.get("success") is True)
    return _guard("rest_explain", call)


def gradio_ocr(client: httpx.Client, url: str, data: bytes, timeout: float = 180.0) -> Outcome:
    """The UI's ``/ocr`` event over Gradio's HTTP API: upload, join the queue, read the event stream.

    The stream sends heartbeats, so a socket timeout alone would never fire on a stuck event:
    the whole call has its own deadline and counts as a hang past it.
    """
    def call(started: float) -> Outcome:
        deadline = started + timeout
        up = client.post(f"{url}/gradio_api/upload", files={"files": ("image.png", data, "image/png")})
        if up.status_code != 200:
            return _finish("gradio_ocr", started, up, lambda b: True)
        path = up.json()[0]
        joined = client.post(f"{url}/gradio_api/call/v2/ocr",
                             json={"image_value": {"path": path, "meta": {"_type": "gradio.FileData"}}})
        if joined.status_code != 200:
            return _finish("gradio_ocr", started, joined, lambda b: True)
        event_id = joined.json()["event_id"]
        event = None
        with client.stream("GET", f"{url}/gradio_api/call/ocr/{event_id}") as stream:
            for line in stream.iter_lines():
                if time.perf_counter() > deadline:
                    return Outcome("gradio_ocr", "hang", time.perf_counter() - started, started)
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    latency = time.perf_counter() - started
                    if event == "complete":
                        return Outcome("gradio_ocr", "200", latency, started)
                    return Outcome("gradio_ocr", "event_error", latency, started, line[5:].strip()[:40])
        return Outcome("gradio_ocr", "conn_error", time.perf_counter() - started, started, "stream ended")
    return _guard("gradio_ocr", call)


def make_call(endpoint: str, unique: bool = True, timeout: float = 180.0) -> Callable[..., Outcome]:
    """``run(client, url, example, serial) -> Outcome`` for one of :data:`ENDPOINTS`."""
    def run(client: httpx.Client, url: str, example: Example, serial: int) -> Outcome:
        data = image_bytes(example, serial if unique else None)
        if endpoint == "rest_ocr":
            return rest_ocr(client, url, data, example.kind)
        if endpoint == "rest_explain":
            return rest_explain(client, url, data, "line" if example.kind == "line" else "page")
        if endpoint == "gradio_ocr":
            return gradio_ocr(client, url, data, timeout)
        raise ValueError(f"unknown endpoint {endpoint}")
    return run


ENDPOINTS = ("rest_ocr", "rest_explain", "gradio_ocr")
