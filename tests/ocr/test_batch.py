"""python -m ocr batch: inputs, records (= the REST answer), errors, resume, Ctrl-C, workers, Ray.

Small on purpose: three small pages (two images and a two-page PDF) through the real models.
The Ray test runs on a local 2-CPU Ray, started once for this module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from demo.rest import create_api
from ocr.batch import cli
from ocr.batch.inputs import PageTask, expand, plan
from ocr.batch.output import JsonlWriter, read_back, remaining, repair_tail
from ocr.batch.reader import TIMING_KEYS, ServiceReader
from ocr.batch.runner import read_page, run_inline
from ocr.engines import sha256_of
from tests.ocr.test_tiff import colour_pages, tiff_bytes

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ADDED = ("source", "page", "sha256")


def save_pdf(path: Path, images: list[Image.Image]) -> Path:
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=150)
    return path


def strip(record: dict, *extra: str) -> dict:
    """A record without what differs between two reads of one page (timings) and ``extra`` keys."""
    return {k: v for k, v in record.items() if k not in TIMING_KEYS + extra}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def keys(records: list[dict]) -> list[tuple]:
    return [(r["sha256"], r["page"]) for r in records]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """inbox/a_line.png, inbox/sub/b_crop.png, inbox/sub/c_two.pdf (2 pages), inbox/sub/.hidden.png, notes.txt."""
    root = tmp_path_factory.mktemp("archive") / "inbox"
    (root / "sub").mkdir(parents=True)
    line = Image.open(EXAMPLES / "line_zh.png").convert("RGB")
    crop = Image.open(EXAMPLES / "receipt_en.png").convert("RGB").crop((0, 0, 420, 260))
    line.save(root / "a_line.png")
    crop.save(root / "sub" / "b_crop.png")
    save_pdf(root / "sub" / "c_two.pdf", [crop.crop((0, 0, 420, 130)), line])
    line.save(root / "sub" / ".hidden.png")
    (root / "notes.txt").write_text("not a page")
    return root


@pytest.fixture(scope="module")
def pool_runs(archive, tmp_path_factory) -> dict[int, list[dict]]:
    """The archive read by the process pool with 1 and with 2 workers (real models in each worker)."""
    out = {}
    for workers in (1, 2):
        path = tmp_path_factory.mktemp(f"pool{workers}") / "results.jsonl"
        assert cli.main([str(archive), "--out", str(path), "--workers", str(workers), "--no-progress"]) == 0
        out[workers] = read_jsonl(path)
    return out


# ---------------------------------------------------------------- inputs


def test_folder_glob_and_pdf_expansion(archive, tmp_path) -> None:
    paths = expand([archive / "sub" / "c_two.pdf", archive, str(archive / "**" / "*.png")])
    names = [p.relative_to(archive).as_posix() for p in paths]
    # arguments in order, each file once; folders sorted, hidden files and non-page suffixes skipped
    assert names == ["sub/c_two.pdf", "a_line.png", "sub/b_crop.png"]
    copy = tmp_path / "copy_of_line.png"
    copy.write_bytes((archive / "a_line.png").read_bytes())
    work = plan([archive, copy, str(tmp_path / "nothing*.png")])
    assert [(Path(t.source).name, t.page, t.kind) for t in work.tasks] == [
        ("a_line.png", 1, "image"), ("b_crop.png", 1, "image"), ("c_two.pdf", 1, "pdf"), ("c_two.pdf", 2, "pdf"),
        ("nothing*.png", None, "image")]
    assert work.tasks[-1].error["code"] == "not_found"  # an error record, not silence
    assert work.skipped == {"that are not images or PDFs": [str(archive / "notes.txt")]}
    assert work.tasks[0].sha256 == sha256_of(archive / "a_line.png")
    assert work.duplicates == [(str(copy), str(archive / "a_line.png"))]  # same bytes: read once
    assert work.missing == [str(tmp_path / "nothing*.png")]


def test_a_broken_pdf_is_one_error_task(tmp_path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    (task,) = plan([tmp_path]).tasks
    assert task.page is None and task.error["code"] == "pdf_invalid"


def test_max_pages_above_the_default_is_rendered(tmp_path) -> None:
    """--max-pages 25 lets a 22-page PDF through the plan, and a worker renders its page 22
    (the page count is not checked again, at the default 20, when one page is rendered)."""
    from ocr.batch.runner import load_page
    from ocr.pdf import PdfLimits

    pdf = save_pdf(tmp_path / "long.pdf", [Image.new("RGB", (60, 40), "white")] * 22)
    assert plan([pdf]).tasks[0].error["code"] == "pdf_too_many_pages"
    tasks = plan([pdf], PdfLimits(max_pages=25)).tasks
    assert len(tasks) == 22 and load_page(tasks[-1]).shape[2] == 3


# ---------------------------------------------------------------- records


def test_record_is_the_rest_answer(service, archive) -> None:
    """For an image and for a PDF page: the record minus source/page/sha256 is the REST answer
    (the PDF sent whole: the REST answer's ``pages[page - 1]``)."""
    reader = ServiceReader(service)
    tasks = plan([archive]).tasks
    with TestClient(create_api(service, workers=1, queue=4)) as client:
        for task in (tasks[0], tasks[3]):
            record = read_page(task, reader)
            assert (record["source"], record["page"], record["sha256"]) == (task.source, task.page, task.sha256)
            ctype = "application/pdf" if task.kind == "pdf" else "image/png"
            resp = client.post("/api/v1/ocr", content=Path(task.source).read_bytes(), headers={"content-type": ctype})
            assert resp.status_code == 200
            answer = resp.json()
            if task.kind == "pdf":
                assert answer["page_count"] == 2 and len(answer["pages"]) == 2
                answer = answer["pages"][task.page - 1]
            assert record["text"].strip()
            assert strip(record, *ADDED) == strip(answer)


class FakeReader:
    def __call__(self, rgb: np.ndarray) -> dict:
        return {"success": True, "text": f"{rgb.shape[1]}x{rgb.shape[0]}"}


def test_error_records_never_stop_the_run(tmp_path, archive) -> None:
    (tmp_path / "bad.png").write_bytes(b"this is text, not a PNG")
    (tmp_path / "empty.jpg").write_bytes(b"")
    tasks = plan([tmp_path, archive / "a_line.png"]).tasks
    records = list(run_inline(tasks, FakeReader()))
    assert [r.get("error", {}).get("code") for r in records] == ["invalid_image", "invalid_image", None]
    bad = records[0]
    assert bad == {"source": str(tmp_path / "bad.png"), "page": 1, "sha256": sha256_of(tmp_path / "bad.png"),
                   "success": False, "error": bad["error"]}
    assert str(tmp_path) not in bad["error"]["message"]  # no server paths in messages
    assert records[2]["text"] == "456x61"


def test_a_multi_page_tiff_is_one_task_per_page(tmp_path) -> None:
    """A 3-page TIFF is planned as 3 tasks and each worker reads its own page; a single-page TIFF is one image
    task; over the page limit, one error task (as a PDF)."""
    from ocr.batch.runner import load_page
    from ocr.imageio import load_image
    from ocr.pdf import PdfLimits

    (tmp_path / "a_fax.tif").write_bytes(tiff_bytes(colour_pages()))
    (tmp_path / "b_one.tiff").write_bytes(tiff_bytes(colour_pages()[:1]))
    tasks = plan([tmp_path]).tasks
    assert [(Path(t.source).name, t.page, t.kind) for t in tasks] == [
        ("a_fax.tif", 1, "tiff"), ("a_fax.tif", 2, "tiff"), ("a_fax.tif", 3, "tiff"), ("b_one.tiff", 1, "image")]
    for task, image in zip(tasks, colour_pages()):
        assert np.array_equal(load_page(task), load_image(image))
    assert [r["text"] for r in run_inline(tasks, FakeReader())] == ["40x30", "50x20", "20x60", "40x30"]
    (error,) = plan([tmp_path / "a_fax.tif"], PdfLimits(max_pages=2)).tasks
    assert error.page is None and error.kind == "tiff" and error.error["code"] == "tiff_too_many_pages"
    long = tiff_bytes([Image.new("L", (30 + n, 20), 255) for n in range(22)])
    (tmp_path / "long.tif").write_bytes(long)
    assert plan([tmp_path / "long.tif"]).tasks[0].error["code"] == "tiff_too_many_pages"
    tasks = plan([tmp_path / "long.tif"], PdfLimits(max_pages=25)).tasks
    assert len(tasks) == 22 and load_page(tasks[-1]).shape == (20, 51, 3)


def test_fields_hook() -> None:
    task = PageTask(str(EXAMPLES / "line_zh.png"), 1, "x")
    assert read_page(task, FakeReader(), lambda answer: {"n": len(answer["text"])})["fields"] == {"n": 6}
    failed = read_page(task, FakeReader(), lambda answer: 1 / 0)
    assert failed["text"] == "456x61" and failed["fields_error"]["code"] == "fields_failed"


# ---------------------------------------------------------------- output and resume


def test_torn_tail_is_cut(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    with JsonlWriter(path) as writer:
        writer.write({"sha256": "a", "page": 1})
    with open(path, "ab") as f:
        f.write(b'{"sha256": "b", "pa')
    assert repair_tail(path) == len(b'{"sha256": "b", "pa')
    assert read_back(path).done == {("a", 1)} and repair_tail(path) == 0


def test_remaining_skips_finished_pages_and_failed_inputs() -> None:
    tasks = [PageTask("x.pdf", 1, "s1", "pdf"), PageTask("x.pdf", 2, "s1", "pdf"),
             PageTask("y.pdf", 1, "s2", "pdf"), PageTask("z.png", 1, None)]
    todo, skipped = remaining(tasks, {("s1", 1), ("s2", None)})
    assert [(t.source, t.page) for t in todo] == [("x.pdf", 2), ("z.png", 1)] and skipped == 2


def broken_factory():
    """A worker whose models cannot load (module level: spawned workers import it by name)."""
    from ocr.errors import ModelLoadError

    raise ModelLoadError("weights file crnn.pt is corrupt")


def test_a_worker_that_cannot_load_stops_the_run(tmp_path, archive) -> None:
    from ocr.batch.runner import Summary, WorkerFailed, run_pool

    out = tmp_path / "r.jsonl"
    with JsonlWriter(out) as writer, pytest.raises(WorkerFailed, match="crnn.pt is corrupt"):
        run_pool(plan([archive]).tasks, writer, Summary(), workers=1, factory=broken_factory, progress=False)
    assert out.read_bytes() == b""


def test_existing_output_needs_resume(tmp_path, archive) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text('{"sha256": "a", "page": 1}\n')
    assert cli.main([str(archive), "--out", str(out), "--no-progress"]) == 2
    assert out.read_text() == '{"sha256": "a", "page": 1}\n'


def test_model_option_reaches_every_worker(pool_runs, archive, tmp_path) -> None:
    """``--model fast`` reads with the fast model only; without it the app's default (auto) reads."""
    out = tmp_path / "fast.jsonl"
    assert cli.main([str(archive), "--out", str(out), "--workers", "1", "--model", "fast", "--no-progress"]) == 0
    fast = read_jsonl(out)
    assert {r["model"] for r in fast} == {"fast"} and {ln["model"] for r in fast for ln in r["lines"]} == {"fast"}
    assert {r["model"] for r in pool_runs[1]} == {"auto"}
    assert keys(fast) == keys(pool_runs[1])


def test_pool_two_workers_equal_one(pool_runs) -> None:
    one, two = pool_runs[1], pool_runs[2]
    assert len(one) == 4 and all(r["success"] for r in one)
    assert [strip(r) for r in one] == [strip(r) for r in two]  # same records, same order


def test_resume_after_a_kill(pool_runs, tmp_path, archive) -> None:
    """Two whole lines and a torn third, as a SIGKILL mid-write leaves them: nothing lost, nothing twice."""
    full = pool_runs[1]
    out = tmp_path / "results.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in full]
    out.write_text(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2], encoding="utf-8")
    assert cli.main([str(archive), "--out", str(out), "--resume", "--workers", "1", "--no-progress"]) == 0
    resumed = read_jsonl(out)
    assert sorted(keys(resumed)) == sorted(keys(full)) and len(set(keys(resumed))) == len(resumed)
    assert resumed[:2] == full[:2]
    assert [strip(r) for r in resumed] == [strip(r) for r in full]


def test_ctrl_c_stops_cleanly(archive, tmp_path) -> None:
    """SIGINT to the whole process group (as a terminal sends it): exit 130, whole lines, a summary."""
    out = tmp_path / "results.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "ocr", "batch", str(archive), "--out", str(out), "--workers", "1"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.stat().st_size == 0) and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "--resume" in err and "Traceback" not in err
    data = out.read_bytes()
    assert data.endswith(b"\n") and all(json.loads(line) for line in data.splitlines())


# ---------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the module (starting Ray takes seconds)."""
    import ray

    from ocr.batch.ray_job import start_local

    start_local(ray, cpus=2)
    yield ray
    ray.shutdown()


def test_ray_local_2cpu_matches_process_pool(local_ray, pool_runs, archive, tmp_path) -> None:
    out = tmp_path / "ray.jsonl"
    assert cli.main([str(archive), "--out", str(out), "--no-progress", "--ray"]) == 0
    ray_records = read_jsonl(out)
    assert [strip(r) for r in ray_records] == [strip(r) for r in pool_runs[1]]


def test_ray_reads_archive_members(local_ray, tmp_path) -> None:
    """Ray actors load a member's bytes from the task (sent as JSON), as the process pool's workers do."""
    from ocr.batch.ray_job import run_ray
    from ocr.batch.runner import Summary
    from tests.ocr.test_batch_inputs import fake_factory, make_tar, png_bytes

    tgz = make_tar(tmp_path / "s.tgz", {"b.png": png_bytes(71), "a.png": png_bytes(72)})
    out = tmp_path / "ray.jsonl"
    with JsonlWriter(out) as writer:
        run_ray(plan([tgz]).tasks, writer, Summary(), address=None, workers=1, factory=fake_factory, progress=False)
    assert [(r["source"], r["text"]) for r in read_jsonl(out)] == [(f"{tgz}!a.png", "72x20"), (f"{tgz}!b.png", "71x20")]


def test_fields_hook_names_the_real_extractor() -> None:
    from ocr.batch.runner import FIELDS_HOOK, resolve_fields
    from ocr.fields import fields_for_answer

    assert resolve_fields(FIELDS_HOOK) is fields_for_answer


def test_batch_takes_the_language_model_switch(service, tmp_path):
    """``lm`` is one switch everywhere (README): ``python -m ocr batch --lm off`` was a usage error (black-box
    pass). The option reaches the reader, and each record says which decoding it got."""
    import argparse

    from ocr.imageio import load_image

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args([str(tmp_path), "--out", str(tmp_path / "o.jsonl"), "--lm", "off"])
    assert args.lm is False
    assert parser.parse_args([str(tmp_path), "--out", str(tmp_path / "o.jsonl")]).lm is None
    rgb = load_image(Path(__file__).resolve().parents[2] / "examples" / "line_zh.png")
    assert ServiceReader(service, lm=args.lm)(rgb)["lm"] is False
    assert ServiceReader(service)(rgb)["lm"] is True
