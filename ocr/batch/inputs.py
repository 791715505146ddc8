"""What a batch reads: files, folders (recursive), globs and archives -> one :class:`PageTask` per page.

The order is stable (arguments in the order given; inside a folder, paths sorted; inside an archive,
member names sorted), so two runs over the same inputs write their records in the same order. Every
input is identified by the SHA-256 of its bytes (``ocr.engines.sha256_of`` for a file): ``--resume``
recognises finished inputs by content, wherever they moved, and the same bytes found twice (under two
names, or in an archive and beside it) are read once.

What is read: a file named explicitly, whatever its name (its bytes decide); in a folder or from a glob,
the files of the accepted types (:data:`ACCEPTED_TYPES`: the image types every reader accepts,
``ocr.imageio.SNIFF_ALLOWED_TYPES``, and PDF), known by their name or, failing that, by their first
bytes. The others are listed in :attr:`Plan.skipped`. A zip or tar archive (:mod:`ocr.batch.archives`)
is read member by member under the same rule; an archive inside an archive is skipped, not opened.

A PDF, and a TIFF of two pages or more, is a document (``ocr.document``): one task per page.
An input that cannot be planned (missing, unreadable, a PDF that is damaged, encrypted or over the page
limit, a multi-page TIFF whose page table is damaged or that is over the limit, a damaged archive or
one of too many members) still becomes one task, carrying its error: the runner writes it as an error
record in its place in the order, so every input given shows up in the output.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from PIL import Image

from ocr.batch.archives import MAX_MEMBERS, Entry, Member, archive_kind, entries, is_hidden, read_member, read_rest
from ocr.document import HEAD_BYTES, document_kind, document_of
from ocr.engines import sha256_of
from ocr.errors import ImageTooLargeError, InvalidImageError, OCRError, PdfTooLargeError
from ocr.imageio import MAX_BYTES, SNIFF_ALLOWED_TYPES, sniff_image_type
from ocr.pdf import DEFAULT_LIMITS, PdfLimits

log = logging.getLogger(__name__)

#: what a folder, a glob or an archive is scanned for: the readers' image types, and PDF
ACCEPTED_TYPES = (*SNIFF_ALLOWED_TYPES, "pdf")
#: why a file was not read (the keys of :attr:`Plan.skipped`' reasons)
NOT_A_PAGE = "that are not images or PDFs"
NESTED = "that are archives inside an archive (not opened)"


def _suffixes_of(types: Iterable[str]) -> frozenset[str]:
    """The file name suffixes of ``types`` as Pillow registers them (``.jpg``, ``.jpeg``, ``.jfif``, ...),
    so the names a scan takes follow the one list of types instead of a list of their own."""
    Image.init()
    formats = {t.upper() for t in types}
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in formats)


PAGE_SUFFIXES = _suffixes_of(ACCEPTED_TYPES)


class NotFoundError(OCRError):
    """An argument that names no file or folder, or a glob pattern that matches nothing."""

    code = "not_found"
    default_message = "no such file or folder"


@dataclass(frozen=True)
class PageTask:
    """One page to read. ``page`` is 1-based; ``None`` when the input failed before its pages were
    known (then ``error`` says why). ``kind`` is "image", "pdf" or "tiff" (a TIFF of two pages or more),
    "archive" for an archive's own error. ``member``: where the bytes are when they are an archive's
    member (``source`` is then "ARCHIVE!NAME"); None for a file, read at ``source``."""

    source: str
    page: int | None
    sha256: str | None
    kind: str = "image"
    error: dict[str, str] | None = None
    member: Member | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "PageTask":
        values = json.loads(text)
        member = values.pop("member", None)
        return cls(**values, member=Member(**member) if member else None)


@dataclass
class Plan:
    """The tasks of a run, and what planning noticed on the way."""

    tasks: list[PageTask] = field(default_factory=list)
    inputs: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (skipped path, first path)
    missing: list[str] = field(default_factory=list)  # arguments naming nothing that exists (error tasks)
    empty: list[str] = field(default_factory=list)  # folders and globs that exist but hold nothing to read
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> names of files not read

    def skip(self, reason: str, name: str) -> None:
        self.skipped.setdefault(reason, []).append(name)

    @property
    def readable(self) -> bool:
        """True if anything but a missing input was planned (else the run has nothing to read)."""
        return any(t.error is None or t.error["code"] != NotFoundError.code for t in self.tasks)


# ---------------------------------------------------------------- what a name is


def file_role(name: str, head: bytes | None) -> str | None:
    """"archive", "page" (an accepted image or a PDF) or None (skipped), from the name, else the first
    bytes (``None``: not read yet; they are asked for only when the name does not tell)."""
    if archive_kind(name, head or b""):
        return "archive"
    if Path(name).suffix.lower() in PAGE_SUFFIXES:
        return "page"
    if head is None:
        return None
    return "page" if sniff_image_type(head)[1] or document_kind(head) == "pdf" else None


def _head_of(path: Path, strict: bool = False) -> bytes:
    """The first bytes of a file; b"" if it cannot be read (it is then skipped, or reported when it is
    read), unless ``strict``."""
    try:
        with path.open("rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        if strict:
            raise
        return b""


def _scanned_role(path: Path) -> str | None:
    """A scanned file's role: its name first, its bytes only when the name does not tell."""
    return file_role(path.name, None) or file_role(path.name, _head_of(path))


