"""python -m ocr batch: missing inputs, what a folder scan takes and skips, zip and tar archives, and
``--resume`` with other options (black-box pass bb3, findings 2, 3, 5 and 7).

No models: the CLI runs with the process pool replaced by an in-process loop over a fake reader
(:func:`inline_pool`), except one spawned pool that reads archive members in a real worker process.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from ocr.batch import cli, inputs
from ocr.batch.inputs import PageTask, plan
from ocr.batch.runner import Summary, load_page, run_inline, run_pool, write_records
from ocr.batch.output import JsonlWriter
from ocr.engines import sha256_of
from ocr.imageio import SNIFF_ALLOWED_TYPES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


class FakeReader:
    """The REST answer's shape, without models: the page size as its text."""

    def __call__(self, rgb: np.ndarray) -> dict:
        return {"success": True, "text": f"{rgb.shape[1]}x{rgb.shape[0]}", "model": "auto", "lm": True}


def fake_factory() -> FakeReader:
    """Module level: a spawned worker imports it by name."""
    return FakeReader()


def inline_pool(tasks, writer, summary, *, workers, factory, fields_spec=None, progress=True) -> None:
    """run_pool's contract, in this process with the fake reader (seconds less per CLI run)."""
    stop = SimpleNamespace(requested=False)
    write_records(run_inline(tasks, FakeReader()), writer, summary, stop, len(tasks), progress=False)


@pytest.fixture
def fake_cli(monkeypatch):
    monkeypatch.setattr(cli, "run_pool", inline_pool)
    monkeypatch.delenv("OCR_MODEL", raising=False)
    return lambda *argv: cli.main([str(a) for a in argv] + ["--no-progress"])


def png_bytes(width: int, height: int = 20, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format=fmt)
    return buffer.getvalue()


def pdf_bytes(*widths: int) -> bytes:
    pages = [Image.new("RGB", (w, 40), "white") for w in widths]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=72)
    return buffer.getvalue()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


# ---------------------------------------------------------------- missing inputs (finding 2)


def test_a_missing_input_is_an_error_record_and_exit_1(fake_cli, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.png").write_bytes(png_bytes(30))
    caplog.set_level(logging.WARNING)
    assert fake_cli("a.png", "missing.png", "in/*.png", "--out", "r.jsonl") == 1
    records = read_jsonl(tmp_path / "r.jsonl")
    assert [(r["source"], r["success"], r.get("error", {}).get("code")) for r in records] == [
        ("a.png", True, None), ("missing.png", False, "not_found"), ("in/*.png", False, "not_found")]
    assert records[1]["page"] is None and records[1]["sha256"] is None
    assert records[2]["error"]["message"] == "no file matches this pattern"
    assert str(tmp_path) not in json.dumps(records)  # only what the user typed
    assert "missing.png: no such file or folder" in caplog.text


def test_nothing_exists_is_exit_2_naming_the_paths(fake_cli, tmp_path, capsys) -> None:
    out = tmp_path / "r.jsonl"
    assert fake_cli(tmp_path / "nope.png", "--out", out) == 2
    assert f"nothing to read: {tmp_path / 'nope.png'}: no such file or folder" in capsys.readouterr().err
    assert not out.exists() or out.read_bytes() == b""


def test_out_in_a_missing_folder_is_refused_not_created(fake_cli, tmp_path, capsys) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes(30))
    assert fake_cli(tmp_path / "a.png", "--out", tmp_path / "no" / "such" / "r.jsonl") == 2
    assert "the folder of --out does not exist" in capsys.readouterr().err and not (tmp_path / "no").exists()


# ---------------------------------------------------------------- folder scan (finding 5)


def test_a_folder_scan_takes_every_accepted_type_and_reports_the_rest(fake_cli, tmp_path, caplog) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    assert "gif" in SNIFF_ALLOWED_TYPES and ".gif" in inputs.PAGE_SUFFIXES and ".pdf" in inputs.PAGE_SUFFIXES
    (folder / "a.gif").write_bytes(png_bytes(31, fmt="GIF"))
    (folder / "b.jfif").write_bytes(png_bytes(32, fmt="JPEG"))
    (folder / "c_scan").write_bytes(png_bytes(33))  # no suffix: its bytes say PNG
    (folder / "d.pdf").write_bytes(pdf_bytes(34))
    for n in range(7):
        (folder / f"note{n}.txt").write_text("not a page")
    caplog.set_level(logging.WARNING)
    assert fake_cli(folder, str(folder / "*.txt"), "--out", tmp_path / "r.jsonl") == 0
    records = read_jsonl(tmp_path / "r.jsonl")
    assert [(Path(r["source"]).name, r["text"]) for r in records][:3] == [("a.gif", "31x20"), ("b.jfif", "32x20"),
                                                                          ("c_scan", "33x20")]
    assert Path(records[3]["source"]).name == "d.pdf" and records[3]["page"] == 1 and len(records) == 4
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("skipped 14 file(s) that are not images or PDFs: ")
    assert lines[0].endswith("(9 more)")


