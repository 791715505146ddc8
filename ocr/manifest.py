"""The labelled-set files the CLI reads: ``labels.tsv`` (line sets) and ``page.jsonl`` (page sets).

The formats are those of ``../shared/eval/INDEX.md``; scoring them is ``benchmarks.evaluate``'s job.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_lines(path: Path | str) -> list[str]:
    """Lines split on ``\\n`` only (a label may hold any other character); BOM and ``\\r`` dropped."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_manifest(path: Path | str) -> list[tuple[str, str]]:
    """``(relative_path, text)`` pairs of a ``labels.tsv``.

    Each line is split on its first tab only, so the text may contain tabs and
    may be empty. Blank lines are skipped; a line without a tab is an error.
    """
    items = []
    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(f"{path}:{lineno}: expected 'path<TAB>text'")
        rel, text = line.split("\t", 1)
        items.append((rel, text))
    return items


def read_jsonl(path: Path | str) -> list[dict]:
    """The JSON objects of a JSON-lines file (blank lines skipped)."""
    return [record for _, record in read_jsonl_numbered(path)]


def read_jsonl_numbered(path: Path | str) -> list[tuple[int, dict]]:
    """``(line number, object)`` of a JSON-lines file (blank lines skipped): for errors that name the line."""
    records = []
    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object")
        records.append((lineno, record))
    return records
