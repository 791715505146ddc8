"""The demo app: the Blocks UI builds, the combined FastAPI app serves UI + REST, gradio_client reads an
example through the named endpoint, and app.py fails cleanly without usable weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from difflib import SequenceMatcher
from pathlib import Path

import httpx
import pytest
from tests.support import free_port, serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def similar(a: str, b: str) -> float:
    norm = lambda s: "".join(s.split()).replace("（", "(").replace("）", ")").replace("：", ":")  # noqa: E731
    return SequenceMatcher(None, norm(a), norm(b)).ratio()


def example(kind: str = "line") -> tuple[Path, str]:
    entries = [json.loads(line) for line in (EXAMPLES / "index.jsonl").read_text(encoding="utf-8").splitlines() if line]
    entry = next(e for e in entries if e["kind"] == kind)
    return EXAMPLES / entry["image"], "\n".join(line["text"] for line in entry["lines"])


@pytest.fixture(scope="module")
def server(service):
    """The real combined app (REST + mounted Gradio) under uvicorn on a free local port."""
    from demo.app import build_app

    with serve(build_app(service)) as (url, _):
        yield url


def test_blocks_build(service):
    import gradio as gr

    from demo.ui import build_blocks

    blocks = build_blocks(service)
    assert isinstance(blocks, gr.Blocks)
    fns = list(blocks.fns.values()) if isinstance(blocks.fns, dict) else list(blocks.fns)
    named = {fn.api_name: fn for fn in fns if fn.api_name}
    assert {"ocr", "explain", "attribute_errors"} <= set(named)
    for name in ("ocr", "explain", "attribute_errors"):
        assert named[name].concurrency_id == "model"
    # tab labels are "中文\nEnglish" (two lines on a phone, one on a desktop)
    labels = json.dumps(blocks.get_config_file(), ensure_ascii=False, default=str).replace("\\n", " ")
    for label in ("识别结果 Result", "预处理 Preprocess", "解释 Explain", "模型 Model", "结果 Result"):
        assert label in labels


def test_modules_stay_free_of_gradio():
    code = ("import sys, ocr.service, ocr.pipeline, explain, demo.rest, demo.render, demo.model_info; "
            "assert 'gradio' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_ui_and_rest_share_one_server(server):
    page = httpx.get(server + "/", timeout=60)
    assert page.status_code == 200 and "gradio" in page.text.lower()
    docs = httpx.get(server + "/docs", timeout=30)
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # works offline
    assert httpx.get(server + "/docs-assets/swagger-ui-bundle.js", timeout=30).status_code == 200
    health = httpx.get(server + "/api/v1/health", timeout=30).json()
    assert health["model_loaded"] is True


def test_gradio_client_reads_an_example(server):
    from gradio_client import Client, handle_file

    path, truth = example("line")
    client = Client(server + "/", verbose=False)
    assert {"/ocr", "/explain"} <= set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    result = client.predict(handle_file(str(path)), api_name="/ocr")
    text = result[0]
    assert similar(text, truth) > 0.7, (text, truth)
    page_json = result[4]
    assert page_json["lines"] and page_json["lines"][0]["chars"]


def test_gradio_client_page_example_and_settings(server):
    from gradio_client import Client, handle_file

    path, truth = example("page")
    client = Client(server + "/", verbose=False)
    result = client.predict(handle_file(str(path)), "off", [], 7, 2.0, 11, 2, 0, api_name="/ocr")
    assert similar(result[0], truth) > 0.5
    assert result[1] and Path(result[1]).exists(), "no page picture with the lines"
    assert len(json.dumps(result[4], ensure_ascii=False)) < 60_000, "the JSON shown in the UI is the compact one"


def test_gradio_client_bad_upload_gets_a_clear_message(server, tmp_path):
    from gradio_client import Client, handle_file

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image at all" * 10)
    client = Client(server + "/", verbose=False)
    for name, data in (("notes.png", b"this is not an image at all" * 10), ("empty.png", b"")):
        bad = tmp_path / name
        bad.write_bytes(data)
        result = client.predict(handle_file(str(bad)), api_name="/ocr")
        message = result[11]["value"] if isinstance(result[11], dict) else result[11]
        assert "无法" in message and ("not an image" in message.lower() or "empty" in message.lower()), message
        assert "Traceback" not in message and "/tmp" not in message and str(tmp_path) not in message
        assert result[0] == "" and not result[1], "a failed read leaves no stale result"
    ok = client.predict(handle_file(str(example("line")[0])), api_name="/ocr")  # the app stays usable
    assert ok[0]


def test_gradio_client_explain(server, service):
    from gradio_client import Client, handle_file

    path, _ = example("line")
    client = Client(server + "/", verbose=False)
    out = client.predict(handle_file(str(path)), "auto", ["contrast", "deskew"], 7, 2.0, 11, 2, 0, "fast", False, 0, 0, [],
                         api_name="/explain")
    crop, cam_line, cam_char, align = out[:4]
    assert cam_line and Path(cam_line).exists()
    assert "Line 1" in out[5]
    assert cam_char and Path(cam_char).exists()
    assert align and Path(align).exists()


def test_gradio_client_bad_line_is_the_same_error_as_rest(server):
    """The UI picks lines through the service, like REST: no silent fallback to line 0; the service's
    message is shown in the Explain tab's notes (errors in one place), and nothing is explained."""
    from gradio_client import Client, handle_file

    path, _ = example("line")
    client = Client(server + "/", verbose=False)
    out = client.predict(handle_file(str(path)), "auto", ["contrast", "deskew"], 7, 2.0, 11, 2, 0, "fast", False, 99, 0, [],
                         api_name="/explain")
    note = out[5]["value"] if isinstance(out[5], dict) else out[5]
    assert "must be between 0 and 0" in note and "没有这一行" in note and "Traceback" not in note
    assert not (out[1].get("value") if isinstance(out[1], dict) else out[1])  # no Grad-CAM of another line


