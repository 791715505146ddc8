"""Load, overload, timeout and soak checks with small budgets (the long runs: ``python -m benchmarks.loadtest``).

Assertions are on status codes and counts, never on latency. Servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import ast
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from demo.rest import create_api
from ocr.service import OCRService
from benchmarks.loadtest.runner import _bounded, mixed_plan, run_load, run_soak, soak_plan, soak_verdict
from benchmarks.loadtest.server import count_tree, sample_process, stale_files
from benchmarks.loadtest.stats import percentiles, summarize
from benchmarks.loadtest.workload import Example, Outcome, image_bytes, load_examples, rest_ocr
from tests.support import serve

ROOT = Path(__file__).resolve().parents[2]
OCR = "/api/v1/ocr"


@pytest.fixture(scope="module")
def line_example() -> Example:
    return load_examples(["line_zh"])[0]


class GatedPipeline:
    """A pipeline whose every read waits for ``release``: deterministic overload without model work."""

    def __init__(self, delay: float | None = None) -> None:
        import torch

        self.recognizer = SimpleNamespace(charset=SimpleNamespace(chars=["a"]), model=torch.nn.Identity(),
                                          uses_lm=lambda lm=None: bool(lm))
        self.delay = delay
        self.started = threading.Event()
        self.release = threading.Event()

    def run(self, image, preprocess=None, use_cache=True, model=None, lm=None):
        from ocr.pipeline import PageResult

        self.started.set()
        if self.delay is not None:
            time.sleep(self.delay)
        else:
            self.release.wait(60)
        return PageResult([], 10, 10)


def gated_api(pipeline: GatedPipeline, **kwargs):
    return create_api(OCRService(pipeline, weights_sha256="x"), **kwargs)


def post_ocr(url: str, data: bytes, timeout: float = 60) -> Outcome:
    with httpx.Client(timeout=timeout) as client:
        return rest_ocr(client, url, data)


# ---------------------------------------------------------------- figures


def test_percentiles_and_summary():
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}
    p = percentiles([i / 1000 for i in range(1, 101)])
    assert p["p50"] == pytest.approx(50.5) and p["p99"] == pytest.approx(99.01)
    outcomes = [Outcome("rest_ocr", "200", 0.1, 0), Outcome("rest_ocr", "503", 0.01, 0, "busy"),
                Outcome("gradio_ocr", "hang", 5, 0, json_body=False), Outcome("rest_ocr", "500", 0.2, 0, None, False)]
    s = summarize(outcomes, 2.0)
    assert s.by_status == {"200": 1, "500": 1, "503": 1, "hang": 1}
    assert s.unexpected == {"500": 1, "hang": 1} and s.hangs == 1
    assert s.refusal_codes == {"503 busy": 1} and s.non_json_errors == 1
    assert s.ok_per_second == 0.5 and s.answered_per_second == 1.5


def test_bounded_tells_a_sawtooth_from_a_leak():
    assert _bounded([100, 140, 100, 140, 100, 140, 100, 140])   # swept cache
    assert _bounded([10, 12, 14, 16, 16, 16, 16, 16])          # cache filling up to its cap, early
    assert not _bounded([100, 110, 120, 130, 140, 150, 160, 170])  # a leak


def test_plans_mix_endpoints_and_examples(line_example):
    pages = [Example("a", "page", line_example.rgb), Example("b", "page", line_example.rgb)]
    plan = mixed_plan(8, [("rest_ocr", 3), ("gradio_ocr", 1)], [line_example, *pages])
    assert [e for e, _ in plan] == ["rest_ocr"] * 3 + ["gradio_ocr"] + ["rest_ocr"] * 3 + ["gradio_ocr"]
    assert {x.name for _, x in plan} == {"line_zh", "a", "b"}
    soak = soak_plan(40, line_example, pages)
    counts = {e: sum(1 for x, _ in soak if x == e) for e in ("rest_ocr", "rest_explain", "gradio_ocr")}
    assert counts == {"rest_ocr": 31, "rest_explain": 4, "gradio_ocr": 5}
    assert {x.name for _, x in soak} == {"line_zh", "a"}  # one page per 20: the first page twice
    assert sum(1 for e, x in soak if x.kind == "page" and x.name == "line_zh") == 8


def test_every_request_gets_a_new_image(line_example):
    a, b = image_bytes(line_example, 1), image_bytes(line_example, 2)
    assert a != b and image_bytes(line_example, 1) == a
    from ocr.imageio import load_image

    x, y = load_image(a), load_image(b)
    assert x.shape == y.shape == line_example.rgb.shape
    assert (x != y).any(axis=2).sum() <= 2  # only the corner pixels that carry the serial


def test_count_tree_and_process_sample(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    (tmp_path / "g").write_text("y")
    assert count_tree(tmp_path) == (2, 1) and count_tree(tmp_path / "missing") == (0, 0)
    assert stale_files(tmp_path, 60) == 0 and stale_files(tmp_path, -1) == 2
    assert stale_files(tmp_path, -1, {str(tmp_path / "g")}) == 1
    s = sample_process(os.getpid(), 3, time.perf_counter(), tmp_path, None)
    assert s.requests == 3 and s.rss_mb > 10 and s.fds > 2 and s.temp_files == 2 and s.gradio_files == 0


# ---------------------------------------------------------------- overload and timeout


def test_overload_gets_503_json_then_service_recovers(line_example):
    """workers=1, queue=0: while one request holds the worker, every other one is refused at once."""
    gate = GatedPipeline()
    app = gated_api(gate, workers=1, queue=0)
    data = image_bytes(line_example, None)
    with serve(app) as (url, _):
        first: dict = {}
        t = threading.Thread(target=lambda: first.setdefault("o", post_ocr(url, data)))
        t.start()
        assert gate.started.wait(30)
        results: list[Outcome] = []
        excess = [threading.Thread(target=lambda: results.append(post_ocr(url, data)))
                  for _ in range(6)]
        for x in excess:
            x.start()
        for x in excess:
            x.join(60)
        assert [o.status for o in results] == ["503"] * 6
        assert all(o.code == "busy" and o.json_body and o.retry_after >= 1 for o in results)
        health = httpx.get(url + "/api/v1/health", timeout=10).json()
        assert health["busy"] is True and health["in_flight"] == 1
        gate.release.set()
        t.join(60)
        assert first["o"].status == "200"
        assert post_ocr(url, data).status == "200"  # recovered by itself
        assert app.state.limiter.admitted == 0


def test_small_load_on_a_tiny_limiter_sees_only_200_and_503(line_example):
    """4 clients x 12 requests against one worker and no queue: refusals are 503 JSON, never 500 or a hang."""
    app = gated_api(GatedPipeline(delay=0.3), workers=1, queue=0)
    with serve(app) as (url, _):
        plan = mixed_plan(12, [("rest_ocr", 1)], [Example("line", "page", line_example.rgb)])
        result = run_load(url, plan, clients=4, timeout=60, backoff=0, health_every=0.5)
    s = result.summary
    assert s.requests == 12 and set(s.by_status) <= {"200", "503"}, s.by_status
    assert s.unexpected == {} and s.hangs == 0 and s.non_json_errors == 0
    assert s.by_status.get("503", 0) >= 1 and s.by_status.get("200", 0) >= 1
    assert result.recovered == {"rest_ocr": "200"} and result.probe.failures == 0


def test_request_timeout_answers_504_and_keeps_the_slot_until_the_call_ends(line_example):
    gate = GatedPipeline()
    app = gated_api(gate, workers=1, queue=2, timeout_seconds=0.5)
    data = image_bytes(line_example, None)
    with TestClient(app) as c:
        r = c.post(OCR, files={"image": ("x.png", data, "image/png")})
        assert r.status_code == 504
        assert r.json() == {"success": False, "error": {"code": "timeout", "message": r.json()["error"]["message"]}}
        assert "0.5 s" in r.json()["error"]["message"]
        assert c.get("/api/v1/health").json()["in_flight"] == 1  # the abandoned call still runs
        gate.release.set()
        deadline = time.monotonic() + 30
        while app.state.limiter.admitted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.limiter.admitted == 0
        assert c.post(OCR, files={"image": ("x.png", data, "image/png")}).status_code == 200


def test_timeout_default_and_env(monkeypatch):
    assert create_api(OCRService(GatedPipeline(), weights_sha256="x")).state.limiter.timeout_seconds == 120
    monkeypatch.setenv("OCR_API_TIMEOUT", "0")
    assert create_api(OCRService(GatedPipeline(), weights_sha256="x")).state.limiter.timeout_seconds is None


def test_cache_ttl(monkeypatch):
    from demo.cache import cache_ttl

    monkeypatch.delenv("OCR_GRADIO_CACHE_TTL", raising=False)
    assert cache_ttl() == 3600
    monkeypatch.setenv("OCR_GRADIO_CACHE_TTL", "0")
    assert cache_ttl() is None


def test_sweep_deletes_old_files_but_keeps_examples(tmp_path):
    from demo.cache import sweep

    root = tmp_path / "gradio"
    paths = []
    for name in ("upload", "output", "example"):
        folder = root / f"hash-{name}"
        folder.mkdir(parents=True)
        (folder / f"{name}.png").write_bytes(b"x")
        paths.append(str(folder / f"{name}.png"))
    upload, output, example = paths
    blocks = SimpleNamespace(blocks={1: SimpleNamespace(keep_in_cache={example}), 2: SimpleNamespace()},
                             temp_file_sets=[{upload}, {output, example, str(root / "gone.png")}])
    assert sweep(blocks, age=60) == 0  # all fresh
    assert sweep(blocks, age=60, root=root, now=time.time() + 61) == 2
    assert not Path(upload).exists() and not Path(output).exists() and Path(example).exists()
    assert blocks.temp_file_sets == [set(), {example}]
    # the emptied folders go once they have stayed empty for the TTL; the example's stays
    sweep(blocks, age=60, root=root, now=time.time() + 61)
    assert sorted(p.name for p in root.iterdir()) == ["hash-example"]


def test_sweeper_keeps_working_while_events_write_files(tmp_path, monkeypatch):
    """Gradio's own delete_cache sweep dies on "Set changed size during iteration" under this load."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    import gradio as gr
    from fastapi import FastAPI

    import demo.cache
    from demo.cache import install_sweeper

    removed: list[int] = []
    real_sweep = demo.cache.sweep
    monkeypatch.setattr(demo.cache, "sweep", lambda *a: removed.append(real_sweep(*a)) or removed[-1])

    def outputs(_: str) -> list:
        return [np.random.default_rng().integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(6)]

    with gr.Blocks() as blocks:
        box = gr.Textbox()
        images = [gr.Image() for _ in range(6)]
        box.submit(outputs, box, images, api_name="f")
    blocks.queue(default_concurrency_limit=3)
    app = gr.mount_gradio_app(FastAPI(), blocks, path="/")
    install_sweeper(app, blocks, age=0.5, root=tmp_path)

    def files(older_than: float) -> int:
        now, count = time.time(), 0
        for folder, _, names in os.walk(tmp_path):
            for name in names:
                try:
                    count += now - os.lstat(os.path.join(folder, name)).st_ctime > older_than
                except FileNotFoundError:  # swept meanwhile
                    pass
        return count

    with TestClient(app) as client:
        def run_events() -> None:
            for _ in range(25):
                event = client.post("/gradio_api/call/f", json={"data": ["x"]}).json()["event_id"]
                client.get(f"/gradio_api/call/f/{event}")

        threads = [threading.Thread(target=run_events) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        deadline = time.monotonic() + 10
        while files(1.5) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert files(1.5) == 0, "files older than the TTL survived: the sweep stopped"
    assert sum(removed) >= 25, removed  # the events' pictures were written, then swept


def test_tune_malloc_sets_glibc_options_unless_the_environment_does(monkeypatch):
    import app

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(app.ctypes, "CDLL", lambda name: SimpleNamespace(mallopt=lambda *a: calls.append(a)))
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    app.tune_malloc()
    assert calls == [(app.M_ARENA_MAX, 2), (app.M_MMAP_THRESHOLD, 1 << 20)]
    calls.clear()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # glibc read it at start: leave it alone
    app.tune_malloc()
    assert calls == [(app.M_MMAP_THRESHOLD, 1 << 20)]


# ---------------------------------------------------------------- the real model


def test_health_counts_hooks_on_the_model(service, line_example):
    with TestClient(create_api(service)) as c:
        assert c.get("/api/v1/health").json()["model_hooks"] == 0
        handle = service.recognizer.model.register_forward_hook(lambda *a: None)
        try:
            assert c.get("/api/v1/health").json()["model_hooks"] == 1
        finally:
            handle.remove()
        r = c.post("/api/v1/explain", files={"image": ("x.png", image_bytes(line_example, 5), "image/png")},
                   data={"kind": "line", "methods": "gradcam,alignment"})
        assert r.status_code == 200, r.text
        assert c.get("/api/v1/health").json()["model_hooks"] == 0


def test_mini_soak_checks_hooks_and_samples(service, line_example, tmp_path):
    plan = [("rest_ocr", line_example), ("rest_explain", line_example)] * 4
    with serve(create_api(service)) as (url, _):
        result = run_soak(url, plan, lambda n, t0: sample_process(os.getpid(), n, t0, tmp_path, None),
                          sample_every=2, warmup=0.25)
    assert result.summary.by_status == {"200": 8}
    assert result.hook_checks == 4 and result.hooks_left == 0 and result.hooks_base == 0
    assert [s.requests for s in result.samples] == [0, 2, 4, 6, 8]
    verdict = soak_verdict(result)
    assert verdict.checks["no_hooks_left"] and verdict.checks["all_answered_200"]
    assert verdict.checks["no_temp_file_growth"]


# ---------------------------------------------------------------- the command


def test_cli_small_load_run_always_stops_its_server(tmp_path):
    """``python -m benchmarks.loadtest`` end to end: app.py as a child on loopback, REST + Gradio, 4 clients x 12."""
    from benchmarks.loadtest.__main__ import main

    out = tmp_path / "load.json"
    started = {}
    import benchmarks.loadtest.server as server_module

    original = server_module.AppServer.start

    def recording_start(self):
        result = original(self)
        started["pid"], started["dir"] = self.pid, self.workdir
        return result

    server_module.AppServer.start = recording_start
    try:
        code = main(["--clients", "4", "--requests", "12", "--examples", "line_zh", "--threads", "1",
                     "--backoff", "0", "--timeout", "120", "--no-report", "--json", str(out)])
    finally:
        server_module.AppServer.start = original
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["requests"] == 12 and summary["unexpected"] == {} and summary["hangs"] == 0
    assert set(summary["by_endpoint"]) == {"rest_ocr", "gradio_ocr"}
    assert report["recovered"] == {"gradio_ocr": "200", "rest_ocr": "200"}
    assert code == 0
    assert not Path(f"/proc/{started['pid']}").exists(), "the app outlived the run"
    assert not started["dir"].exists(), "the run's temp dir was left behind"


# ---------------------------------------------------------------- the report


def test_reliability_md_lists_every_security_test():
    tree = ast.parse((ROOT / "tests" / "demo" / "test_security.py").read_text())
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    text = (ROOT / "RELIABILITY.md").read_text(encoding="utf-8")
    missing = [n for n in names if f"`{n}`" not in text]
    assert names and not missing, f"RELIABILITY.md does not list: {missing}"
