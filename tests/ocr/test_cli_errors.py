"""``python -m ocr`` on bad input: one ``error: ...`` line and exit 2 for a usage error (bad options, a
malformed ``--manifest`` / ``--pages`` file, images it names missing), never a Python traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ocr.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
LINE = ROOT / "examples" / "line_zh.png"


def one_error_line(capsys) -> str:
    """The only stderr line of a refused command (no traceback before it)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize("name, content, words", [
    ("text.png", "hello\n", ":1: invalid JSON (Expecting value)"),
    ("pages.jsonl", '{"image": "a.png"}\n\n{"foo": 1}\n', ':3: expected an "image" field (the page image\'s path)'),
    ("pages.jsonl", '["a.png"]\n', ":1: expected a JSON object"),
])
def test_a_bad_pages_file_is_one_line(tmp_path, capsys, name, content, words):
    (tmp_path / "a.png").write_bytes(LINE.read_bytes())
    pages = tmp_path / name
    pages.write_text(content, encoding="utf-8")
    assert main(["page", "--pages", str(pages), "--out", str(tmp_path / "out.jsonl")]) == 2
    assert one_error_line(capsys) == f"error: {pages}{words}"
    assert not (tmp_path / "out.jsonl").exists()


def test_a_binary_pages_file_is_one_line(tmp_path, capsys):
    assert main(["page", "--pages", str(LINE), "--out", str(tmp_path / "out.jsonl")]) == 2
    assert one_error_line(capsys) == f"error: {LINE}: not a UTF-8 text file"


def test_a_manifest_line_without_a_tab_is_one_line(tmp_path, capsys):
    manifest = tmp_path / "labels.tsv"
    manifest.write_text("a.png\tok\nno tab here\n", encoding="utf-8")
    assert main(["recognize", "--manifest", str(manifest), "--out", str(tmp_path / "p.tsv")]) == 2
    assert one_error_line(capsys) == f"error: {manifest}:2: expected 'path<TAB>text'"


def test_missing_manifest_images_are_named_before_reading(tmp_path, capsys):
    """A manifest naming images that are not there (a wrong folder) is refused as a whole, naming
    them, and nothing is written (it used to give exit 0 and an empty prediction per image)."""
    (tmp_path / "a.png").write_bytes(LINE.read_bytes())
    manifest, out = tmp_path / "labels.tsv", tmp_path / "p.tsv"
    manifest.write_text("a.png\tx\nmissing.png\ty\nsub/gone.png\tz\n", encoding="utf-8")
    assert main(["recognize", "--manifest", str(manifest), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {manifest}: 2 image(s) not found") and line.endswith("missing.png, sub/gone.png")
    assert not out.exists()
    pages = tmp_path / "pages.jsonl"
    pages.write_text(json.dumps({"image": "missing.png"}) + "\n", encoding="utf-8")
    assert main(["page", "--pages", str(pages), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert one_error_line(capsys).endswith("not found (paths are relative to %s): missing.png" % tmp_path)


@pytest.mark.parametrize("argv, words", [
    (["recognize", "--manifest", "labels.tsv"], "error: --manifest needs --out"),
    (["page", "--pages", "pages.jsonl"], "error: --pages needs --out"),
    (["recognize"], "error: give image files, or --manifest LABELS.tsv --out PREDS.tsv"),
])
def test_missing_options_exit_2_like_every_usage_error(argv, words, capsys):
    assert main(argv) == 2
    assert one_error_line(capsys) == words


def test_a_folder_as_the_manifest_is_one_line(tmp_path, capsys):
    assert main(["recognize", "--manifest", str(tmp_path), "--out", str(tmp_path / "p.tsv")]) == 2
    assert one_error_line(capsys) == f"error: cannot use {tmp_path}: Is a directory"


@pytest.mark.parametrize("argv, words", [
    (["--threads", "-3", "recognize", str(LINE)], "argument --threads: must be at least 1, not -3"),
    (["--threads", "0", "recognize", str(LINE)], "argument --threads: must be at least 1, not 0"),
    (["batch", str(LINE), "--out", "{tmp}/r.jsonl", "--max-pages", "0"], "argument --max-pages: must be at least 1, not 0"),
    (["batch", str(LINE), "--out", "{tmp}/r.jsonl", "--max-pages", "-1"], "argument --max-pages: must be at least 1"),
    (["recognize", "ftp://example.com/a.png"], "only http:// and https:// links are supported, not ftp://"),
])
def test_bad_option_values_are_usage_errors(argv, words, tmp_path, capsys):
    """Refused by argparse (exit 2) before anything runs: --max-pages 0 used to read every page and -1
    to refuse every PDF; --threads -3 was taken; ftp:// was looked for as the file ftp:/example.com/a.png."""
    with pytest.raises(SystemExit) as info:
        main([arg.format(tmp=tmp_path) for arg in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "r.jsonl").exists()


def test_threads_help_says_what_it_controls(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "onnxruntime" in help_text and "torch threads (default: torch's)" not in help_text


def test_recognize_sends_a_pdf_to_page(tmp_path, capsys):
    pdf = tmp_path / "doc.pdf"
    Image.open(LINE).convert("RGB").save(pdf, format="PDF")
    assert main(["--threads", "1", "recognize", str(pdf)]) == 1
    err = capsys.readouterr().err
    assert f"{pdf}\terror: it is a PDF" in err and "python -m ocr page" in err and "not an image" not in err


def test_a_reader_that_stops_early_gets_no_traceback():
    """``python -m ocr ... | head``: stdout is a pipe whose reader has gone before the output is written."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ocr", "--threads", "1", "recognize", "--json", str(LINE)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as for any Unix tool; 1 means an image was not read
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