# ---------------------------------------------------------------- arguments -> files


def _scan_folder(folder: Path, skipped: Plan) -> list[Path]:
    """Accepted files and archives under ``folder``, hidden files and folders skipped (silently), the
    others noted in ``skipped``; sorted by relative path."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / f for f in files if not f.startswith(".")]
    found.sort(key=lambda p: p.relative_to(folder).as_posix())
    return _wanted(found, skipped)


def _wanted(paths: list[Path], skipped: Plan) -> list[Path]:
    """The paths to read; the others are noted as not images or PDFs."""
    kept = []
    for path in paths:
        if _scanned_role(path):
            kept.append(path)
        else:
            skipped.skip(NOT_A_PAGE, str(path))
    return kept


def _argument_files(text: str, skipped: Plan) -> tuple[list[Path], bool]:
    """The files one argument names, and whether it names anything that exists. A file named explicitly
    is read whatever its name; folders and glob matches are scanned for accepted types."""
    if os.path.exists(text):
        matches = [text]
    else:
        matches = sorted(glob.glob(text, recursive=True))
    found: list[Path] = []
    for match in matches:
        path = Path(match)
        if path.is_dir():
            found += _scan_folder(path, skipped)
        elif path.is_file():
            found += [path] if match == text else _wanted([path], skipped)
    return found, any(os.path.exists(m) for m in matches)


def _each_argument(arguments: Iterable[str | Path], skipped: Plan) -> Iterator[tuple[str, list[Path], bool]]:
    """(argument, its files not named by an earlier argument, whether it exists), in order."""
    seen: set[Path] = set()
    for argument in arguments:
        text = str(argument)
        files, exists = _argument_files(text, skipped)
        new = []
        for path in files:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                new.append(path)
        yield text, new, exists


def expand(arguments: Iterable[str | Path], missing: list[str] | None = None) -> list[Path]:
    """Files named by ``arguments`` (files, folders, glob patterns), in a stable order, each once.

    Arguments that match nothing are appended to ``missing``.
    """
    paths: list[Path] = []
    for text, files, exists in _each_argument(arguments, Plan()):
        if not exists and missing is not None:
            missing.append(text)
        paths += files
    return paths


# ---------------------------------------------------------------- bytes


def too_large(name: str, size: int, max_bytes: int) -> OCRError:
    """The error of a file or member over the byte limit (``pdf_too_large`` for a PDF by its name)."""
    error = PdfTooLargeError if name.lower().endswith(".pdf") else ImageTooLargeError
    return error(f"the file is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.1f} MB limit")


def read_input(path: Path, max_bytes: int | None = MAX_BYTES) -> bytes:
    """The file's bytes, refused before reading if over ``max_bytes`` (the image and PDF byte limit)."""
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise too_large(path.name, size, max_bytes)
        return path.read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"cannot read the file ({exc.strerror or exc.__class__.__name__})") from None


def task_bytes(task: PageTask) -> bytes:
    """The bytes of a task's input, in a worker: the file, or the archive's member."""
    if task.member is not None:
        return read_member(task.member, MAX_BYTES)
    return read_input(Path(task.source))


# ---------------------------------------------------------------- files and members -> page tasks


def _error_task(source: str, digest: str | None, kind: str, exc: OCRError,
                member: Member | None = None) -> PageTask:
    return PageTask(source, None, digest, kind, exc.to_dict(), member)


def _pages_of(content: Path | bytes, source: str, digest: str | None, limits: PdfLimits,
              member: Member | None = None) -> list[PageTask]:
    """The tasks of one input (a file, or a member's bytes): one per page, or one carrying the error
    that stopped planning it."""
    kind = "image"
    try:
        head = content[:HEAD_BYTES] if isinstance(content, bytes) else _head_of(content, strict=True)
        kind = document_kind(head) or "image"
        doc = None if kind == "image" else document_of(content, limits)  # a PDF over the byte limit: refused here
        if doc is None:  # an image, a TIFF of one page included (over the byte limit: refused when it is read)
            return [PageTask(source, 1, digest, "image", member=member)]
        return [PageTask(source, n, digest, doc.kind, member=member) for n in range(1, doc.page_count() + 1)]
    except OCRError as exc:
        return [_error_task(source, digest, kind, exc, member)]
    except OSError as exc:
        message = f"cannot read the file ({exc.strerror or exc.__class__.__name__})"
        return [_error_task(source, digest, "image", InvalidImageError(message), member)]


