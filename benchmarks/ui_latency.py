"""How long the demo's Gradio events take against the pipeline's own time on the same images.

    python -m benchmarks.ui_latency [--threads 2] [--burst 16] [--out BENCHMARKS.md]

Starts ``app.py`` on a free loopback port (examples not pre-read) and drives it through
``gradio_client``, as a user's browser would be served:

* ``/ocr`` on each example, first read (the pipeline works) and again (its result is cached):
  wall time through Gradio vs the pipeline's own ``total`` from the answer's JSON;
* a preprocessing change (mode ``off``): a new read of the same image;
* ``/explain`` of line 1: wall time vs the explanation's own time (from the notes);
* ``--burst N``: N clients click an example at the same moment; all must be served.

Targets (issue 15): ``/ocr`` ≤ pipeline + 0.5 s; cached ≤ 0.5 s; ``/explain`` ≤ explanation + 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.loadtest.server import AppServer
from benchmarks.report import write_marked_section
from ocr.recognize.lm_choice import LM_DEFAULT
from ocr.settings import EXAMPLES_DIR, Settings

START, END = "<!-- ui:latency:start -->", "<!-- ui:latency:end -->"
#: the model the app reads with when the user picks none (``OCR_MODEL``, as the served app reads it)
APP_MODEL = Settings.from_env().model
#: the UI's reading controls in order (preprocessing mode, steps, 5 numbers, the model switch, the
#: language-model box), as a new user finds them: the app's model, its box at the default of the network that
#: reads first (auto's is the fast model)
DEFAULT_SETTINGS = ["auto", ["contrast", "deskew"], 7, 2.0, 11, 2, 0, APP_MODEL,
                    LM_DEFAULT["fast" if APP_MODEL == "auto" else APP_MODEL]]


def examples() -> list[Path]:
    entries = [json.loads(x) for x in (EXAMPLES_DIR / "index.jsonl").read_text(encoding="utf-8").splitlines() if x]
    return [EXAMPLES_DIR / e["image"] for e in entries]


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out


def _json(value: Any) -> Any:
    """A gr.JSON output as data (gradio_client may hand it back as a file path or a string)."""
    if isinstance(value, str):
        path = Path(value)
        return json.loads(path.read_text(encoding="utf-8") if path.exists() else value)
    return value


def pipeline_seconds(result: Any) -> float:
    """The pipeline's own total from the /ocr answer's JSON (0 for a cached result: no work)."""
    data = _json(result[4]) or {}
    return float((data.get("timings_ms") or {}).get("total", 0.0)) / 1000.0


def measure_image(client: Any, path: Path) -> dict[str, Any]:
    from gradio_client import handle_file

    upload = handle_file(str(path))
    first_s, first = timed(client.predict, upload, *DEFAULT_SETTINGS, api_name="/ocr")
    cached_s, _ = timed(client.predict, upload, *DEFAULT_SETTINGS, api_name="/ocr")
    off = ["off", *DEFAULT_SETTINGS[1:]]
    change_s, changed = timed(client.predict, upload, *off, api_name="/ocr")
    explain_s, explained = timed(client.predict, upload, *DEFAULT_SETTINGS, 0, -1, [], api_name="/explain")
    note = explained[5] if isinstance(explained[5], str) else (explained[5] or {}).get("value", "")
    found = re.search(r"· ([0-9.]+) s", note or "")
    return {"image": path.name, "lines": len((_json(first[4]) or {}).get("lines", [])),
            "ocr_s": first_s, "pipeline_s": pipeline_seconds(first), "cached_s": cached_s,
            "change_s": change_s, "change_pipeline_s": pipeline_seconds(changed),
            "explain_s": explain_s, "explanation_s": float(found.group(1)) if found else None}


def burst(url: str, path: Path, n: int) -> dict[str, Any]:
    """``n`` clients click the same example at once; how many were served and when the last finished."""
    from gradio_client import Client, handle_file

    clients = [Client(url + "/", verbose=False, download_files=False) for _ in range(n)]
    started = time.perf_counter()

    def one(client: Any) -> tuple[bool, float]:
        try:
            out = client.predict(handle_file(str(path)), *DEFAULT_SETTINGS, api_name="/ocr")
            return bool(out[0]), time.perf_counter() - started
        except Exception:  # noqa: BLE001 - counted as not served
            return False, time.perf_counter() - started

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, clients))
    return {"clients": n, "served": sum(ok for ok, _ in results), "last_s": max(t for _, t in results)}


def to_markdown(rows: list[dict], crowd: dict | None, command: str, threads: int,
                load: tuple[float, float] | None = None) -> str:
    """``load``: the 1-minute load average at the start and at the end (other work on the machine)."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    busy = ("" if load is None else f" Load average {load[0]:.2f} at the start, {load[1]:.2f} at the end (2 cores; "
            "this run itself keeps about one busy): absolute times move with other work; the overheads are the point.")
    out = ["## Demo latency (Gradio events vs the pipeline)", "",
           f"`{command}` on {when}, {threads} thread(s), through `gradio_client` against `python app.py` "
           f"(examples not pre-read), every control at its default (model: the app's default, {APP_MODEL}). Seconds. "
           "Overhead = Gradio event wall time − the pipeline's own time "
           "(from the answer's JSON; the explanation's own time from its notes); the client does not download the "
           "output pictures (a browser fetches the visible ones in parallel). Targets: `/ocr` overhead ≤ 0.5; "
           "cached `/ocr` ≤ 0.5; `/explain` overhead ≤ 0.3." + busy,
           "", "| image | lines | /ocr | pipeline | overhead | cached /ocr | preprocess change | its pipeline "
           "| /explain line 1 | explanation | overhead |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        exp = r["explanation_s"]
        exp_cell = "—" if exp is None else f"{exp:.2f}"
        over_cell = "—" if exp is None else f"{r['explain_s'] - exp:+.2f}"
        out.append(f"| {r['image']} | {r['lines']} | {r['ocr_s']:.2f} | {r['pipeline_s']:.2f} | "
                   f"{r['ocr_s'] - r['pipeline_s']:+.2f} | {r['cached_s']:.2f} | {r['change_s']:.2f} | "
                   f"{r['change_pipeline_s']:.2f} | {r['explain_s']:.2f} | {exp_cell} | {over_cell} |")
    if crowd:
        out += ["", f"Burst: {crowd['clients']} clients clicked `{crowd['image']}` at once: {crowd['served']} served, "
                    f"the last after {crowd['last_s']:.1f} s (no \"Queue is full\": the UI queue holds 64)."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--burst", type=int, default=16, help="clients clicking an example at once (0: skip)")
    p.add_argument("--out", type=Path, default=None, help="write the section into this markdown file")
    args = p.parse_args(argv)
    from gradio_client import Client

    load_start = os.getloadavg()[0]
    with AppServer(threads=args.threads) as server:
        client = Client(server.url + "/", verbose=False, download_files=False)  # the answer, not our downloads
        rows = []
        for path in examples():
            rows.append(measure_image(client, path))
            print(json.dumps(rows[-1]), flush=True)
        crowd = None
        if args.burst:
            crowd = {**burst(server.url, examples()[0], args.burst), "image": examples()[0].name}
            print(json.dumps(crowd), flush=True)
    command = "python -m benchmarks.ui_latency " + " ".join(argv if argv is not None else sys.argv[1:])
    report = to_markdown(rows, crowd, command.strip(), args.threads, (load_start, os.getloadavg()[0]))
    print(report)
    if args.out:
        write_marked_section(args.out, START, END, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
