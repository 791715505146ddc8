"""``python -m benchmarks.loadtest``: the load run (default) or ``--soak N``; prints a report, updates RELIABILITY.md.

Exit status 0 when the pass criteria held: load — no status other than 200/429/503, no hang,
every refusal JSON, and 200 again per endpoint once the load drained; soak — see
:func:`benchmarks.loadtest.runner.soak_verdict`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shlex
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

from benchmarks.loadtest import report
from benchmarks.loadtest.runner import mixed_plan, run_load, run_soak, soak_plan, soak_verdict
from benchmarks.loadtest.server import AppServer, ROOT, sample_process
from benchmarks.loadtest.workload import ENDPOINTS, load_examples
from ocr.settings import Settings

log = logging.getLogger("benchmarks.loadtest")


def parse_mix(text: str) -> list[tuple[str, int]]:
    """``rest_ocr:3,gradio_ocr:1`` -> [("rest_ocr", 3), ("gradio_ocr", 1)]."""
    mix = []
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        if name not in ENDPOINTS:
            raise argparse.ArgumentTypeError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}")
        mix.append((name, int(weight or 1)))
    return mix


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--soak", type=int, metavar="N", help="soak run: N requests in a row instead of the load run")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients of the load run (32)")
    p.add_argument("--requests", type=int, default=500, help="request budget of the load run (500)")
    p.add_argument("--mix", type=parse_mix, default=parse_mix("rest_ocr:3,gradio_ocr:1"),
                   help="endpoints and weights of the load run (rest_ocr:3,gradio_ocr:1; also rest_explain)")
    p.add_argument("--examples", nargs="*", help="example stems to use (default: all of examples/index.jsonl)")
    p.add_argument("--same-image", action="store_true",
                   help="send the examples unchanged (the pipeline's cache answers repeats); default: a new image each time")
    p.add_argument("--url", help="drive an app already running at this loopback URL instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for the soak's RSS/fd samples")
    p.add_argument("--threads", type=int, default=2, help="the server's OCR_THREADS (2)")
    p.add_argument("--workers", type=int, help="the server's OCR_API_WORKERS (app default 1)")
    p.add_argument("--queue", type=int, help="the server's OCR_API_QUEUE (app default 4)")
    p.add_argument("--server-timeout", type=float, help="the server's OCR_API_TIMEOUT in s (app default 120)")
    p.add_argument("--ui-queue", type=int, help="the server's OCR_UI_QUEUE: Gradio events allowed to wait (app default 8)")
    p.add_argument("--ui-sessions", type=int,
                   help="the server's OCR_UI_SESSIONS: Gradio sessions kept in memory (app default 1000; the soak "
                        "uses 20 unless set)")
    p.add_argument("--cache-mb", type=int,
                   help="the server's OCR_CACHE_MB: the page-result cache's memory (app default 256; the soak uses "
                        "64 unless set)")
    p.add_argument("--gradio-cache-ttl", type=int,
                   help="the server's OCR_GRADIO_CACHE_TTL in s (app default 3600; the soak uses 60 unless set)")
    p.add_argument("--timeout", type=float, default=180.0, help="client timeout per request in s; later = hang (180)")
    p.add_argument("--backoff", type=float, default=1.0, help="a client's pause after a 429/503, s (1)")
    p.add_argument("--max-minutes", type=float, default=60.0, help="no new request after this long (60)")
    p.add_argument("--sample-every", type=int, default=50, help="soak: process sample every N requests (50)")
    p.add_argument("--warmup", type=float, default=0.1, help="soak: fraction of requests that is warm-up (0.1)")
    p.add_argument("--out", type=Path, default=ROOT / "RELIABILITY.md", help="markdown report to update")
    p.add_argument("--no-report", action="store_true", help="print only; leave RELIABILITY.md alone")
    p.add_argument("--section", help="name of the report section to (re)write (default: load or soak)")
    p.add_argument("--plot", type=Path, default=ROOT / "reliability_soak.png", help="soak plot (PNG)")
    p.add_argument("--json", type=Path, help="raw figures (default runs/loadtest/<run>-<time>.json)")
    p.add_argument("--machine", default="a shared 2-core CPU (other jobs, e.g. model training, ran beside it)",
                   help="how to describe the machine in the report")
    return p


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = {}
    for name, value in (("OCR_API_WORKERS", args.workers), ("OCR_API_QUEUE", args.queue),
                        ("OCR_API_TIMEOUT", args.server_timeout), ("OCR_UI_QUEUE", args.ui_queue),
                        ("OCR_UI_SESSIONS", args.ui_sessions), ("OCR_CACHE_MB", args.cache_mb),
                        ("OCR_GRADIO_CACHE_TTL", args.gradio_cache_ttl)):
        if value is not None:
            env[name] = str(int(value) if float(value).is_integer() else value)
    if args.soak:  # the app's bounds, scaled down so that a run of minutes reaches its steady state
        env.setdefault("OCR_GRADIO_CACHE_TTL", "60")
        env.setdefault("OCR_UI_SESSIONS", "20")
        env.setdefault("OCR_CACHE_MB", "64")
    return env


def setup_text(args: argparse.Namespace, env: dict[str, str]) -> str:
    child = Settings.from_env({**os.environ, **env})  # what the started app will parse
    effective = {"OCR_THREADS": args.threads, "OCR_API_WORKERS": child.api_workers, "OCR_API_QUEUE": child.api_queue,
                 "OCR_API_TIMEOUT": f"{child.api_timeout:g}", "OCR_UI_CONCURRENCY": child.ui_concurrency,
                 "OCR_UI_QUEUE": child.ui_queue, "OCR_UI_SESSIONS": child.ui_sessions,
                 "OCR_CACHE_MB": f"{child.cache_mb:g}", "OCR_GRADIO_CACHE_TTL": child.gradio_cache_ttl}
    server = ("an app already running at " + args.url) if args.url else \
        "`python app.py` (REST API + Gradio UI in one uvicorn process) started on 127.0.0.1 by the run, " + \
        ", ".join(f"{k}={v}" for k, v in effective.items())
    images = "the examples unchanged" if args.same_image else \
        "a new image per request (an example with one corner pixel changed, so the pipeline's result cache never answers)"
    return (f"Machine: {args.machine}. Server: {server}. Clients: Python threads with httpx on the same machine, "
            f"client timeout {args.timeout:g} s, pause {args.backoff:g} s after a 429/503; images: {images}.")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=Settings.from_env().log_level, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    # SIGTERM unwinds like Ctrl-C, so the server is always stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = "python -m benchmarks.loadtest" + ("" if not argv else " " + " ".join(shlex.quote(a) for a in argv))
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    env = server_env(args)
    if args.url and not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        print("error: --url must be a loopback address", file=sys.stderr)
        return 2
    setup = setup_text(args, env)
    ttl = float(Settings.from_env({**os.environ, **env}).gradio_cache_ttl)
    stale_after = ttl * 1.25 + 30 if ttl > 0 else None  # the TTL, one sweep period and some slack
    server = AppServer(threads=args.threads, env=env, stale_after=stale_after) if not args.url else None
    with server if server is not None else nullcontext():
        url = server.url if server is not None else args.url.rstrip("/")
        if args.soak:
            return soak(args, url, server, command, date, setup)
        return load(args, url, command, date, setup)


def _progress(total: int, every: int):
    def report_progress(done: int) -> None:
        if done % every == 0 or done == total:
            log.info("%d/%d requests", done, total)
    return report_progress


def load(args: argparse.Namespace, url: str, command: str, date: str, setup: str) -> int:
    examples = load_examples(args.examples)
    plan = mixed_plan(args.requests, args.mix, examples)
    result = run_load(url, plan, clients=args.clients, timeout=args.timeout, backoff=args.backoff,
                      unique=not args.same_image, max_seconds=args.max_minutes * 60,
                      serial_base=(int(time.time()) % 2**20) << 20, on_progress=_progress(len(plan), 50))
    s = result.summary
    passed = (not s.unexpected and s.non_json_errors == 0 and result.probe.failures == 0
              and all(v == "200" for v in result.recovered.values()) and not result.stopped_early)
    section = args.section or "load"
    text = report.load_markdown(result, command=command, date=date, setup=setup, passed=passed,
                                heading="## Load" if section == "load" else f"## Load: {section}")
    print(text)
    report.save_json(args.json or ROOT / "runs" / "loadtest" / f"load-{int(time.time())}.json",
                     {"command": command, "date": date, "setup": setup, "passed": passed, "clients": result.clients,
                      "summary": s, "probe": result.probe, "recovered": result.recovered,
                      "outcomes": result.outcomes})
    if not args.no_report:
        report_section(args.out, section, text)
    return 0 if passed else 1


def soak(args: argparse.Namespace, url: str, server: AppServer | None, command: str, date: str, setup: str) -> int:
    if server is not None:
        sample = server.sample
    elif args.pid:
        def sample(n: int, started: float):
            return sample_process(args.pid, n, started, None, None)
    else:
        print("error: a soak against --url needs --pid (the server's process id) for its samples", file=sys.stderr)
        return 2
    line = load_examples(["line_zh"])[0]
    pages = [e for e in load_examples(args.examples) if e.kind == "page"]
    plan = soak_plan(args.soak, line, pages)
    result = run_soak(url, plan, sample, sample_every=args.sample_every, warmup=args.warmup, timeout=args.timeout,
                      serial_base=(int(time.time()) % 2**20) << 20, on_progress=_progress(len(plan), 100))
    verdict = soak_verdict(result)
    plot = None
    if not args.no_report:
        plot = report.soak_plot(result, args.plot)
    rel_plot = _relative(plot, args.out.parent) if plot else None
    section = args.section or "soak"
    text = report.soak_markdown(result, verdict, command=command, date=date,
                                heading="## Soak" if section == "soak" else f"## Soak: {section}",
                                setup=setup + " Plan per 20 requests: REST line reads ×11, the line as a page ×4, "
                                "REST explanations (Grad-CAM + alignment) ×2, Gradio /ocr of the line ×2, one whole "
                                "page (REST and Gradio in turn); the single-line sample keeps 2,000 requests "
                                "within minutes on this CPU. The app's bounds are scaled down (unless set: Gradio "
                                "file TTL 60 s, 20 Gradio sessions, 64 MB page cache) so that the warm-up reaches the "
                                "steady state the defaults (3600 s, 1000, 256 MB) reach after hours.", plot=rel_plot)
    print(text)
    report.save_json(args.json or ROOT / "runs" / "loadtest" / f"soak-{int(time.time())}.json",
                     {"command": command, "date": date, "setup": setup, "verdict": verdict, "summary": result.summary,
                      "samples": result.samples, "hook_checks": result.hook_checks, "hooks_left": result.hooks_left,
                      "outcomes": result.outcomes})
    if not args.no_report:
        report_section(args.out, section, text)
    return 0 if verdict.passed else 1


def _relative(path: Path, base: Path) -> Path:
    try:
        return path.resolve().relative_to(base.resolve())
    except ValueError:
        return path


def report_section(path: Path, section: str, text: str) -> None:
    from benchmarks.report import write_marked_section

    start, end = report.marks(section)
    write_marked_section(path, start, end, text, title=report.TITLE)
    log.info("updated the %s section of %s", section, path)


if __name__ == "__main__":
    sys.exit(main())
