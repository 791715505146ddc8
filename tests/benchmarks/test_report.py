"""benchmarks.report: the shared section writer keeps every byte outside its markers (CRLF, blank lines, no final newline)."""

from __future__ import annotations

import hashlib

import pytest

from benchmarks.report import write_marked_section
from ocr.engines import sha256_of

START, END = "<!-- x:start -->", "<!-- x:end -->"


def test_replaces_only_between_markers_byte_for_byte(tmp_path):
    path = tmp_path / "B.md"
    head = "# Bench\r\n\r\nintro ✓\r\n<!-- other:start -->\nkept\n<!-- other:end -->\n\n\n"
    tail = "\r\n\r\n\ntrailing, no final newline"
    path.write_bytes((head + f"{START}\r\nold\r\n{END}" + tail).encode())
    write_marked_section(path, START, END, "new\n")
    assert path.read_bytes() == (head + f"{START}\nnew\n{END}" + tail).encode()
    write_marked_section(path, START, END, "newer")
    assert path.read_bytes() == (head + f"{START}\nnewer\n{END}" + tail).encode()
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("before, sep", [("a\r\n", "\n"), ("a\n\n\n", "\n"), ("a", "\n\n"), ("", "")])
def test_appends_markers_without_touching_what_is_there(tmp_path, before, sep):
    path = tmp_path / "B.md"
    path.write_bytes(before.encode())
    write_marked_section(path, START, END, "body")
    assert path.read_bytes() == (before + sep + f"{START}\nbody\n{END}\n").encode()


def test_creates_a_missing_file_and_refuses_a_lone_marker(tmp_path):
    fresh = tmp_path / "new.md"
    write_marked_section(fresh, START, END, "x", title="# T")
    assert fresh.read_bytes() == f"# T\n\n{START}\nx\n{END}\n".encode()
    broken = tmp_path / "broken.md"
    broken.write_bytes(f"only {END}\r\n".encode())
    with pytest.raises(ValueError):
        write_marked_section(broken, START, END, "x")
    assert broken.read_bytes() == f"only {END}\r\n".encode()


def test_sha256_of(tmp_path):
    path = tmp_path / "f.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()


def test_import_seconds_imports_and_times_the_runtime():
    import sys

    from benchmarks.report import import_seconds

    assert import_seconds(["json", "colorsys"]) >= 0 and "colorsys" in sys.modules
    with pytest.raises(ModuleNotFoundError):
        import_seconds(["no_such_runtime_module"])