def _run_app_with_weights(weights: Path) -> subprocess.CompletedProcess:
    code = ("import runpy, sys; from pathlib import Path; import ocr.recognize.recognizer as r; "
            f"r.DEFAULT_WEIGHTS = Path({str(weights)!r}); sys.argv = ['app.py']; "
            "runpy.run_path('app.py', run_name='__main__')")
    env = {**os.environ, "PORT": str(free_port()), "OMP_NUM_THREADS": "1", "OCR_WARM_EXAMPLES": "0"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("corrupt", [False, True], ids=["missing", "corrupt"])
def test_app_exits_cleanly_without_usable_weights(tmp_path, corrupt):
    weights = tmp_path / "crnn.pt"
    if corrupt:
        weights.write_bytes(b"not a torch checkpoint" * 100)
    proc = _run_app_with_weights(weights)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error:") and "crnn.pt" in err


def test_gradio_client_error_and_preprocessing_attribution(server, service):
    from gradio_client import Client, handle_file

    path, truth = example("line")
    client = Client(server + "/", verbose=False)
    wrong = "X" + truth[1:]  # the first character differs from what the image shows
    md, evidence, table = client.predict(image_value=handle_file(str(path)), line=0, truth=wrong,
                                         api_name="/attribute_errors")
    assert "CER" in md and evidence and "right line" not in md
    md, _, _ = client.predict(image_value=handle_file(str(path)), line=0, truth="completely different words",
                              api_name="/attribute_errors")
    assert "Is this the right line?" in md
    rows = table["value"]["data"] if "value" in table else table["data"]
    assert any(row[0] == "substitute" for row in rows), rows
    md, table = client.predict(image_value=handle_file(str(path)), line=0, api_name="/attribute_preprocessing")
    rows = table["value"]["data"] if "value" in table else table["data"]
    assert {row[0] for row in rows} >= {"contrast", "deskew"}


def test_events_refuse_server_paths_that_were_not_uploaded(server):
    """Mounted Gradio does not check that a submitted file path was uploaded; the demo does."""
    cfg = httpx.get(server + "/config", timeout=30).json()
    dep = next(d for d in cfg["dependencies"] if d.get("api_name") == "ocr")
    base = server + "/gradio_api"
    for i, path in enumerate([str(ROOT / "docs" / "screenshot.png"), "/etc/hostname"]):
        session = f"path-check-{i}"
        payload = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "auto", ["contrast", "deskew"],
                            7, 2.0, 11, 2, 0, "fast", False],
                   "fn_index": dep["id"], "session_hash": session, "event_data": None, "trigger_id": None}
        assert httpx.post(base + "/queue/join", json=payload, timeout=30).status_code == 200
        done = None
        with httpx.stream("GET", base + "/queue/data", params={"session_hash": session}, timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        done = msg
                        break
        assert done is not None and done["success"] is False, done
        assert "not uploaded" in json.dumps(done["output"], ensure_ascii=False)


def test_model_switch_starts_at_the_default_and_its_choice_reaches_the_service(service):
    """The Fast / Auto / Accurate switch starts at the service's default model, and the model picked
    there is the one the service reads with."""
    from demo.ui import build_blocks
    from ocr.service import OCRService

    class Recording(OCRService):
        asked: list = []

        def ocr(self, image, *, preprocess=None, kind="page", model=None, use_cache=True, lm=None):
            self.asked.append(model)
            return super().ocr(image, preprocess=preprocess, kind=kind, model=model, use_cache=use_cache, lm=lm)

    blocks = build_blocks(Recording(service.pipeline, explainer=service.explainer))
    config = blocks.get_config_file()
    switch = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "model-switch")
    assert switch["props"]["value"] == service.default_model
    fns = list(blocks.fns.values()) if isinstance(blocks.fns, dict) else list(blocks.fns)
    read = next(fn for fn in fns if fn.api_name == "ocr")
    path, _ = example("line")
    out = read.fn(str(path), "auto", ["contrast", "deskew"], 7, 2.0, 11, 2, 0, "accurate", False)
    assert Recording.asked[-1] == "accurate" and any(isinstance(v, str) and v.strip() for v in out.values())


