"""How a network runs: weight-file integrity, onnxruntime sessions, lazily built torch models, one engine chooser.

Reading text runs on onnxruntime exports and never imports torch (1.0 s and ~190 MB a
process); the torch networks are built only when explanations (or ``engine="torch"``) ask.

Two questions are asked of every model file before it runs: is it the file
``SHA256SUMS`` recorded (a truncated download or a stray edit must be refused,
not half-used), and is an ONNX export still the export *of these weights*
(exports carry their source's SHA-256 in metadata, so retrained weights never
run behind a stale export). Each file is hashed once and the digest handed on.

Int8 models (``X.int8.onnx`` beside ``X.pt``, ``python -m training.quantize``) carry two more
digests: ``source_sha256`` (the torch weights, as every export) and ``quantized_from_sha256`` (the
float export they were quantised from). One that is missing or stale is not an error: the model
runs float, with a log line. Which models run int8 by default (``INT8_BY_DEFAULT``) is the model
card's choice: those within 0.2 points char accuracy and 0.3 points F1 of float on every measured
set (weights/README.md, "Int8").
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Generic, Protocol, TypeVar

from ocr.errors import ModelLoadError

log = logging.getLogger(__name__)

CHECKSUMS_NAME = "SHA256SUMS"
#: ONNX metadata key holding the SHA-256 of the torch weights it was exported from
SOURCE_KEY = "source_sha256"
#: ONNX metadata keys of an int8 model: the float export's SHA-256 it was quantised from, and the recipe
QUANTIZED_FROM_KEY = "quantized_from_sha256"
QUANTIZATION_KEY = "quantization"
#: ``X.pt`` -> ``X.int8.onnx``
INT8_SUFFIX = ".int8.onnx"
#: what ``engine=`` may say: "auto" (the model card's default per model: int8 where it is within
#: bounds, else the float export when current, else torch), "torch", "onnx" (float), or
#: "onnx-int8" (every model's int8 file where it has a current one, float elsewhere)
ENGINES = ("auto", "torch", "onnx", "onnx-int8")
#: weights whose int8 model ``engine="auto"`` runs (weights/README.md, "Int8"): the small detector
#: (1.5-1.6x faster, F1 unchanged). The recognisers' int8 models lose more than 0.2 points char accuracy
#: on a validation set (fast: 0.9 on synthetic lines and IC15 words; accurate: 0.26-0.43 on IC15 words
#: wherever lines are batched otherwise than one pass over the slice, e.g. as the cascade's re-reads), so
#: they are opt-in (``engine="onnx-int8"``); the tiny detector measured no faster and stays float
INT8_BY_DEFAULT = frozenset({"det_small.pt"})
QUANTIZE_HINT = "run python -m training.quantize --only {model}"

T = TypeVar("T")


class _SessionEngine(Protocol):
    session: Any  # an onnxruntime InferenceSession


Engine = TypeVar("Engine", bound=_SessionEngine)


# ---------------------------------------------------------------- integrity


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (weights are megabytes; no torch import needed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recorded_checksums(checksums: Path) -> dict[str, str]:
    """File name -> SHA-256, as a ``sha256sum`` listing (``checksums``) records them; {} without one."""
    if not checksums.exists():
        return {}
    entries = (line.split() for line in checksums.read_text().splitlines())
    return {parts[1].lstrip("*"): parts[0] for parts in entries if len(parts) == 2}


def recorded_sha256(path: Path, checksums: Path | None = None) -> str | None:
    """The digest ``SHA256SUMS`` beside ``path`` (or ``checksums``) records for it, if any."""
    return recorded_checksums(checksums or path.parent / CHECKSUMS_NAME).get(path.name)


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


_read_once: dict[Path, Any] = {}
_read_once_lock = threading.Lock()


def read_checked_once(path: Path, reader: Callable[[Path], T], what: str, rebuild: str) -> T:
    """``reader(path)`` once per process (later calls share it), after ``verify_checksum``: the decoder's
    language data is read on first use, not at start-up. A missing or unreadable file is a ``ModelLoadError``
    naming ``what`` and how to ``rebuild`` it."""
    with _read_once_lock:
        if path not in _read_once:
            if not path.exists():
                raise ModelLoadError(f"{what} not found: {path.name} ({rebuild} rebuilds it)")
            verify_checksum(path)
            try:
                _read_once[path] = reader(path)
            except (OSError, ValueError, EOFError) as exc:
                raise ModelLoadError(f"{what} {path.name} could not be read: {exc.__class__.__name__}") from exc
        return _read_once[path]


# ---------------------------------------------------------------- onnxruntime


def cpu_session(path: Path, threads: int | None = None) -> Any:
    """A CPU ``InferenceSession`` with ``threads`` intra-op threads that never spin-wait.

    onnxruntime's workers spin after each run by default. A page alternates the detector,
    the recogniser and OpenCV, and this machine's second core is often someone else's: spinning
    threads took the cores the next step needed (paired on 30 busy-machine MTWI pages at 2
    threads, RapidOCR / pipeline time went from 1.8x to 2.7x without it; recogniser calls at 2
    threads beside another process: 6.2-6.5 ms at 0.75 cores instead of 4.1-9.7 ms at 1.0-1.4).
    The memory arena stays on (see ``ocr.detect.detector.OnnxDetEngine`` for that measured trade).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def current_export(weights: Path, open_engine: Callable[[Path], Engine], rebuild_hint: str,
                   weights_sha256: str | None = None) -> Engine | None:
    """``open_engine(export)`` for ``weights``' ONNX export if onnxruntime is installed and the
    export is intact and made from exactly these weights; else None (the caller runs torch).

    A corrupt export is refused like corrupt weights; a stale one is only warned about.
    ``weights_sha256``: the weights' digest when the caller has it already (from ``verify_checksum``).
    """
    path = weights.with_suffix(".onnx")
    engine = _open_verified(path, open_engine)
    if engine is None:
        return None
    source = engine.session.get_modelmeta().custom_metadata_map.get(SOURCE_KEY)
    if source != (weights_sha256 or sha256_of(weights)):
        log.warning("%s is stale (exported from other weights); using torch. %s", path, rebuild_hint)
        return None
    return engine


