"""``--ray [ADDRESS]``: the same per-page function as a Ray Data job, for more than one machine.

    python -m ocr batch invoices/ --out results.jsonl --ray              # a local Ray on this machine's cores
    python -m ocr batch invoices/ --out results.jsonl --ray auto         # the cluster this node belongs to
    python -m ocr batch invoices/ --out results.jsonl --ray ray://head:10001

The page tasks become a dataset (one block per page, so every actor gets work), mapped by
:class:`RayPageReader` -- a callable class, so Ray Data runs it in a pool of actors and each actor
loads the models once -- with one actor per CPU. The rows come back to the driver, in input
order, and go through the process pool's own writer: one output format and one ``--resume``
for both backends.

Ray is optional (``pip install -r requirements-ray.txt``) and imported only here, only when asked for.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Iterator

import numpy as np

from ocr.batch.inputs import PageTask
from ocr.batch.output import JsonlWriter
from ocr.batch.reader import ReaderFactory
from ocr.batch.runner import StopRequest, Summary, read_page, resolve_fields, write_records
from ocr.errors import OCRError
from ocr.settings import ROOT

log = logging.getLogger(__name__)


class RayNotInstalledError(OCRError):
    code = "ray_not_installed"
    default_message = "Ray is not installed: pip install -r requirements-ray.txt"


class RayJobError(OCRError):
    """The Ray job failed as a whole (no cluster, an actor could not load the models)."""

    code = "ray_failed"
    default_message = "the Ray job failed"


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the extra, not only the core
    except ImportError as exc:
        raise RayNotInstalledError(f"Ray Data is not installed ({exc}): pip install -r requirements-ray.txt") from None
    return ray


class RayPageReader:
    """One per actor: the reader is built once in ``__init__``; ``__call__`` reads a batch of tasks."""

    def __init__(self, factory: ReaderFactory, fields_spec: str | None) -> None:
        self.reader = factory()
        self.fields = resolve_fields(fields_spec)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        tasks = [PageTask.from_json(text) for text in batch["task"]]
        records = [read_page(task, self.reader, self.fields) for task in tasks]
        return {"record": [json.dumps(r, ensure_ascii=False) for r in records]}


def start_local(ray: Any, cpus: int) -> None:
    """A Ray on this machine with ``cpus`` CPUs, whose workers import this checkout with one thread each."""
    path = f"{ROOT}{os.pathsep}${{PYTHONPATH}}"  # Ray expands ${VAR} from the worker's own environment
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})


def connect(ray: Any, address: str | None, cpus: int) -> bool:
    """Join the cluster at ``address``, or start a local Ray with ``cpus`` CPUs; True if started here.

    A Ray already running in this process (a test's, a notebook's) is used as it is. On a cluster
    every node must have the project (the same checkout or container image) to import ``ocr``.
    """
    if ray.is_initialized():
        return False
    if address is None:
        start_local(ray, cpus)
    else:
        ray.init(address=address, logging_level=logging.WARNING,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    return True


def actor_count(ray: Any, workers: int | None) -> int:
    """``workers`` if given, else one actor per CPU of the cluster."""
    if workers:
        return workers
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _records(ray: Any, tasks: list[PageTask], actors: int, factory: ReaderFactory,
             fields_spec: str | None, stop: StopRequest) -> Iterator[dict]:
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # records in input order, as the process pool writes them
    context.enable_progress_bars = False  # ours shows pages/s and time left
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-run execution-plan chatter
    rows = [{"task": task.to_json()} for task in tasks]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    mapped = dataset.map_batches(RayPageReader, fn_constructor_args=(factory, fields_spec), batch_size=1,
                                 batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
    for row in mapped.iter_rows():
        yield json.loads(row["record"])
        if stop.requested:
            return


def run_ray(tasks: list[PageTask], writer: JsonlWriter, summary: Summary, *, address: str | None,
            workers: int | None, factory: ReaderFactory, fields_spec: str | None = None,
            progress: bool = True, local_cpus: int = 1) -> None:
    """Read ``tasks`` on Ray; records go through the same writer loop as the process pool."""
    if not tasks:
        return
    ray = import_ray()
    started_here = connect(ray, address, local_cpus)
    try:
        actors = min(actor_count(ray, workers), len(tasks))
        with StopRequest() as stop:
            records = _records(ray, tasks, actors, factory, fields_spec, stop)
            write_records(records, writer, summary, stop, len(tasks), progress)
    except KeyboardInterrupt:
        summary.interrupted = True
    except OCRError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray wraps worker failures in its own types
        raise RayJobError(f"the Ray job failed: {_short(exc)}") from None
    finally:
        if started_here:
            ray.shutdown()


def _short(exc: BaseException) -> str:
    """The innermost cause's one-line message (Ray's errors carry whole remote tracebacks)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return f"{exc.__class__.__name__}: {lines[-1] if lines else ''}"[:300]
