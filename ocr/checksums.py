"""Weight-file integrity, in one place for the recogniser and the detector.

Two questions are asked of every model file before it runs: is it the file
``SHA256SUMS`` recorded (a truncated download or a stray edit must be refused,
not half-used), and is an ONNX export still the export *of these weights*
(exports carry their source's SHA-256 in metadata, so retrained weights never
run behind a stale export). Each file is hashed once and the digest handed on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from ocr.errors import ModelLoadError
from ocr.report import sha256_of

log = logging.getLogger(__name__)

CHECKSUMS_NAME = "SHA256SUMS"
#: ONNX metadata key holding the SHA-256 of the torch weights it was exported from
SOURCE_KEY = "source_sha256"

class _SessionEngine(Protocol):
    session: Any  # an onnxruntime InferenceSession


Engine = TypeVar("Engine", bound=_SessionEngine)


def recorded_sha256(path: Path, checksums: Path | None = None) -> str | None:
    """The digest ``SHA256SUMS`` beside ``path`` (or ``checksums``) records for it, if any."""
    checksums = checksums or path.parent / CHECKSUMS_NAME
    if not checksums.exists():
        return None
    for line in checksums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            return parts[0]
    return None


def verify_checksum(path: Path, checksums: Path | None = None) -> str:
    """Refuse a file whose SHA-256 differs from the recorded one; return its digest."""
    try:
        digest = sha256_of(path)
    except OSError as exc:  # a directory, no permission: the same one-line refusal as a corrupt file
        raise ModelLoadError(f"weights file {path} could not be read: {exc.__class__.__name__}") from exc
    want = recorded_sha256(path, checksums)
    if want and digest != want:
        raise ModelLoadError(f"weights file {path} is corrupt (SHA-256 differs from {CHECKSUMS_NAME})")
    return digest


def current_export(weights: Path, open_engine: Callable[[Path], Engine], rebuild_hint: str,
                   weights_sha256: str | None = None) -> Engine | None:
    """``open_engine(export)`` for ``weights``' ONNX export if onnxruntime is installed and the
    export is intact and made from exactly these weights; else None (the caller runs torch).

    A corrupt export is refused like corrupt weights; a stale one is only warned about.
    ``weights_sha256``: the weights' digest when the caller has it already (from ``verify_checksum``).
    """
    path = weights.with_suffix(".onnx")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    if not path.exists():
        return None
    verify_checksum(path)
    engine = open_engine(path)
    source = engine.session.get_modelmeta().custom_metadata_map.get(SOURCE_KEY)
    if source != (weights_sha256 or sha256_of(weights)):
        log.warning("%s is stale (exported from other weights); using torch. %s", path, rebuild_hint)
        return None
    return engine