def _open_verified(path: Path, open_engine: Callable[[Path], Engine]) -> Engine | None:
    """``open_engine(path)`` when onnxruntime is installed and ``path`` exists (None otherwise);
    a file whose SHA-256 differs from ``SHA256SUMS`` is refused (``ModelLoadError``), like weights."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    if not path.exists():
        return None
    verify_checksum(path)
    return open_engine(path)


def int8_path(weights: Path) -> Path:
    """The int8 model of ``weights``: ``X.pt`` -> ``X.int8.onnx``."""
    return weights.with_name(weights.stem + INT8_SUFFIX)


def _int8_stale(metadata: dict[str, str], weights: Path, weights_sha256: str | None) -> str | None:
    """Why an int8 model's metadata does not fit ``weights`` and their float export, or None."""
    if metadata.get(SOURCE_KEY) != (weights_sha256 or sha256_of(weights)):
        return f"made from other weights than {weights.name}"
    float_export = weights.with_suffix(".onnx")
    if float_export.exists() and metadata.get(QUANTIZED_FROM_KEY) != sha256_of(float_export):
        return f"quantised from another {float_export.name}"
    return None


def current_int8(weights: Path, open_engine: Callable[[Path], Engine],
                 weights_sha256: str | None = None) -> Engine | None:
    """``open_engine(int8 model)`` if ``weights`` have an intact, current int8 model; else None
    (stale: with a warning; missing: ``choose_engine`` says so once the float model it runs instead loaded).

    A corrupt int8 file (its SHA-256 differs from ``SHA256SUMS``) is refused like any weights.
    """
    path = int8_path(weights)
    hint = QUANTIZE_HINT.format(model=weights.stem)
    engine = _open_verified(path, open_engine)
    if engine is None:
        return None
    why = _int8_stale(engine.session.get_modelmeta().custom_metadata_map, weights, weights_sha256)
    if why:
        log.warning("%s is stale (%s): running the float model. %s", path, why, hint)
        return None
    return engine


