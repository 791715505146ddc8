"""Shared bits of the benchmark reports: marked sections of BENCHMARKS.md, package versions, machine facts.

Several commands (lines, pages, faithfulness, explanation speed) each own one
section of the same markdown file, so each rewrites only what lies between its
own markers and keeps everything else byte for byte — including CRLF line ends
and trailing blank lines someone else left there (the file is read and written
as bytes, never through universal-newline text mode).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Sequence


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def write_marked_section(path: Path, start_marker: str, end_marker: str, body: str,
                         title: str = "# Benchmarks") -> None:
    """Put ``body`` between the markers in ``path``; every byte outside them is kept.

    Reads the file right before writing (other commands write their own sections of
    the same file). A file without the markers gets them appended after a blank line;
    a missing file is created; a file with only one of the two markers is refused
    (nothing is written). The write is atomic (temporary file + rename).
    """
    block = f"{start_marker}\n{body.rstrip()}\n{end_marker}"
    if path.exists():
        text = path.read_bytes().decode("utf-8")
        start = text.find(start_marker)
        end = text.find(end_marker, start + len(start_marker)) if start >= 0 else text.find(end_marker)
        if start >= 0 and end >= 0:
            text = text[:start] + block + text[end + len(end_marker):]
        elif start >= 0 or end >= 0:
            raise ValueError(f"{path} holds only one of {start_marker} / {end_marker}; fix it by hand")
        else:
            if text and not text.endswith("\n"):
                text += "\n"
            text += ("\n" if text.strip() else "") + block + "\n"
    else:
        text = f"{title}\n\n{block}\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)


def cpu_and_ram() -> tuple[str, float | None]:
    """CPU model name and RAM in GB, for the machine facts every benchmark report carries."""
    cpu, ram_gb = platform.processor() or platform.machine(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 ** 2, 1)
                break
    except OSError:
        pass
    return cpu, ram_gb


def positive_int(value: str) -> int:
    """argparse type for counts (threads, samples, limits): at least 1."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def import_seconds(modules: Sequence[str]) -> float:
    """Seconds to import a system's runtime libraries (torch, onnxruntime, ...), so a benchmark
    can time *model* loading apart from library import, the same way for every system."""
    import importlib
    import time

    started = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    return time.perf_counter() - started