def test_clicking_a_key_field_outlines_it_and_picks_its_line(service):
    """The Fields panel: a click on a field draws where it was read (green) and picks its line for Explain."""
    from types import SimpleNamespace

    import numpy as np

    from demo.ui import build_blocks

    blocks = build_blocks(service)
    fns = list(blocks.fns.values()) if isinstance(blocks.fns, dict) else list(blocks.fns)
    pick = next(fn for fn in fns if getattr(fn.fn, "__name__", "") == "pick_field").fn
    settings = ("auto", ["contrast", "deskew"], 7, 2.0, 11, 2, 0, "fast", False)
    path = str(EXAMPLES / "invoice_zh.png")
    out = pick(path, *settings, evt=SimpleNamespace(index=[0, 1]))
    pictures = [v for v in out.values() if isinstance(v, np.ndarray)]
    assert len(pictures) == 1
    green = (pictures[0][..., 0] == 0) & (pictures[0][..., 1] == 170) & (pictures[0][..., 2] == 60)
    assert green.sum() > 50  # the field's boxes are outlined
    picked = [v["value"] for v in out.values() if isinstance(v, dict) and isinstance(v.get("value"), int)]
    assert picked and picked[0] >= 0
    nothing = pick(path, *settings, evt=SimpleNamespace(index=[999, 0]))
    assert not any(isinstance(v, np.ndarray) for v in nothing.values())


