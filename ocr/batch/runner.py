"""The per-page function every backend runs, the process pool, and the loop that writes results.

:func:`read_page` turns a :class:`~ocr.batch.inputs.PageTask` into one record: the REST answer
plus ``source``, ``page`` and ``sha256``, or ``{"success": false, "source", "page", "sha256",
"error": {"code", "message"}}``. It never raises for a bad input, so one bad file never stops
a run of ten thousand.

:func:`run_pool` runs it in ``workers`` spawned processes, each loading the models once (the pool
initializer). Workers only compute; the parent alone writes (:func:`write_records`), in input
order, so the output is the same whatever the number of workers. Ctrl-C (or SIGTERM) asks for a
clean stop: the pool is terminated, every line written is whole, and a summary is printed; the
pages that were in the workers are simply read again by ``--resume``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ocr.batch.inputs import PageTask, task_bytes
from ocr.batch.output import JsonlWriter
from ocr.batch.reader import PageReader, ReaderFactory
from ocr.errors import OCRError
from ocr.imageio import quiet_pillow_warnings

log = logging.getLogger(__name__)

#: ``--fields``: the field extractor (REST answer dict -> fields dict), named so worker processes import it
FIELDS_HOOK = "ocr.fields:fields_for_answer"
FieldExtractor = Callable[[dict], dict]


# ---------------------------------------------------------------- one page


def base_record(task: PageTask) -> dict[str, Any]:
    return {"source": task.source, "page": task.page, "sha256": task.sha256}


def error_record(task: PageTask, code: str, message: str) -> dict[str, Any]:
    return {**base_record(task), "success": False, "error": {"code": code, "message": message}}


@functools.lru_cache(maxsize=1)
def render_limits() -> Any:
    """The ``OCR_PDF_*`` limits a worker reads documents with; the page count was checked by the plan
    (with ``--max-pages``), so it is not checked again here."""
    from ocr.settings import Settings

    return dataclasses.replace(Settings.from_env().pdf_limits(), max_pages=2**31)


def load_page(task: PageTask) -> Any:
    """The page's RGB pixels: the image, or page ``task.page`` of the document (a PDF or a multi-page
    TIFF, that page alone); from a file or an archive's member."""
    from ocr.document import Document
    from ocr.imageio import load_image

    data = task_bytes(task)
    if task.kind != "image":
        return Document(task.kind, data, render_limits()).page(task.page - 1)
    return load_image(data)


