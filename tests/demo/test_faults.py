"""Faults: unusable weights stop the app with one clear line; a request that fails mid-way leaves the server
usable; a failing explanation never leaves hooks, frozen parameters, train mode or a held lock on the model."""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from demo.rest import create_api
from ocr.service import OCRService
from ocr.errors import ModelLoadError
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights" / "crnn.pt"
OCR = "/api/v1/ocr"
EXPLAIN = "/api/v1/explain"


def png_b64(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


# ---------------------------------------------------------------- unusable weights


def _run_app_with_weights(weights: Path) -> subprocess.CompletedProcess:
    """``python app.py`` with the recogniser's default weights path pointed elsewhere (app.py has no option)."""
    code = ("import runpy, sys; from pathlib import Path; import ocr.recognize.recognizer as r; "
            f"r.DEFAULT_WEIGHTS = Path({str(weights)!r}); sys.argv = ['app.py']; "
            "runpy.run_path('app.py', run_name='__main__')")
    env = {**os.environ, "PORT": str(free_port()), "HOST": "127.0.0.1", "OMP_NUM_THREADS": "1",
           "OCR_WARM_EXAMPLES": "0"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)


def _make_weights(kind: str, tmp_path: Path) -> Path:
    target = tmp_path / "crnn.pt"
    if kind == "missing":
        return target
    if kind == "garbage":
        target.write_bytes(b"definitely not a torch checkpoint\n" * 50)
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "truncated":
        data = WEIGHTS.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif kind == "directory":
        target.mkdir()
    elif kind == "checksum":  # one flipped byte, caught by SHA256SUMS beside the file
        data = bytearray(WEIGHTS.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        shutil.copy(ROOT / "weights" / "SHA256SUMS", tmp_path / "SHA256SUMS")
    elif kind == "wrong_state":  # a real torch file that is not our checkpoint
        torch.save({"config": {"bogus": 1}, "state_dict": {}}, target)
    return target


@pytest.mark.parametrize("kind", ["missing", "truncated", "checksum"])
def test_app_refuses_to_start_with_one_clear_line(tmp_path, kind):
    weights = _make_weights(kind, tmp_path)
    proc = _run_app_with_weights(weights)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in err and "Traceback" not in proc.stdout, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error:") and "crnn.pt" in err, err
    assert "Serving on" not in proc.stdout


@pytest.mark.parametrize("kind", ["missing", "garbage", "empty", "truncated", "directory", "checksum", "wrong_state"])
def test_load_crnn_raises_model_load_error(tmp_path, kind):
    from ocr.recognize.recognizer import Recognizer, load_crnn

    weights = _make_weights(kind, tmp_path)
    with pytest.raises(ModelLoadError) as info:
        load_crnn(weights)
    message = info.value.message
    assert "\n" not in message and "crnn.pt" in message
    with pytest.raises(ModelLoadError):
        Recognizer.load(weights, engine="torch")


def test_verify_checksum(tmp_path):
    from ocr.recognize.recognizer import verify_checksum

    good = tmp_path / "crnn.pt"
    shutil.copy(WEIGHTS, good)
    shutil.copy(ROOT / "weights" / "SHA256SUMS", tmp_path / "SHA256SUMS")
    verify_checksum(good)  # the real file matches its recorded checksum
    sub = tmp_path / "sub"
    sub.mkdir()
    bad = _make_weights("checksum", sub)
    with pytest.raises(ModelLoadError, match="corrupt"):
        verify_checksum(bad)


def test_service_load_wraps_model_errors(tmp_path, monkeypatch):
    import ocr.recognize.recognizer

    monkeypatch.setattr(ocr.recognize.recognizer, "DEFAULT_WEIGHTS", _make_weights("garbage", tmp_path))
    with pytest.raises(ModelLoadError):
        OCRService.load(threads=1)


# ---------------------------------------------------------------- a request failing mid-way


@pytest.fixture(scope="module")
def app(service):
    return create_api(service, workers=1, queue=4)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def line_image(latin_font) -> np.ndarray:
    from training.synth import render_text

    return render_text("Total 1234", latin_font, size=32).image


def fail_once(monkeypatch, obj, name: str, exc: Exception) -> list[int]:
    original = getattr(obj, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 1:
            raise exc
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapper)
    return calls


def assert_error_shape(r, lo: int, hi: int) -> dict:
    assert lo <= r.status_code < hi, (r.status_code, r.text)
    body = r.json()
    assert body["success"] is False and body["error"]["code"] and body["error"]["message"]
    assert "Traceback" not in r.text and "boom" not in r.text  # no internals leak to the client
    return body


@pytest.mark.parametrize("kind,target", [("page", "pipeline.run"), ("line", "recognizer.recognize")])
def test_failure_mid_request_then_next_succeeds(client, app, service, line_image, monkeypatch, kind, target):
    owner_name, method = target.split(".")
    calls = fail_once(monkeypatch, getattr(service, owner_name), method, RuntimeError("boom: mid-way"))
    payload = {"image_base64": png_b64(line_image), "kind": kind}
    body = assert_error_shape(client.post(OCR, json=payload), 500, 600)
    assert body["error"]["code"] == "internal_error"
    assert app.state.limiter.admitted == 0
    ok = client.post(OCR, json=payload)
    assert ok.status_code == 200, ok.text
    assert ok.json()["success"] is True and ok.json()["text"].strip()
    assert calls[0] == 2


def test_user_error_mid_request_is_4xx_then_next_succeeds(client, service, line_image, monkeypatch):
    from ocr.errors import InvalidImageError

    fail_once(monkeypatch, service.pipeline, "run", InvalidImageError("the image data is truncated"))
    payload = {"image_base64": png_b64(line_image)}
    assert_error_shape(client.post(OCR, json=payload), 400, 500)
    assert client.post(OCR, json=payload).status_code == 200


def test_worker_slot_released_after_failures(client, app, service, line_image, monkeypatch):
    """Failures never leak the single worker slot: more failures than workers + queue, then a success."""
    original = service.pipeline.run
    state = {"left": 8}

    def flaky(*args, **kwargs):
        if state["left"] > 0:
            state["left"] -= 1
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(service.pipeline, "run", flaky)
    payload = {"image_base64": png_b64(line_image)}
    for _ in range(8):
        assert_error_shape(client.post(OCR, json=payload), 500, 600)
    assert app.state.limiter.admitted == 0
    assert client.post(OCR, json=payload).status_code == 200


# ---------------------------------------------------------------- explanations failing mid-way


def model_state(model) -> tuple:
    return (model.training, tuple(p.requires_grad for p in model.parameters()))


def lock_is_free() -> bool:
    from explain.hooks import EXPLAIN_LOCK

    got = []
    t = threading.Thread(target=lambda: got.append(EXPLAIN_LOCK.acquire(timeout=2) and (EXPLAIN_LOCK.release() or True)))
    t.start()
    t.join()
    return bool(got and got[0])


def test_explain_failing_inside_gradcam_leaves_no_hooks(client, service, line_image, monkeypatch):
    import explain.gradcam
    from explain.hooks import count_hooks

    model = service.recognizer.model
    base_hooks, base_state = count_hooks(model), model_state(model)
    seen = {}
    original = explain.gradcam.GradCAMExplainer.maps

    def failing_maps(self, *args, **kwargs):
        seen["hooks_during"] = count_hooks(model)
        raise RuntimeError("boom inside gradcam")

    monkeypatch.setattr(explain.gradcam.GradCAMExplainer, "maps", failing_maps)
    payload = {"image_base64": png_b64(line_image), "kind": "line", "methods": ["gradcam"]}
    assert_error_shape(client.post(EXPLAIN, json=payload), 500, 600)
    assert seen["hooks_during"] > base_hooks, "the failure was not injected while hooks were attached"
    assert count_hooks(model) == base_hooks
    assert model_state(model) == base_state
    assert lock_is_free()

    monkeypatch.setattr(explain.gradcam.GradCAMExplainer, "maps", original)
    ok = client.post(EXPLAIN, json=payload)
    assert ok.status_code == 200, ok.text
    assert count_hooks(model) == base_hooks


@pytest.mark.parametrize("method", ["gradcam", "saliency"])
def test_explain_failing_in_model_forward_leaves_no_hooks(client, service, line_image, method):
    """The model itself raises during the explanation's (gradient-enabled) forward pass."""
    from explain.hooks import count_hooks

    model = service.recognizer.model
    base_hooks, base_state = count_hooks(model), model_state(model)
    original = type(model).forward
    fired = []

    def failing_forward(*args, **kwargs):
        if torch.is_grad_enabled():
            fired.append(count_hooks(model))
            raise RuntimeError("boom in forward")
        return original(model, *args, **kwargs)

    model.forward = failing_forward
    try:
        payload = {"image_base64": png_b64(line_image), "kind": "line", "methods": [method]}
        assert_error_shape(client.post(EXPLAIN, json=payload), 500, 600)
    finally:
        del model.forward
    assert fired, "the explanation never ran a gradient-enabled forward pass"
    assert count_hooks(model) == base_hooks
    assert model_state(model) == base_state
    assert lock_is_free()
    ok = client.post(EXPLAIN, json=payload)
    assert ok.status_code == 200, ok.text
    assert count_hooks(model) == base_hooks