def test_a_pdf_upload_puts_each_picked_page_into_the_image_input(service, tmp_path):
    """The PDF picker: a two-page PDF shows its first page and a picker of 2 pages; picking page 2
    renders that page; a file that is not a PDF at all gets one clear message, no server path."""
    import io

    import numpy as np
    from gradio.utils import get_upload_folder
    from PIL import Image

    from demo.ui import build_blocks

    blocks = build_blocks(service)
    fns = {getattr(fn.fn, "__name__", ""): fn.fn for fn in
           (blocks.fns.values() if isinstance(blocks.fns, dict) else blocks.fns)}
    red, blue = Image.new("RGB", (300, 200), (220, 20, 20)), Image.new("RGB", (300, 200), (20, 20, 220))
    buf = io.BytesIO()
    red.save(buf, format="PDF", save_all=True, append_images=[blue], resolution=100.0)
    upload = Path(get_upload_folder()) / "pdf-picker-test" / "two.pdf"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(buf.getvalue())

    first = fns["document_uploaded"]({"path": str(upload)})
    page_one = next(v for v in first.values() if isinstance(v, np.ndarray))
    picker = next(v for v in first.values() if isinstance(v, dict) and "maximum" in v)
    assert picker["maximum"] == 2 and picker["value"] == 1 and picker["visible"] is True
    assert page_one[..., 0].mean() > 150 > page_one[..., 2].mean()  # the red page
    second = fns["document_page"]({"path": str(upload)}, 2)
    page_two = next(v for v in second.values() if isinstance(v, np.ndarray))
    assert page_two[..., 2].mean() > 150 > page_two[..., 0].mean()  # the blue page

    broken = upload.with_name("broken.pdf")
    broken.write_bytes(b"%PDF-1.4\n%%EOF\n")
    refused = fns["document_uploaded"]({"path": str(broken)})
    message = json.dumps(list(refused.values()), ensure_ascii=False, default=str)
    assert "PDF" in message and str(broken.parent) not in message
    # the previous page goes (its reading is cleared with it) and so does the picker: nothing stale stays shown
    assert None in refused.values()
    assert any(isinstance(v, dict) and v.get("visible") is False for v in refused.values())


def test_model_summary_describes_one_network_and_says_what_rereads(service):
    """With the default (auto) the Model tab's parameters and charset are the first-stage network's, together."""
    from demo.model_info import summary_markdown

    text = summary_markdown(service)
    first = service.recognizer.first_stage
    assert f"**{len(first.charset):,}** characters" in text and f"**{sum(p.numel() for p in first.model.parameters()):,}**" in text
    assert f"{len(service.recognizer.accurate.charset):,} characters" in text and "re-read" in text
    assert "licence plate" in text  # auto re-reads plates however sure (ocr.recognize.cascade)
    # the decoding as it is set: the language model's weight and the word list's margin of the first-stage network
    assert f"weight {first.lm_weight:g}" in text and f"margin {first.lexicon_margin:g} nats" in text


def test_a_multi_page_tiff_is_a_document_in_the_ui(service):
    """The document box takes TIFFs: a 3-page TIFF shows page 1 and a picker of 3, picking page 3 shows it; a
    single-page TIFF has no picker. Dropped on the image input instead, page 1 is read and the status says the
    other pages were not (it used to drop them silently)."""
    import numpy as np
    from gradio.utils import get_upload_folder
    from PIL import Image

    from demo.ui import build_blocks
    from tests.ocr.test_tiff import tiff_bytes

    blocks = build_blocks(service)
    fns = {getattr(fn.fn, "__name__", ""): fn.fn for fn in
           (blocks.fns.values() if isinstance(blocks.fns, dict) else blocks.fns)}
    box = next(c for c in blocks.get_config_file()["components"] if c.get("props", {}).get("elem_id") == "doc-upload")
    assert {".pdf", ".tif", ".tiff"} <= set(box["props"]["file_types"])
    folder = Path(get_upload_folder()) / "tiff-picker-test"
    folder.mkdir(parents=True, exist_ok=True)
    fax, one = folder / "fax.tif", folder / "one.tiff"
    colours = [(220, 20, 20), (20, 220, 20), (20, 20, 220)]
    fax.write_bytes(tiff_bytes([Image.new("RGB", (300, 200), c) for c in colours]))
    one.write_bytes(tiff_bytes([Image.new("RGB", (300, 200), colours[0])]))

    def shown(out: dict) -> tuple[np.ndarray, dict]:
        return (next(v for v in out.values() if isinstance(v, np.ndarray)),
                next(v for v in out.values() if isinstance(v, dict) and "maximum" in v))

    page_one, picker = shown(fns["document_uploaded"]({"path": str(fax)}))
    assert picker["maximum"] == 3 and picker["value"] == 1 and picker["visible"] is True
    assert tuple(page_one[0, 0]) == colours[0]
    page_three, picker = shown(fns["document_page"]({"path": str(fax)}, 3))
    assert tuple(page_three[0, 0]) == colours[2] and picker["value"] == 3
    alone, picker = shown(fns["document_uploaded"]({"path": str(one)}))
    assert tuple(alone[0, 0]) == colours[0] and picker["visible"] is False

    settings = ("auto", ["contrast", "deskew"], 7, 2.0, 11, 2, 0, "fast", False)
    status = lambda out: next(v for k, v in out.items() if getattr(k, "elem_id", None) == "status")  # noqa: E731
    noted = status(fns["read_image"]({"path": str(fax)}, *settings))
    assert noted["visible"] is True and "This file has 3 pages and only page 1 was read" in noted["value"]
    assert "PDF / TIFF" in noted["value"] and str(folder) not in noted["value"]
    assert "pages" not in status(fns["read_image"]({"path": str(one)}, *settings))["value"]


