"""What a batch reads: files, folders (recursive) and globs -> one :class:`PageTask` per page.

The order is stable (arguments in the order given; inside a folder, paths sorted), so two runs
over the same archive write their records in the same order. Every input is identified by the
SHA-256 of its bytes (``ocr.engines.sha256_of``, the project's one file hash): ``--resume``
recognises finished inputs by content, wherever they moved, and a file found twice (the same
bytes under two names) is read once.

A PDF, and a TIFF of two pages or more, is a document (``ocr.document``): one task per page.
An input that cannot be planned (unreadable, a PDF that is damaged, encrypted or over the page
limit, a multi-page TIFF whose page table is damaged or that is over the limit) still becomes one
task, carrying its error: the runner writes it as an error record in its place in the order, so
every input given shows up in the output.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from ocr.document import HEAD_BYTES, document_kind, document_of
from ocr.errors import ImageTooLargeError, InvalidImageError, OCRError, PdfTooLargeError
from ocr.imageio import MAX_BYTES
from ocr.pdf import DEFAULT_LIMITS, PdfLimits
from ocr.engines import sha256_of

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
PDF_SUFFIXES = frozenset({".pdf"})
#: what a folder scan picks up; a file named explicitly is read whatever its name (its bytes decide)
SUFFIXES = IMAGE_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class PageTask:
    """One page to read. ``page`` is 1-based; ``None`` when the input failed before its pages were
    known (then ``error`` says why). ``kind`` is "image", "pdf" or "tiff" (a TIFF of two pages or more)."""

    source: str
    page: int | None
    sha256: str | None
    kind: str = "image"
    error: dict[str, str] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "PageTask":
        return cls(**json.loads(text))


@dataclass
class Plan:
    """The tasks of a run, and what planning noticed on the way."""

    tasks: list[PageTask] = field(default_factory=list)
    inputs: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (skipped path, first path)
    missing: list[str] = field(default_factory=list)  # arguments that matched nothing


def _scan_folder(folder: Path) -> list[Path]:
    """Image, PDF and TIFF files under ``folder``, hidden files and folders skipped, sorted by relative path."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def expand(arguments: Iterable[str | Path], missing: list[str] | None = None) -> list[Path]:
    """Files named by ``arguments`` (files, folders, glob patterns), in a stable order, each once.

    Arguments that match nothing are appended to ``missing`` (the caller decides whether that is fatal).
    """
    paths: list[Path] = []
    seen: set[Path] = set()
    for argument in arguments:
        text = str(argument)
        if os.path.exists(text):
            matches = [text]
        else:
            matches = sorted(glob.glob(text, recursive=True))
        found = []
        for match in matches:
            path = Path(match)
            found += _scan_folder(path) if path.is_dir() else [path] if path.is_file() else []
        if not found and missing is not None:
            missing.append(text)
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths


def read_input(path: Path, max_bytes: int | None = MAX_BYTES) -> bytes:
    """The file's bytes, refused before reading if over ``max_bytes`` (the image and PDF byte limit)."""
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            error = PdfTooLargeError if path.suffix.lower() in PDF_SUFFIXES else ImageTooLargeError
            raise error(f"the file is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.1f} MB limit")
        return path.read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"cannot read the file ({exc.strerror or exc.__class__.__name__})") from None


def _pages_of(path: Path, source: str, digest: str, limits: PdfLimits) -> list[PageTask]:
    """The tasks of one input: one per page, or one carrying the error that stopped planning it."""
    kind = "image"
    try:
        with path.open("rb") as f:
            kind = document_kind(f.read(HEAD_BYTES)) or "image"
        doc = None if kind == "image" else document_of(path, limits)  # a PDF over the byte limit: refused here
        if doc is None:  # an image, a TIFF of one page included (over the byte limit: refused when it is read)
            return [PageTask(source, 1, digest, "image")]
        return [PageTask(source, n, digest, doc.kind) for n in range(1, doc.page_count() + 1)]
    except OCRError as exc:
        return [PageTask(source, None, digest, kind, {"code": exc.code, "message": exc.message})]
    except OSError as exc:
        message = f"cannot read the file ({exc.strerror or exc.__class__.__name__})"
        return [PageTask(source, None, digest, "image", {"code": InvalidImageError.code, "message": message})]


def plan(arguments: Iterable[str | Path], limits: PdfLimits = DEFAULT_LIMITS) -> Plan:
    """Expand ``arguments`` and turn every distinct input into its page tasks."""
    result = Plan()
    first_of: dict[str, str] = {}
    for path in expand(arguments, result.missing):
        source = str(path)
        try:
            digest: str | None = sha256_of(path)
        except OSError:
            digest = None  # unreadable: _pages_of reports it
        if digest is not None and digest in first_of:
            result.duplicates.append((source, first_of[digest]))
            continue
        if digest is not None:
            first_of[digest] = source
        result.inputs += 1
        result.tasks += _pages_of(path, source, digest, limits)
    return result
