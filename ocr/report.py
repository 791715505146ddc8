"""Shared bits of the benchmark reports: marked sections of BENCHMARKS.md, package versions.

Several commands (lines, pages, faithfulness, explanation speed) each own one
section of the same markdown file, so each rewrites only what lies between its
own markers and keeps everything else byte for byte.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def write_marked_section(path: Path, start_marker: str, end_marker: str, body: str,
                         title: str = "# Benchmarks") -> None:
    """Put ``body`` between the markers in ``path``, keeping everything outside them.

    A file without the markers gets them appended; a missing file is created.
    A file with only one of the two markers is refused (nothing is written).
    """
    block = f"{start_marker}\n{body.rstrip()}\n{end_marker}"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        start = text.find(start_marker)
        end = text.find(end_marker, start + len(start_marker)) if start >= 0 else text.find(end_marker)
        if start >= 0 and end >= 0:
            text = text[:start] + block + text[end + len(end_marker):]
        elif start >= 0 or end >= 0:
            raise ValueError(f"{path} holds only one of {start_marker} / {end_marker}; fix it by hand")
        else:
            text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"
    else:
        text = f"{title}\n\n{block}\n"
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
