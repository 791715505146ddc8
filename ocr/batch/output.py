"""The results file: JSON lines written by one process, and what ``--resume`` reads back.

Each record goes to the OS in one ``write`` of one complete line (an unbuffered file), so a
Ctrl-C or a crash between records never leaves half a line, and a killed run loses at most the
pages still in the workers. A kill *during* that write (SIGKILL, power loss) can still tear the
last line: :func:`repair_tail` cuts it off before a resume appends to the file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

from ocr.batch.inputs import PageTask

log = logging.getLogger(__name__)

#: (sha256, page) of a finished page; page ``None`` marks an input that failed as a whole
Key = tuple[str | None, int | None]


class JsonlWriter:
    """Appends one record per line, each line handed to the OS at once (no torn line on Ctrl-C)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:  # a regular file takes it in one write; loop only for the rare short write
            view = view[self._file.write(view):]
        self.written += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_tail(path: Path) -> int:
    """Cut a torn last line (the file does not end with a newline); return the bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        keep = _last_newline_end(f, size)
        f.truncate(keep)
    log.warning("%s ended in a torn line (%d bytes): removed it; its page will be read again", path, size - keep)
    return size - keep


def _last_newline_end(f: Any, size: int, block: int = 1 << 16) -> int:
    """The offset just after the last b"\\n" in the file (0 if there is none), read from the end."""
    end = size
    while end > 0:
        start = max(0, end - block)
        f.seek(start)
        chunk = f.read(end - start)
        at = chunk.rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def finished(path: Path) -> set[Key]:
    """(sha256, page) of every record in ``path`` (error records too: resume does not retry them)."""
    done: set[Key] = set()
    if not path.exists():
        return done
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                done.add((record.get("sha256"), record.get("page")))
            except (json.JSONDecodeError, AttributeError):
                log.warning("%s line %d is not a record; ignored", path, number)
    return done


def remaining(tasks: Iterable[PageTask], done: set[Key]) -> tuple[list[PageTask], int]:
    """The tasks not yet in the output, and how many were skipped. An input's whole-input error
    record (page ``None``) covers all its pages; an input never hashed (unreadable) is always retried."""
    todo, skipped = [], 0
    for task in tasks:
        if task.sha256 is not None and ((task.sha256, task.page) in done or (task.sha256, None) in done):
            skipped += 1
        else:
            todo.append(task)
    return todo, skipped


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
