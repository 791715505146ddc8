"""The results file: JSON lines written by one process, and what ``--resume`` reads back.

Every record carries the run's reading ``options`` (model, lm, fields, engine, page and member limits,
PDF rendering), so a resume with other options is refused (:func:`options_conflict`) rather than
mixing two readings in one file.

Each record goes to the OS in one ``write`` of one complete line (an unbuffered file), so a
Ctrl-C or a crash between records never leaves half a line, and a killed run loses at most the
pages still in the workers. A kill *during* that write (SIGKILL, power loss) can still tear the
last line: :func:`repair_tail` cuts it off before a resume appends to the file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ocr.batch.inputs import PageTask

log = logging.getLogger(__name__)

#: (sha256, page) of a finished page; page ``None`` marks an input that failed as a whole
Key = tuple[str | None, int | None]


class JsonlWriter:
    """Appends one record per line, each line handed to the OS at once (no torn line on Ctrl-C)."""

    def __init__(self, path: Path, stamp: dict[str, Any] | None = None) -> None:
        self.path = path
        self.stamp = stamp or {}  # keys added to every record (the run's "options")
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        data = (json.dumps({**record, **self.stamp}, ensure_ascii=False) + "\n").encode("utf-8")
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


@dataclass
class Existing:
    """What an output file already holds, as ``--resume`` needs it."""

    done: set[Key] = field(default_factory=set)  # (sha256, page) of every record, error records too
    failed: set[str] = field(default_factory=set)  # sources of error records without a hash (missing, ...)
    errors: int = 0  # error records
    stamps: list[dict[str, Any]] = field(default_factory=list)  # the distinct options the records were read with

    def add(self, record: dict[str, Any]) -> None:
        self.done.add((record.get("sha256"), record.get("page")))
        if record.get("success") is False:
            self.errors += 1
            if record.get("sha256") is None:
                self.failed.add(record.get("source"))
        stamp = record_options(record)
        if stamp not in self.stamps:
            self.stamps.append(stamp)


def record_options(record: dict[str, Any]) -> dict[str, Any]:
    """The options a record was read with. A record written before they were stored says what it can
    (a read page its model and whether it has fields; an error record nothing)."""
    if isinstance(record.get("options"), dict):
        return record["options"]
    if record.get("success") is False or "model" not in record:
        return {}
    return {"model": record["model"], "fields": "fields" in record or "fields_error" in record}


def read_back(path: Path) -> Existing:
    """Every record of ``path`` (a line that is not a record is ignored with a warning)."""
    existing = Existing()
    if not path.exists():
        return existing
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                existing.add(record)
            except (json.JSONDecodeError, AttributeError):
                log.warning("%s line %d is not a record; ignored", path, number)
    return existing


def options_conflict(existing: Existing, options: dict[str, Any]) -> str | None:
    """What differs between the options of the records already written and this run's, as "model: fast
    there, auto now"; None if nothing does (keys a record does not store are not compared)."""
    for stamp in existing.stamps:
        diff = [f"{key}: {_word(stamp[key])} there, {_word(options.get(key))} now"
                for key in stamp if stamp[key] != options.get(key)]
        if diff:
            return "; ".join(diff)
    return None


def _word(value: Any) -> str:
    """An option as the command line writes it (lm None: the model's default)."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def remaining(tasks: Iterable[PageTask], done: set[Key], failed: Iterable[str] = ()) -> tuple[list[PageTask], int]:
    """The tasks not yet in the output, and how many were skipped. An input's whole-input error
    record (page ``None``) covers all its pages. An input never hashed (missing, unreadable, a member
    over the byte limit) is matched by its source, and only while it still fails: once it can be read
    (hashed), it is read."""
    failed = set(failed)
    todo, skipped = [], 0
    for task in tasks:
        if task.sha256 is not None and ((task.sha256, task.page) in done or (task.sha256, None) in done):
            skipped += 1
        elif task.sha256 is None and task.error is not None and task.source in failed:
            skipped += 1
        else:
            todo.append(task)
    return todo, skipped


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