def wants_int8(engine: str, weights: Path) -> bool:
    """Whether ``engine`` asks for ``weights``' int8 model (see ``ENGINES``, ``INT8_BY_DEFAULT``)."""
    return engine == "onnx-int8" or (engine == "auto" and weights.name in INT8_BY_DEFAULT)


def choose_engine(engine: str, weights: Path, open_engine: Callable[[Path], Engine], rebuild_hint: str,
                  weights_sha256: str | None = None) -> Engine | None:
    """The one engine choice for recogniser and detector: an ONNX engine, or None for torch.

    ``engine`` (see ``ENGINES``): "auto" (the int8 model for ``INT8_BY_DEFAULT`` weights when it is
    current, else the float export beside ``weights`` when current, else torch), "torch", "onnx"
    (the float export; missing or stale: a :class:`ModelLoadError`) or "onnx-int8" (the int8 model
    when current, else as "onnx").
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "torch":
        return None
    if wants_int8(engine, weights):
        chosen = current_int8(weights, open_engine, weights_sha256)
        if chosen is not None:
            return chosen
    chosen = current_export(weights, open_engine, rebuild_hint, weights_sha256)
    if chosen is not None and wants_int8(engine, weights) and not int8_path(weights).exists():
        # said only now: weights that turn out unusable get their one error line, not this first
        log.info("%s not found: running the float model. To make it: %s", int8_path(weights).name,
                 QUANTIZE_HINT.format(model=weights.stem))
    if engine in ("onnx", "onnx-int8") and chosen is None:
        raise ModelLoadError(f"no current ONNX export beside {weights}: {rebuild_hint}")
    return chosen


def is_int8(session: Any) -> bool:
    """Whether an onnxruntime session runs an int8 model (``training.quantize`` records its recipe)."""
    return QUANTIZATION_KEY in session.get_modelmeta().custom_metadata_map


# ---------------------------------------------------------------- torch, built on first use


def set_torch_threads(threads: int | None) -> None:
    """torch's intra-op threads, set only once a torch model is in use (never imports torch before)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


class BuildOnce(Generic[T]):
    """``value`` if given, else ``build()`` on the first ``get()``; ``build`` is dropped after.

    The torch networks behind onnxruntime engines: only explanations need them, so they are
    built the first time one is asked for (and torch imported then). Threads may ask at the
    same time; one builds.
    """

    def __init__(self, value: T | None = None, build: Callable[[], T] | None = None) -> None:
        if value is None and build is None:
            raise ValueError("BuildOnce needs a value or a build function")
        self._value = value
        self._build = build
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    assert self._build is not None
                    self._value = self._build()
                    self._build = None
        return self._value


class TorchBehindEngine:
    """For a network run by an onnxruntime ``engine`` (or by torch when it is None) whose torch model
    is held in ``_model`` (a :class:`BuildOnce`): built on first use, since only explanations need it."""

    _model: BuildOnce[Any]
    engine: Any

    @property
    def model(self) -> Any:
        """The torch network, built on first use beside an onnxruntime engine."""
        return self._model.get()

    @property
    def model_built(self) -> bool:
        """Whether the torch network exists yet (see ``model``)."""
        return self._model.built

    @property
    def engine_name(self) -> str:
        """"torch", "onnxruntime" (the float export) or "onnxruntime-int8"."""
        if self.engine is None:
            return "torch"
        return "onnxruntime-int8" if is_int8(self.engine.session) else "onnxruntime"
