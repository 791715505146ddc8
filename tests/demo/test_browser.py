"""End to end in a real browser: headless Chromium (Debian's, driven by Playwright) opens the app started
with ``python app.py``, uploads an example, sees the recognised text, opens the Explain tab and sees a
Grad-CAM heatmap. A screenshot goes to pytest's tmp dir (and, once, to docs/screenshot.png).

Needs ``pip install playwright`` (requirements-dev.txt) and ``apt-get install chromium`` (make install-dev);
skipped when either is missing. Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks.loadtest.server import AppServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
# a busy CPU (training next door) makes everything slow: generous waits, no timing assertions
STARTUP_S = 240
STEP_MS = 240_000

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-dev.txt)")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (make install-dev)")


@pytest.fixture(scope="module")
def app_url():
    """``python app.py`` in a subprocess (its own process group; the load test's launcher), stopped at the end."""
    with AppServer(threads=1, startup_timeout=STARTUP_S) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


def line_example() -> tuple[Path, str]:
    entries = [json.loads(line) for line in (EXAMPLES / "index.jsonl").read_text(encoding="utf-8").splitlines() if line]
    entry = next(e for e in entries if e["kind"] == "line")
    return EXAMPLES / entry["image"], entry["lines"][0]["text"]


def test_upload_read_and_explain(app_url, browser, tmp_path):
    path, truth = line_example()
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(STEP_MS)
    page.goto(app_url + "/", wait_until="domcontentloaded")

    # upload the example through the Image component's file input
    page.locator("#input-image input[type=file]").set_input_files(str(path))

    # the recognised text shows up in the result box
    box = page.locator("#result-text textarea")
    probe = "".join(ch for ch in truth if not ch.isascii())[:2]  # e.g. "价税" of "价税合计(小写)¥1,234.56"
    page.wait_for_function(
        "([sel, probe]) => { const t = document.querySelector(sel); return t && t.value && t.value.includes(probe); }",
        arg=["#result-text textarea", probe], timeout=STEP_MS)
    text = box.input_value()
    assert probe in text and any(ch.isdigit() for ch in text), text

    # Explain tab: selecting it explains line 1; wait for the Grad-CAM heatmap image
    page.get_by_role("tab", name="解释 Explain").click()
    heatmap = page.locator("#cam-line img")
    heatmap.first.wait_for(state="visible", timeout=STEP_MS)
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }",
        arg="#cam-line img", timeout=STEP_MS)
    assert page.locator("#alignment img").count() >= 1

    shot = tmp_path / "explain.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if not SCREENSHOT.exists():  # once, for the README
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOT)
    page.close()


def test_bad_upload_shows_a_message(app_url, browser, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)  # a PNG signature and nothing valid after it
    page = browser.new_page()
    page.set_default_timeout(STEP_MS)
    page.goto(app_url + "/", wait_until="domcontentloaded")
    page.locator("#input-image input[type=file]").set_input_files(str(bad))
    toast = page.get_by_text("Cannot process").or_(page.get_by_text("corrupt")).or_(page.get_by_text("not an image"))
    toast.first.wait_for(state="visible", timeout=STEP_MS)
    assert "Traceback" not in page.content()
    page.close()


def test_example_click_reads_it(app_url, browser):
    entries = [json.loads(line) for line in (EXAMPLES / "index.jsonl").read_text(encoding="utf-8").splitlines() if line]
    entry = next(e for e in entries if e["image"].startswith("receipt_en"))
    first_line = entry["lines"][0]["text"]
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    page.set_default_timeout(STEP_MS)
    page.goto(app_url + "/", wait_until="domcontentloaded")
    page.get_by_text(entry["description"]).first.click()
    probe = first_line.split()[0]
    page.wait_for_function(
        "([sel, probe]) => { const t = document.querySelector(sel); return t && t.value && t.value.includes(probe); }",
        arg=["#result-text textarea", probe], timeout=STEP_MS)
    page.close()
