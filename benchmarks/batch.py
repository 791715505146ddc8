"""Batch throughput: ``python -m ocr batch`` with --workers 1, --workers 2 and --ray (local).

    python -m benchmarks.batch --pages 300                     # generated pages (training.samples, each stamped unique)
    python -m benchmarks.batch --pages 300 --eval              # and the eval page sets (measured only)
    python -m benchmarks.batch --pages 20 --write-md BENCHMARKS.md

Each configuration runs the real CLI in its own process group, as a user would. Reported per run:
wall time (model loading included), the steady rate (pages/s between the first and the last
record, so start-up is left out), and the peak RSS of each worker process (sampled from /proc
every 0.2 s: pool workers and Ray workers are all descendants of the CLI process). Then the
scaling ratio (2 workers / 1) and Ray / pool at 2 workers, against the targets >= 1.7x and within 15%.

Resume check: a run is SIGKILLed (its whole process group) after a few records, half a record is
appended as a write cut by the kill would leave it, then ``--resume`` runs; every planned page
must be in the output exactly once.

Pages are distinct on purpose: the batch reads identical bytes once, so copies would measure nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ocr.settings import EVAL_ROOT, ROOT

EVAL_SETS = sorted(EVAL_ROOT.glob("*_pages/images"))
START, END = "<!-- batch:start -->", "<!-- batch:end -->"


# ---------------------------------------------------------------- pages


def generate_pages(folder: Path, count: int) -> Path:
    """``count`` distinct page images: the demo's page samples in turn, each stamped with its number."""
    from PIL import Image, ImageDraw, ImageFont

    from training.samples import SAMPLES

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == count:
        return folder
    bases = [s() for name, s in SAMPLES.items() if name != "line_zh"]
    font = ImageFont.load_default()
    for i in range(count):
        image = Image.fromarray(bases[i % len(bases)].image)
        ImageDraw.Draw(image).text((8, image.height - 14), f"No. {i:05d}", fill=(40, 40, 40), font=font)
        image.save(folder / f"page_{i:05d}.png")
    return folder