def test_a_damaged_page_keeps_the_page_picker(service):
    """Page 2 of 3 over the pixel limit: picking it says why and empties the image, but the picker stays, so
    page 3 can still be read (it used to vanish with the refused page)."""
    from gradio.utils import get_upload_folder
    from PIL import Image

    from demo.ui import build_blocks
    from tests.ocr.test_tiff import tiff_bytes

    blocks = build_blocks(service)
    fns = {getattr(fn.fn, "__name__", ""): fn.fn for fn in
           (blocks.fns.values() if isinstance(blocks.fns, dict) else blocks.fns)}
    folder = Path(get_upload_folder()) / "damaged-page-test"
    folder.mkdir(parents=True, exist_ok=True)
    fax = folder / "fax.tif"
    fax.write_bytes(tiff_bytes([Image.new("RGB", (300, 200), "red"), Image.new("1", (8000, 6000), 1),
                                Image.new("RGB", (300, 200), "blue")]))
    out = {getattr(k, "elem_id", None) or k: v for k, v in fns["document_page"]({"path": str(fax)}, 2).items()}
    assert out["status"]["visible"] is True and "page 2" in out["status"]["value"].lower()
    assert str(folder) not in out["status"]["value"] and "other pages can still be picked" in out["status"]["value"]
    picker = next(v for v in out.values() if isinstance(v, dict) and "maximum" in v)
    assert picker["visible"] is True and picker["value"] == 2 and picker["maximum"] == 3
    assert any(v is None for v in out.values())  # the previous page's image is emptied
    page_three = next(v for v in fns["document_page"]({"path": str(fax)}, 3).values() if hasattr(v, "shape"))
    assert tuple(page_three[0, 0]) == (0, 0, 255)


def test_the_default_character_to_explain_is_never_a_space():
    """The least confident character was often a space, so Explain opened on a map of a gap (black-box pass)."""
    from types import SimpleNamespace

    from demo import handlers

    chars = [SimpleNamespace(char=c, confidence=p) for c, p in (("A", 0.9), (" ", 0.3), ("B", 0.6), ("C", 0.95))]
    assert handlers._least_confident(SimpleNamespace(chars=chars)) == 2
    spaces = [SimpleNamespace(char=" ", confidence=0.5)] * 2
    assert handlers._least_confident(SimpleNamespace(chars=spaces)) == 0
    assert handlers._least_confident(SimpleNamespace(chars=[])) is None
    line = SimpleNamespace(chars=chars)
    labels = [label for label, _ in handlers.char_choices(SimpleNamespace(lines=[line]), 0)]
    assert labels[2] == "2: ␣  (30%)" and labels[1] == "1: A  (90%)"


def test_preprocessing_controls_grey_out_when_it_is_off_and_examples_have_captions():
    from types import SimpleNamespace

    from demo import handlers
    from demo.ui import load_examples

    ui = SimpleNamespace(prep_controls=["steps", "h", "clip", "block", "c", "angle"])
    off, auto, manual = (handlers.mode_controls(None, ui, mode) for mode in ("off", "auto", "manual"))
    assert len(off) == 6 and all(u["interactive"] is False for u in off.values())
    assert all(u["interactive"] is True for u in [*auto.values(), *manual.values()])
    paths, captions = load_examples()
    assert len(paths) == len(captions) >= 9 and "模糊 blur" in captions
    assert all(len(c) <= 10 for c in captions)  # they fit under a thumbnail
    picked = type("Select", (), {"value": {"image": {"path": paths[1][0]}, "caption": captions[1]}})()
    assert handlers.example_picked(picked) == paths[1][0]