def read_page(task: PageTask, reader: PageReader, fields: FieldExtractor | None = None) -> dict[str, Any]:
    """One record for one page; every failure becomes an error record (never raised)."""
    if task.error is not None:
        return error_record(task, task.error["code"], task.error["message"])
    try:
        answer = reader(load_page(task))
    except OCRError as exc:
        return error_record(task, exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - one bad page must not end the run; the log has the trace
        log.exception("unexpected error reading %s page %s", task.source, task.page)
        return error_record(task, "internal_error", f"unexpected {exc.__class__.__name__}; see the log")
    record = {**base_record(task), **answer}
    if fields is not None:
        _add_fields(record, answer, fields)
    return record


def _add_fields(record: dict, answer: dict, fields: FieldExtractor) -> None:
    """Fields extracted from the answer; a failing extractor keeps the reading and says why."""
    try:
        record["fields"] = fields(answer)
    except Exception as exc:  # noqa: BLE001 - the OCR result is worth keeping without its fields
        log.exception("field extraction failed for %s page %s", record["source"], record["page"])
        record["fields_error"] = {"code": getattr(exc, "code", "fields_failed"), "message": str(exc)[:300]}


def resolve_fields(spec: str | None) -> FieldExtractor | None:
    """``"module:function"`` -> the function (workers resolve it themselves: specs pickle, code need not)."""
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise OCRError(f"field extraction is not available in this build ({spec}: {exc})") from None


# ---------------------------------------------------------------- worker processes

_WORKER: dict[str, Any] = {}


class WorkerFailed(Exception):
    """A worker could not start (the models did not load): the run stops with this message."""


def init_worker(factory: ReaderFactory, fields_spec: str | None) -> None:
    """Pool initializer: load the models once per process. Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    quiet_pillow_warnings()  # a worker's stderr is the command's: no library paths there
    try:
        _WORKER["reader"] = factory()
        _WORKER["fields"] = resolve_fields(fields_spec)
    except Exception as exc:  # noqa: BLE001 - raising here makes multiprocessing respawn forever
        _WORKER["failed"] = exc.message if isinstance(exc, OCRError) else f"{exc.__class__.__name__}: {exc}"


def pool_task(task: PageTask) -> dict[str, Any]:
    if "failed" in _WORKER:
        raise WorkerFailed(_WORKER["failed"])
    return read_page(task, _WORKER["reader"], _WORKER["fields"])


def default_workers() -> int:
    """The cores this process may use (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ---------------------------------------------------------------- stopping, progress, summary


class StopRequest:
    """SIGINT / SIGTERM -> a flag the loop checks between pages; a second Ctrl-C quits at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("\nstopping: the pages still in the workers will be read again by --resume (Ctrl-C again to quit at once)")

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class Summary:
    planned: int = 0
    skipped: int = 0
    read: int = 0
    errors: int = 0
    earlier_errors: int = 0  # error records a resumed run found in the output (they make the exit status 1)
    seconds: float = 0.0
    interrupted: bool = False
    error_codes: dict[str, int] = field(default_factory=dict)

    def add(self, record: dict) -> None:
        if "error" in record:
            self.errors += 1
            code = record["error"].get("code", "?")
            self.error_codes[code] = self.error_codes.get(code, 0) + 1
        else:
            self.read += 1

    @property
    def failed(self) -> bool:
        """Exit status 1: error records in the output, written now or by the run this one resumed."""
        return bool(self.errors or self.earlier_errors)

    def text(self) -> str:
        done = self.read + self.errors
        rate = done / self.seconds if self.seconds > 0 else 0.0
        parts = [f"{self.read} page(s) read", f"{self.errors} error(s)"]
        if self.error_codes:
            parts[-1] += " (" + ", ".join(f"{c}: {n}" for c, n in sorted(self.error_codes.items())) + ")"
        if self.skipped:
            parts.append(f"{self.skipped} already in the output (skipped)")
        if self.earlier_errors:
            parts.append(f"{self.earlier_errors} error record(s) from before in the output")
        head = "interrupted" if self.interrupted else "done"
        tail = f" -- {done} of {self.planned - self.skipped} to do" if self.interrupted else ""
        return f"{head}: " + ", ".join(parts) + f" in {self.seconds:.1f} s ({rate:.2f} pages/s){tail}"


def write_records(records: Iterable[dict], writer: JsonlWriter, summary: Summary, stop: StopRequest,
                  total: int, progress: bool = True) -> None:
    """The one writing loop of every backend: write, count, show progress; stop between records."""
    from tqdm import tqdm

    with tqdm(total=total, unit="page", disable=not progress, dynamic_ncols=True, smoothing=0.1) as bar:
        for record in records:
            writer.write(record)
            summary.add(record)
            bar.update(1)
            if stop.requested:
                break
    summary.interrupted = stop.requested or summary.read + summary.errors < total


# ---------------------------------------------------------------- the process pool


def _ordered(results: Any, count: int, stop: StopRequest) -> Iterator[dict]:
    """``imap`` results in order, waking every 0.2 s so a stop request is seen while a page is read."""
    for _ in range(count):
        while True:
            if stop.requested:
                return
            try:
                yield results.next(timeout=0.2)
                break
            except multiprocessing.TimeoutError:
                continue


def run_pool(tasks: list[PageTask], writer: JsonlWriter, summary: Summary, *, workers: int,
             factory: ReaderFactory, fields_spec: str | None = None, progress: bool = True) -> None:
    """Read ``tasks`` in ``workers`` processes; records go through :func:`write_records`."""
    if not tasks:
        return
    workers = max(1, min(workers, len(tasks)))
    # spawn: a clean interpreter per worker (no forked locks or threads of the parent)
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=init_worker,
                                                      initargs=(factory, fields_spec))
    clean = False
    try:
        with StopRequest() as stop:
            results = pool.imap(pool_task, tasks, chunksize=1)
            write_records(_ordered(results, len(tasks), stop), writer, summary, stop, len(tasks), progress)
        clean = not summary.interrupted
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if clean:
            pool.close()
        else:
            pool.terminate()
        pool.join()


def run_inline(tasks: list[PageTask], reader: PageReader, fields: FieldExtractor | None = None) -> Iterator[dict]:
    """The records of ``tasks`` read in this process (tests, and callers that already hold a reader)."""
    for task in tasks:
        yield read_page(task, reader, fields)