# ---------------------------------------------------------------- watching a run


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _rss_and_cmd(pid: int) -> tuple[int, str]:
    """(RSS in KiB, command line) of a process; (0, "") once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return 0, ""
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return rss, cmd


def is_worker(cmd: str) -> bool:
    """A pool worker (spawned) or a Ray actor reading pages; not a helper (resource tracker, raylet,
    GCS, idle Ray workers), whose memory is the price of the backend, not of a worker."""
    return ("multiprocessing.spawn" in cmd and "resource_tracker" not in cmd) or "RayPageReader" in cmd


@dataclass
class Watch:
    """What a sampler thread saw of one run: peak RSS per process, record count over time."""

    peak_kib: dict[int, int] = field(default_factory=dict)
    commands: dict[int, str] = field(default_factory=dict)
    first_record: float | None = None
    last_record: float | None = None
    records: int = 0

    def sample(self, root: int, out: Path) -> None:
        for pid in [root] + descendants(root):
            rss, cmd = _rss_and_cmd(pid)
            if rss and rss > self.peak_kib.get(pid, 0):
                self.peak_kib[pid], self.commands[pid] = rss, cmd
        count = count_records(out)
        now = time.perf_counter()
        if count and self.first_record is None:
            self.first_record = now
        if count > self.records:
            self.records, self.last_record = count, now

    def worker_peaks_mb(self, root: int) -> list[float]:
        peaks = [kib / 1024 for pid, kib in self.peak_kib.items() if pid != root and is_worker(self.commands[pid])]
        return sorted(peaks, reverse=True)


def count_records(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


# ---------------------------------------------------------------- one run


@dataclass
class Run:
    name: str
    pages: int
    wall_s: float
    steady_pages_s: float | None
    worker_peak_mb: list[float]
    driver_peak_mb: float
    exit_code: int


def batch_command(inputs: list[Path], out: Path, workers: int | None, ray: bool, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "ocr", "batch", *map(str, inputs), "--out", str(out), "--no-progress"]
    if workers:
        cmd += ["--workers", str(workers)]
    if resume:
        cmd.append("--resume")
    return cmd + (["--ray"] if ray else [])


def start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def watched(proc: subprocess.Popen, out: Path, stop_after: int | None = None) -> Watch:
    """Sample ``proc`` until it ends, or SIGKILL its process group once ``stop_after`` records exist."""
    watch = Watch()
    while proc.poll() is None:
        watch.sample(proc.pid, out)
        if stop_after is not None and watch.records >= stop_after:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    watch.sample(proc.pid, out)
    return watch


def measure(name: str, inputs: list[Path], workers: int | None, ray: bool, tmp: Path) -> Run:
    out = tmp / f"{name}.jsonl"
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = start(batch_command(inputs, out, workers, ray))
    watch = watched(proc, out)
    wall = time.perf_counter() - started
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        print(f"{name} failed ({proc.returncode}):\n{err[-2000:]}", file=sys.stderr)
    steady = None
    if watch.records > 1 and watch.last_record and watch.first_record and watch.last_record > watch.first_record:
        steady = (watch.records - 1) / (watch.last_record - watch.first_record)
    return Run(name, watch.records, round(wall, 1), steady and round(steady, 3),
               [round(m) for m in watch.worker_peaks_mb(proc.pid)], round(watch.peak_kib.get(proc.pid, 0) / 1024),
               proc.returncode)


# ---------------------------------------------------------------- resume after a kill


def resume_check(inputs: list[Path], tmp: Path, kill_after: int, workers: int = 2) -> dict:
    """Kill a run after ``kill_after`` records, tear its tail, resume: every page exactly once?"""
    from ocr.batch.inputs import plan

    out = tmp / "killed.jsonl"
    out.unlink(missing_ok=True)
    watched(start(batch_command(inputs, out, workers, False)), out, stop_after=kill_after)
    before = count_records(out)
    with open(out, "ab") as f:
        f.write(b'{"source": "torn by the kill", "pa')  # as a write cut by SIGKILL would leave it
    resumed = start(batch_command(inputs, out, workers, False, resume=True))
    resumed.wait()
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    got = [(r["sha256"], r["page"]) for r in records]
    want = {(t.sha256, t.page) for t in plan(inputs).tasks}
    return {"records_before_resume": before, "records_after": len(records), "planned": len(want),
            "lost": len(want - set(got)), "repeated": len(got) - len(set(got)),
            "passed": resumed.returncode in (0, 1) and set(got) == want and len(got) == len(set(got))}


# ---------------------------------------------------------------- report


def compare(runs: dict[str, Run]) -> dict:
    rate = {name: run.steady_pages_s for name, run in runs.items()}
    out: dict = {}
    if rate.get("workers 1") and rate.get("workers 2"):
        out["scaling_1_to_2"] = round(rate["workers 2"] / rate["workers 1"], 2)
    if rate.get("workers 2") and rate.get("ray local"):
        out["ray_vs_pool_2"] = round(rate["ray local"] / rate["workers 2"], 2)
    return out


def table(title: str, runs: dict[str, Run]) -> str:
    rows = [f"**{title}**", "", "| run | pages | wall s | steady pages/s | peak RSS per worker MB | driver MB |",
            "|---|---:|---:|---:|---|---:|"]
    for run in runs.values():
        rows.append(f"| {run.name} | {run.pages} | {run.wall_s} | {run.steady_pages_s} | "
                    f"{', '.join(map(str, run.worker_peak_mb)) or '-'} | {run.driver_peak_mb} |")
    ratios = compare(runs)
    rows += ["", f"scaling 1 -> 2 workers: {ratios.get('scaling_1_to_2', '-')}x (target >= 1.7); "
             f"Ray / pool at 2: {ratios.get('ray_vs_pool_2', '-')} (target >= 0.85)"]
    return "\n".join(rows)


def run_set(title: str, inputs: list[Path], tmp: Path, configs: list[str]) -> tuple[str, dict]:
    spec = {"w1": ("workers 1", 1, False), "w2": ("workers 2", 2, False), "ray": ("ray local", 2, True)}
    runs = {}
    for key in configs:
        name, workers, ray = spec[key]
        runs[name] = measure(f"{title}-{key}", inputs, workers, ray, tmp)
        runs[name].name = name
        print(f"  {title} {name}: {asdict(runs[name])}", file=sys.stderr)
    return table(title, runs), {"runs": {k: asdict(v) for k, v in runs.items()}, **compare(runs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=300, help="generated pages (default 300)")
    parser.add_argument("--eval", action="store_true", help="also the eval page sets (measuring only)")
    parser.add_argument("--configs", default="w1,w2,ray", help="of w1, w2, ray (default all)")
    parser.add_argument("--kill-after", type=int, default=5, help="records before the resume check's SIGKILL")
    parser.add_argument("--note", default="", help="a line above the tables, e.g. what else ran on the machine")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--write-md", type=Path, help="put the tables in this markdown file's batch section")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ocr_batch_bench")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    pages = generate_pages(args.work / f"pages_{args.pages}", args.pages)
    parts, figures = [], {}
    md, figures["generated"] = run_set(f"{args.pages} generated pages", [pages], args.work, configs)
    parts.append(md)
    if args.eval and EVAL_SETS:
        md, figures["eval"] = run_set("eval page sets", EVAL_SETS, args.work, configs)
        parts.append(md)
    figures["resume_after_kill"] = resume_check([pages], args.work, args.kill_after)
    parts.append(f"resume after SIGKILL: {figures['resume_after_kill']}")
    report = "\n\n".join(([args.note] if args.note else []) + parts)
    print(report)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.write_md:
        from benchmarks.report import write_marked_section

        write_marked_section(args.write_md, START, END, "## Batch reading (python -m ocr batch)\n\n" + report)
    return 0 if figures["resume_after_kill"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