def _member_tasks(entry: Entry, source: str, limits: PdfLimits) -> tuple[str | None, list[PageTask]]:
    """(sha256, tasks) of an accepted member: its bytes read (at most the byte limit), hashed, planned."""
    member = entry.member
    if entry.error is not None:
        return None, [_error_task(source, None, "image", entry.error, member)]
    try:
        if member.size > MAX_BYTES:
            raise too_large(member.name, member.size, MAX_BYTES)
        data = read_rest(entry, MAX_BYTES)
        if len(data) > MAX_BYTES:
            raise too_large(member.name, len(data), MAX_BYTES)
    except OCRError as exc:
        return None, [_error_task(source, None, "image", exc, member)]
    digest = hashlib.sha256(data).hexdigest()
    return digest, _pages_of(data, source, digest, limits, member)


def _archive_members(path: Path, kind: str, limits: PdfLimits, max_members: int,
                     result: Plan) -> tuple[list[tuple[str, str | None, list[PageTask]]], OCRError | None]:
    """(source, sha256, tasks) of each accepted member in name order, and the error that stopped the
    listing if any (the members before it are kept). Nested archives and the rest are noted as skipped,
    hidden members skipped silently (as hidden files in a folder)."""
    planned, skipped = [], []
    failure = None
    try:
        for entry in entries(path, kind, HEAD_BYTES, max_members):
            source = f"{path}!{_label(entry.member.name)}"
            if is_hidden(entry.member.name):
                continue
            role = file_role(entry.member.name, entry.head)
            if role == "page":
                planned.append((source, *_member_tasks(entry, source, limits)))
            else:
                skipped.append((NESTED if role == "archive" else NOT_A_PAGE, source))
    except OCRError as exc:
        failure = exc
    for reason, source in sorted(skipped, key=lambda s: s[1]):
        result.skip(reason, source)
    return sorted(planned, key=lambda p: p[0]), failure


def _label(name: str) -> str:
    """A member's name in ``source``: as the archive stores it, without the "./" tar puts first."""
    while name.startswith("./"):
        name = name[2:]
    return name


# ---------------------------------------------------------------- the plan


def _admit(result: Plan, first_of: dict[str, str], source: str, digest: str | None, count: bool = True) -> bool:
    """True for an input not seen before (by content); a repeat is noted as a duplicate. ``count``:
    it is one input (an archive is not: its members are)."""
    if digest is not None and digest in first_of:
        result.duplicates.append((source, first_of[digest]))
        return False
    if digest is not None:
        first_of[digest] = source
    result.inputs += count
    return True


def _hash(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except OSError:
        return None  # unreadable: planning it reports why


def _plan_file(path: Path, limits: PdfLimits, max_members: int, result: Plan, first_of: dict[str, str]) -> None:
    """The tasks of one file: its pages, or an archive's members' pages (then its own error, if any, last)."""
    source, digest = str(path), _hash(path)
    kind = archive_kind(path.name, _head_of(path))
    if not _admit(result, first_of, source, digest, count=kind is None):
        return
    if kind is None:
        result.tasks += _pages_of(path, source, digest, limits)
        return
    members, failure = _archive_members(path, kind, limits, max_members, result)
    for member_source, member_digest, tasks in members:
        if _admit(result, first_of, member_source, member_digest):
            result.tasks += tasks
    if failure is not None:
        result.tasks.append(_error_task(source, digest, "archive", failure))


def plan(arguments: Iterable[str | Path], limits: PdfLimits = DEFAULT_LIMITS, max_members: int = MAX_MEMBERS) -> Plan:
    """Expand ``arguments`` and turn every distinct input into its page tasks; an argument that names
    nothing is one ``not_found`` task (its source: the argument as given)."""
    result = Plan()
    first_of: dict[str, str] = {}
    for text, files, exists in _each_argument(arguments, result):
        if not exists:
            result.missing.append(text)
            result.tasks.append(_error_task(text, None, "image", _not_found(text)))
        elif not files:
            result.empty.append(text)
        for path in files:
            _plan_file(path, limits, max_members, result, first_of)
    return result


def _not_found(text: str) -> NotFoundError:
    """The message says what was looked for, not where (the source already names the argument)."""
    if glob.has_magic(text):
        return NotFoundError("no file matches this pattern")
    return NotFoundError()
