"""Zip and tar archives as batch inputs: their members listed, sized, read in memory, never extracted.

A member is named by the archive's path and its own name, ``scans.zip!2024/inv1.pdf``. Nothing is
ever written to disk, so a member name such as ``../../etc/passwd`` (zip-slip) is only a label. Each
member is bounded by the same byte limit as a file (``ocr.imageio.MAX_BYTES``), checked on its declared
size before any byte is decompressed and again while reading; an archive of more entries than the
member limit is refused as a whole, before any member is read.

A worker gets a :class:`Member` in its task and reads the bytes itself (:func:`read_member`): a zip
member by name, a tar member at its data offset in the (decompressed) stream. The archive stays open
in the worker between pages (:func:`_opened`), so the pages of a tar.gz read in order are decompressed
once, not once per page.
"""

from __future__ import annotations

import functools
import os
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from ocr.errors import OCRError

#: entries an archive may hold (folders and skipped files included): ``--max-members``
MAX_MEMBERS = 10_000
#: names that mark an archive whatever its bytes (a tar is also recognised by its "ustar" header)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
#: what a damaged archive or member raises while it is listed or read
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error, OSError,
           ValueError, NotImplementedError, RuntimeError)


class ArchiveInvalidError(OCRError):
    """The archive, or one member, cannot be read (damaged, truncated, encrypted, an unknown compression)."""

    code = "archive_invalid"
    default_message = "the archive is damaged or truncated"


class ArchiveTooManyMembersError(OCRError):
    """More entries than ``--max-members``: refused before any member is read."""

    code = "archive_too_many_members"
    default_message = "the archive has too many members"


@dataclass(frozen=True)
class Member:
    """Where a worker finds a member's bytes: the archive's path, the member's name, and for a tar its
    data offset in the decompressed stream (None for a zip, read by name) and its size."""

    archive: str
    name: str
    offset: int | None = None
    size: int = 0


@dataclass
class Entry:
    """One regular file of an archive while it is planned: where it is, its first bytes and a stream for
    the rest (valid until the next entry), or the error that stops this member alone."""

    member: Member
    head: bytes = b""
    stream: IO[bytes] | None = None
    error: OCRError | None = None


def archive_kind(name: str, head: bytes) -> str | None:
    """"zip" or "tar" from a file's name or first bytes (at least 262 of them for a tar), else None."""
    lower = name.lower()
    if lower.endswith(".zip") or head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if lower.endswith(ARCHIVE_SUFFIXES[1:]) or head[257:262] == b"ustar":
        return "tar"
    return None


def is_hidden(name: str) -> bool:
    """A member under a hidden folder or a hidden file, or macOS's ``__MACOSX`` copies: skipped as a
    hidden file is in a folder (they are not pages, and ``._x.pdf`` is not a PDF)."""
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]  # "./a.png", as tar writes it, is not hidden
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def entries(path: Path, kind: str, head_bytes: int, max_members: int = MAX_MEMBERS) -> Iterator[Entry]:
    """The archive's regular files in the archive's own order. Raises :class:`ArchiveTooManyMembersError`
    before the first entry, or :class:`ArchiveInvalidError` where damage stops the listing (the entries
    before it are good)."""
    try:
        yield from (_zip_entries if kind == "zip" else _tar_entries)(path, head_bytes, max_members)
    except OCRError:
        raise
    except _DAMAGE:
        raise ArchiveInvalidError() from None


def _zip_entries(path: Path, head_bytes: int, max_members: int) -> Iterator[Entry]:
    """A zip's members by its central directory; one that cannot be opened (encrypted, an unknown
    compression, damaged) is an entry with its error, and the next one is still read."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        _check_count(len(infos), max_members)
        for info in infos:
            if info.is_dir():
                continue
            member = Member(str(path), info.filename, None, info.file_size)
            try:
                with zf.open(info) as stream:
                    yield Entry(member, stream.read(head_bytes), stream)
            except _DAMAGE:
                yield Entry(member, error=ArchiveInvalidError(MEMBER_DAMAGED))


def _tar_entries(path: Path, head_bytes: int, max_members: int) -> Iterator[Entry]:
    """A tar's regular files. The headers are listed first, so the limit holds before any member is read;
    then the members are read in stream order (a tar.gz is decompressed twice in all, never per member)."""
    with tarfile.open(path, "r:*") as tf:
        infos, damaged = _tar_headers(tf, max_members)
        for info in infos:
            if not info.isreg() or info.issparse():
                continue  # folders, links, devices: no bytes of their own
            member = Member(str(path), info.name, info.offset_data, info.size)
            try:
                stream = tf.extractfile(info)
                yield Entry(member, stream.read(head_bytes), stream)
            except _DAMAGE:
                yield Entry(member, error=ArchiveInvalidError(MEMBER_DAMAGED))
        if damaged:
            raise ArchiveInvalidError()


def _tar_headers(tf: tarfile.TarFile, max_members: int) -> tuple[list[tarfile.TarInfo], bool]:
    """A tar's headers up to the end or to the damage (a truncated download), and whether it is damaged."""
    infos: list[tarfile.TarInfo] = []
    try:
        while (info := tf.next()) is not None:
            infos.append(info)
            _check_count(len(infos), max_members, exact=False)
    except _DAMAGE:
        return infos, True
    return infos, False


def _check_count(count: int, max_members: int, exact: bool = True) -> None:
    """Refuse an archive of more than ``max_members`` entries (a tar's count is known only up to the limit)."""
    if count > max_members:
        what = f"{count} members" if exact else f"more than {max_members} members"
        raise ArchiveTooManyMembersError(f"the archive has {what}, over the limit of {max_members} "
                                         "(--max-members): split it, or raise the limit")


#: the message of a member that cannot be read while the rest of its archive can
MEMBER_DAMAGED = "this member of the archive is damaged, encrypted or compressed in an unknown way"


def read_rest(entry: Entry, max_bytes: int) -> bytes:
    """The whole member, its head included; never more than ``max_bytes + 1`` bytes are decompressed."""
    try:
        return entry.head + entry.stream.read(max_bytes + 1 - len(entry.head))
    except _DAMAGE:
        raise ArchiveInvalidError(MEMBER_DAMAGED) from None


def read_member(member: Member, max_bytes: int) -> bytes:
    """A member's bytes, in a worker. The archive is re-opened (kept open for the next page)."""
    try:
        stat = os.stat(member.archive)
        archive = _opened(member.archive, (stat.st_mtime_ns, stat.st_size))
        if isinstance(archive, zipfile.ZipFile):
            with archive.open(member.name) as stream:
                return stream.read(max_bytes + 1)
        archive.fileobj.seek(member.offset)
        return archive.fileobj.read(min(member.size, max_bytes + 1))
    except FileNotFoundError:
        raise ArchiveInvalidError("the archive is gone") from None
    except (KeyError, *_DAMAGE):
        raise ArchiveInvalidError(MEMBER_DAMAGED) from None


@functools.lru_cache(maxsize=2)
def _opened(archive: str, version: tuple[int, int]) -> Any:
    """The archive, open: a worker reads page after page of the same archive. ``version`` (modification
    time, size) opens it again if it was replaced."""
    with open(archive, "rb") as f:
        kind = archive_kind(archive, f.read(512))
    return zipfile.ZipFile(archive) if kind == "zip" else tarfile.open(archive, "r:*")
