"""Settings: every environment variable parsed once; a bad value is one clear line, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ocr.settings import EXAMPLES_DIR, ROOT, WEIGHTS_DIR, Settings, SettingsError


def test_defaults_and_values():
    assert Settings.from_env({}) == Settings()
    s = Settings.from_env({"OCR_THREADS": "2", "PORT": "8080", "OCR_API_TIMEOUT": "0", "OCR_WARM_EXAMPLES": "0",
                           "LOG_LEVEL": "debug", "OCR_CACHE_MB": "64"})
    assert (s.threads, s.port, s.api_timeout, s.warm_examples, s.log_level) == (2, 8080, 0.0, False, "DEBUG")
    assert s.cache_bytes == 64 * 2**20
    assert Settings.from_env({"OCR_THREADS": " "}).threads is None  # blank: unset
    assert Settings().model == "auto" and Settings.from_env({"OCR_MODEL": "Fast"}).model == "fast"


@pytest.mark.parametrize("env, words", [
    ({"OCR_THREADS": "two"}, "OCR_THREADS='two' is not valid: give a whole number"),
    ({"OCR_THREADS": "0"}, "OCR_THREADS='0' is not valid: it must be at least 1"),
    ({"PORT": "-1"}, "PORT='-1'"),
    ({"PORT": "70000"}, "PORT='70000' is not valid: it must be at most 65535"),
    ({"OCR_API_TIMEOUT": "soon"}, "give a number"),
    ({"OCR_WARM_EXAMPLES": "maybe"}, "give 0 or 1"),
    ({"LOG_LEVEL": "LOUD"}, "choose one of"),
    ({"OCR_MODEL": "best"}, "OCR_MODEL='best' is not valid: choose one of fast, accurate, auto"),
])
def test_bad_values_are_one_clear_error(env, words):
    with pytest.raises(SettingsError, match="is not valid") as info:
        Settings.from_env(env)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_paths_are_the_repository_folders():
    assert (WEIGHTS_DIR / "charset.txt").exists() and (EXAMPLES_DIR / "index.jsonl").exists()
    assert ROOT == Path(__file__).resolve().parents[2]


def test_app_refuses_a_bad_ocr_threads_in_one_line():
    env = {**os.environ, "OCR_THREADS": "two", "OCR_WARM_EXAMPLES": "0"}
    proc = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: OCR_THREADS='two' is not valid: give a whole number"


def test_every_variable_is_a_documented_row():
    """The docstring table is the documentation: one row per field of the table."""
    import ocr.settings
    from dataclasses import fields

    for f in fields(Settings):
        assert f"| ``{f.metadata['env']}`` |" in ocr.settings.__doc__, f.metadata["env"]


def test_url_and_pdf_settings():
    s = Settings.from_env({"OCR_ALLOW_URLS": "1", "OCR_URL_ALLOW_HOSTS": "img.example.com,*.cdn.example.org",
                           "OCR_PDF_MAX_PAGES": "5", "OCR_PDF_MAX_SIDE": "1500", "OCR_PDF_MAX_DPI": "150",
                           "OCR_PDF_TIMEOUT": "0"})
    policy, limits = s.url_policy(), s.pdf_limits()
    assert policy.enabled and policy.allow_hosts == ("img.example.com", "*.cdn.example.org")
    assert (limits.max_pages, limits.max_side, limits.max_dpi, limits.timeout_s) == (5, 1500, 150.0, None)
    assert Settings().url_policy().enabled is False and Settings().pdf_limits().max_pages == 20
    with pytest.raises(SettingsError, match="OCR_URL_ALLOW_HOSTS"):  # at start, not at the first URL
        Settings.from_env({"OCR_URL_ALLOW_HOSTS": "https://img.example.com/"})
    with pytest.raises(SettingsError, match="OCR_PDF_MAX_PAGES='0'"):
        Settings.from_env({"OCR_PDF_MAX_PAGES": "0"})


def test_app_says_serving_only_once_it_listens(capsys):
    """A port in use ends the start with uvicorn's error, without a "Serving on" printed before it;
    a free port prints it once the server listens."""
    import app
    from starlette.applications import Starlette

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = Settings(host="127.0.0.1", port=taken.getsockname()[1])
        with pytest.raises(SystemExit):
            app.make_server(Starlette(), settings).run()
    assert "Serving on" not in capsys.readouterr().out
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = app.make_server(Starlette(), Settings(host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    server.should_exit = True
    thread.join(timeout=30)
    assert f"Serving on http://127.0.0.1:{port}" in capsys.readouterr().out
