"""``--resume`` refuses other reading options than the file's, and reports the error records the file
already holds (black-box pass bb3, finding 3). No models: see test_batch_inputs.fake_cli."""

from __future__ import annotations

import json
from pathlib import Path

from ocr.batch.output import options_conflict, read_back, remaining
from ocr.batch.inputs import PageTask
from tests.ocr.test_batch_inputs import fake_cli, png_bytes, read_jsonl  # noqa: F401 - fake_cli is a fixture


def setup_inputs(tmp_path: Path) -> list[Path]:
    (tmp_path / "a.png").write_bytes(png_bytes(30))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    return [tmp_path / "a.png", tmp_path / "bad.png"]


def test_every_record_stores_its_reading_options(fake_cli, tmp_path) -> None:
    out = tmp_path / "r.jsonl"
    assert fake_cli(*setup_inputs(tmp_path), "--out", out, "--model", "fast", "--lm", "off") == 1
    first, second = (r["options"] for r in read_jsonl(out))  # a read page and an error record alike
    assert first == second and first | {"model": "fast", "lm": False, "fields": False} == first


def test_resume_with_other_options_is_refused(fake_cli, tmp_path, capsys) -> None:
    out = tmp_path / "r.jsonl"
    assert fake_cli(*setup_inputs(tmp_path)[:1], "--out", out, "--model", "fast") == 0
    before = out.read_bytes()
    for extra, said in ((["--model", "accurate"], "model: fast there, accurate now"),
                        (["--fields"], "fields: off there, on now"),
                        (["--model", "fast", "--lm", "off"], "lm: default there, off now"),
                        (["--model", "fast", "--max-pages", "3"], "max_pages: 20 there, 3 now")):
        capsys.readouterr()
        assert fake_cli(tmp_path / "a.png", "--out", out, "--resume", *extra) == 2
        err = capsys.readouterr().err.strip()
        assert said in err and "use the same options, or another --out" in err and len(err.splitlines()) == 1
        assert out.read_bytes() == before
    assert fake_cli(tmp_path / "a.png", "--out", out, "--resume", "--model", "fast") == 0


def test_a_resume_over_error_records_exits_1_even_with_nothing_new(fake_cli, tmp_path, capsys) -> None:
    out = tmp_path / "r.jsonl"
    paths = setup_inputs(tmp_path)
    assert fake_cli(*paths, tmp_path / "missing.png", "--out", out) == 1
    capsys.readouterr()
    assert fake_cli(*paths, tmp_path / "missing.png", "--out", out, "--resume") == 1
    err = capsys.readouterr().err
    assert "0 page(s) read" in err and "3 already in the output" in err and "2 error record(s) from before" in err
    assert len(read_jsonl(out)) == 3  # the missing input is not written again while it is still missing


def test_a_file_written_before_options_were_stored_stays_resumable(fake_cli, tmp_path, capsys) -> None:
    """Old records: a read page says its model and whether it has fields; an error record says nothing."""
    out = tmp_path / "r.jsonl"
    old = [{"source": "x.png", "page": 1, "sha256": "s1", "success": True, "text": "t", "model": "fast", "lm": True},
           {"source": "y.png", "page": 1, "sha256": "s2", "success": False,
            "error": {"code": "invalid_image", "message": "m"}}]
    out.write_text("".join(json.dumps(r) + "\n" for r in old))
    existing = read_back(out)
    assert options_conflict(existing, {"model": "fast", "fields": False, "lm": None}) is None
    assert options_conflict(existing, {"model": "auto", "fields": False}) == "model: fast there, auto now"
    assert existing.errors == 1
    (tmp_path / "a.png").write_bytes(png_bytes(30))
    assert fake_cli(tmp_path / "a.png", "--out", out, "--resume") == 2  # auto now, fast there
    assert fake_cli(tmp_path / "a.png", "--out", out, "--resume", "--model", "fast") == 1  # y.png's error record


def test_remaining_matches_unhashed_failures_by_source() -> None:
    missing = PageTask("gone.png", None, None, error={"code": "not_found", "message": "m"})
    back = PageTask("gone.png", 1, "s9")  # the file came back: read it
    assert remaining([missing, back], set(), {"gone.png"}) == ([back], 1)