def test_a_file_named_explicitly_is_read_whatever_its_name(tmp_path) -> None:
    (tmp_path / "readme.txt").write_text("text")
    (task,) = plan([tmp_path / "readme.txt"]).tasks
    assert task.page == 1 and task.error is None  # its reading says it is not an image


# ---------------------------------------------------------------- archives (finding 5)


def test_a_zip_is_read_member_by_member_in_name_order(fake_cli, tmp_path, caplog) -> None:
    inner = make_zip(tmp_path / "inner.zip", {"x.png": png_bytes(99)}).read_bytes()
    scans = make_zip(tmp_path / "scans.zip", {
        "2024/b.png": png_bytes(41), "2024/a.pdf": pdf_bytes(42, 43), "2024/": b"", "readme.txt": b"hi",
        "nested.zip": inner, "__MACOSX/2024/._a.pdf": b"resource fork", "../../escape.gif": png_bytes(44, fmt="GIF")})
    caplog.set_level(logging.WARNING)
    assert fake_cli(scans, "--out", tmp_path / "r.jsonl", "--workers", 1) == 0
    records = read_jsonl(tmp_path / "r.jsonl")
    assert [(r["source"].split("!")[1], r["page"]) for r in records] == [
        ("../../escape.gif", 1), ("2024/a.pdf", 1), ("2024/a.pdf", 2), ("2024/b.png", 1)]
    assert (records[0]["text"], records[3]["text"]) == ("44x20", "41x20") and all(r["success"] for r in records)
    assert records[0]["source"] == f"{scans}!../../escape.gif"
    assert not (tmp_path.parent.parent / "escape.gif").exists()  # read in memory, never extracted
    import hashlib

    assert records[3]["sha256"] == hashlib.sha256(png_bytes(41)).hexdigest()  # the member's own hash: resume key
    assert f"skipped 1 file(s) that are not images or PDFs: {scans}!readme.txt" in caplog.text
    assert f"skipped 1 file(s) that are archives inside an archive (not opened): {scans}!nested.zip" in caplog.text


@pytest.mark.parametrize("name,mode", [("docs.tar", "w"), ("docs.tar.gz", "w:gz"), ("docs.tgz", "w:gz")])
def test_a_tar_is_read_like_a_zip(tmp_path, name, mode) -> None:
    archive = make_tar(tmp_path / name, {"./b.png": png_bytes(51), "./a.pdf": pdf_bytes(52, 53), "./c.json": b"{}"})
    work = plan([archive])
    assert [(t.source, t.page, t.kind) for t in work.tasks] == [
        (f"{archive}!a.pdf", 1, "pdf"), (f"{archive}!a.pdf", 2, "pdf"), (f"{archive}!b.png", 1, "image")]
    assert work.skipped == {inputs.NOT_A_PAGE: [f"{archive}!c.json"]}
    # a worker loads the member from the task alone: pickled (process pool) or as JSON (Ray)
    for task in work.tasks:
        for copy in (pickle.loads(pickle.dumps(task)), PageTask.from_json(task.to_json())):
            assert copy == task
    texts = [r["text"] for r in run_inline([PageTask.from_json(t.to_json()) for t in work.tasks], FakeReader())]
    assert texts[2] == "51x20" and texts[0] != texts[1]  # two PDF pages of their own widths


