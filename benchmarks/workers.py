"""The one worker harness of the benchmarks: every (system, threads) job runs in a fresh subprocess.

The parent writes the job as JSON and starts ``python -m <module> --worker JOB.json``; the worker
runs it and writes its result (or ``{"error": ...}``) to ``job.result_path``. Thread pools,
imports and memory never mix between systems, and one crashing system costs only its own row.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

#: a worker taking longer than this is abandoned (its system is reported as failed)
WORKER_TIMEOUT_S = 3 * 3600


def worker_main(job_path: str, job_type: type, run_job: Callable[[Any], dict[str, Any]],
                tag: Callable[[Any], str]) -> int:
    """The worker side: read the job, run it, write the result; a failure becomes the result's ``error``."""
    job = job_type(**json.loads(Path(job_path).read_text(encoding="utf-8")))
    logging.basicConfig(level=job.log_level, stream=sys.stderr,
                        format=f"%(asctime)s [{tag(job)}] %(message)s", datefmt="%H:%M:%S")
    try:
        result = run_job(job)
    except Exception as e:  # noqa: BLE001 - reported as the system's reason for missing
        log.error("worker failed:\n%s", traceback.format_exc())
        result = {"error": f"{type(e).__name__}: {e}"}
    Path(job.result_path).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


def spawn_worker(module: str, job: Any, job_path: Path, project: Path,
                 env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """The parent side: run ``job`` in ``python -m module --worker`` with ``project`` on the path; stderr passes through.

    OpenMP pools (torch's, tesseract's) sleep when idle instead of spinning, for every system alike:
    on the shared machine a spinning 2-thread worker starves its own other thread (EasyOCR at 2
    threads took 42 s wall / 30 s CPU for what took 10 s at 1 thread; tesseract was 5x slower at 2).
    """
    job_path.write_text(json.dumps(asdict(job)), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS=str(job.threads), OMP_WAIT_POLICY="PASSIVE", **(env_extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(project), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run([sys.executable, "-m", module, "--worker", str(job_path)], cwd=project, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"worker timed out after {WORKER_TIMEOUT_S} s"}
    result_path = Path(job.result_path)
    if not result_path.exists():
        return {"error": f"worker exited with status {proc.returncode} and wrote no result"}
    return json.loads(result_path.read_text(encoding="utf-8"))