def test_archive_limits_and_damage(tmp_path, monkeypatch) -> None:
    """A member over the byte limit and a damaged member are error records of their own; too many
    members or a damaged archive is one error record for the archive; a truncated tar.gz keeps the
    members before the damage."""
    monkeypatch.setattr(inputs, "MAX_BYTES", 2000)
    big = make_zip(tmp_path / "big.zip",
                   {"a.png": png_bytes(30), "b.png": png_bytes(800, 800), "c.pdf": b"%PDF" + bytes(3000)})
    codes = [(t.source.split("!")[-1], t.page, t.error and t.error["code"]) for t in plan([big]).tasks]
    assert codes == [("a.png", 1, None), ("b.png", None, "image_too_large"), ("c.pdf", None, "pdf_too_large")]
    many = make_zip(tmp_path / "many.zip", {f"{n}.png": png_bytes(30) for n in range(4)})
    (task,) = plan([many], max_members=3).tasks
    assert (task.source, task.page, task.error["code"]) == (str(many), None, "archive_too_many_members")
    assert "the archive has 4 members, over the limit of 3 (--max-members)" in task.error["message"]
    (tmp_path / "broken.zip").write_bytes(many.read_bytes()[:200])
    (task,) = plan([tmp_path / "broken.zip"]).tasks
    assert task.error["code"] == "archive_invalid" and task.sha256 == sha256_of(tmp_path / "broken.zip")
    tgz = make_tar(tmp_path / "t.tgz", {"a.png": png_bytes(30), "b.png": bytes(range(256)) * 200})
    (tmp_path / "cut.tgz").write_bytes(tgz.read_bytes()[:-300])
    tasks = plan([tmp_path / "cut.tgz"]).tasks
    assert (tasks[0].source.split("!")[-1], tasks[0].error) == ("a.png", None)  # read before the damage
    assert (tasks[-1].source, tasks[-1].error["code"]) == (str(tmp_path / "cut.tgz"), "archive_invalid")


def test_a_spawned_worker_reads_archive_members(tmp_path) -> None:
    """The process pool: each worker loads its member's bytes from the task (no shared memory)."""
    archive = make_zip(tmp_path / "s.zip", {"a.png": png_bytes(61), "b.pdf": pdf_bytes(62, 63)})
    out = tmp_path / "r.jsonl"
    with JsonlWriter(out) as writer:
        run_pool(plan([archive]).tasks, writer, Summary(), workers=1, factory=fake_factory, progress=False)
    records = read_jsonl(out)
    assert [(r["source"].split("!")[1], r["page"], r["success"]) for r in records] == [
        ("a.png", 1, True), ("b.pdf", 1, True), ("b.pdf", 2, True)]
    assert records[0]["text"] == "61x20"


def test_load_page_of_a_member_equals_the_file(tmp_path) -> None:
    line = (EXAMPLES / "line_zh.png").read_bytes()
    (file_task,) = plan([EXAMPLES / "line_zh.png"]).tasks
    (member_task,) = plan([make_zip(tmp_path / "l.zip", {"line.png": line})]).tasks
    assert member_task.sha256 == file_task.sha256
    assert np.array_equal(load_page(member_task), load_page(file_task))


def test_files_from_lists_inputs_one_per_line(fake_cli, tmp_path, monkeypatch) -> None:
    """``--files-from``: more inputs than a command line holds; paths with spaces, blank lines skipped,
    the command line's inputs first, ``-`` for stdin."""
    (tmp_path / "a b.png").write_bytes(png_bytes(30))
    (tmp_path / "c.png").write_bytes(png_bytes(40))
    (tmp_path / "d.png").write_bytes(png_bytes(50))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'a b.png'}\r\n\n{tmp_path / 'c.png'}\n", encoding="utf-8")
    out = tmp_path / "r.jsonl"
    assert fake_cli(tmp_path / "d.png", "--files-from", listing, "--out", out) == 0
    assert [Path(r["source"]).name for r in read_jsonl(out)] == ["d.png", "a b.png", "c.png"]

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{tmp_path / 'c.png'}\n"))
    out2 = tmp_path / "r2.jsonl"
    assert fake_cli("--files-from", "-", "--out", out2) == 0
    assert [Path(r["source"]).name for r in read_jsonl(out2)] == ["c.png"]


def test_no_input_or_an_unreadable_list_is_a_usage_error(fake_cli, tmp_path, capsys) -> None:
    out = tmp_path / "r.jsonl"
    assert fake_cli("--out", out) == 2
    assert "no input given" in capsys.readouterr().err
    assert fake_cli("--files-from", tmp_path / "missing.txt", "--out", out) == 2
    err = capsys.readouterr().err
    assert "--files-from" in err and "No such file" in err and "Traceback" not in err
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert fake_cli("--files-from", tmp_path / "empty.txt", "--out", out) == 2
    assert "lists none" in capsys.readouterr().err
    assert not out.exists() or out.stat().st_size == 0
