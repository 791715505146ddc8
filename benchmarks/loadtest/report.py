"""RELIABILITY.md sections for the load and soak runs, the soak plot, and a JSON copy of the raw figures.

Each run owns one marked section (``benchmarks.report.write_marked_section``), so the load run, the
soak run and the hand-written parts of the file never overwrite one another.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from benchmarks.loadtest.runner import LoadResult, SoakResult, SoakVerdict
from benchmarks.loadtest.stats import Summary

log = logging.getLogger("benchmarks.loadtest")
TITLE = "# Reliability"


def marks(section: str) -> tuple[str, str]:
    """The markers of one run's section: ``load`` and ``soak`` by default, or a name given with --section."""
    return f"<!-- loadtest:{section}:start -->", f"<!-- loadtest:{section}:end -->"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _status_table(summary: Summary) -> list[str]:
    statuses = sorted(summary.by_status)
    endpoints = list(summary.by_endpoint)
    rows = ["| endpoint | " + " | ".join(statuses) + " | total |", "|---|" + "---:|" * (len(statuses) + 1)]
    for e in endpoints:
        counts = summary.by_endpoint[e]
        rows.append(f"| {e} | " + " | ".join(str(counts.get(s, 0)) for s in statuses)
                    + f" | {sum(counts.values())} |")
    rows.append("| **all** | " + " | ".join(f"**{summary.by_status[s]}**" for s in statuses)
                + f" | **{summary.requests}** |")
    return rows


def _latency_table(summary: Summary) -> list[str]:
    rows = ["| answers | p50 ms | p95 ms | p99 ms |", "|---|---:|---:|---:|"]
    for e, p in summary.latency_ok_by_endpoint_ms.items():
        if p["p50"] is not None:
            rows.append(f"| 200 from {e} | {_ms(p['p50'])} | {_ms(p['p95'])} | {_ms(p['p99'])} |")
    p = summary.latency_ok_ms
    rows.append(f"| 200, all | {_ms(p['p50'])} | {_ms(p['p95'])} | {_ms(p['p99'])} |")
    p = summary.latency_refused_ms
    if p["p50"] is not None:
        rows.append(f"| 429/503 refusals | {_ms(p['p50'])} | {_ms(p['p95'])} | {_ms(p['p99'])} |")
    return rows


def load_markdown(result: LoadResult, *, command: str, date: str, setup: str, passed: bool,
                  heading: str = "## Load") -> str:
    s = result.summary
    probe = result.probe
    probe_max = f"{max(probe.latencies) * 1000:,.0f} ms" if probe.latencies else "—"
    lines = [
        heading, "",
        f"`{command}` — {date}. {setup}", "",
        f"**{result.clients} clients, {s.requests} requests** in {s.wall_seconds:,.0f} s: "
        f"**{s.ok_per_second:.2f} answers 200/s**, {s.answered_per_second:.2f} answers/s of any status; "
        f"hangs (no answer within the client timeout): **{s.hangs}**; unexpected statuses "
        f"(5xx other than 503, other 4xx, failed events, connection errors): **{sum(s.unexpected.values())}**"
        f"{' ' + json.dumps(s.unexpected) if s.unexpected else ''}; error answers that were not JSON: "
        f"**{s.non_json_errors}**. Verdict: **{'held' if passed else 'FAILED'}**.", "",
        *_status_table(s), "",
        *_latency_table(s), "",
        "Refusals by code: " + (", ".join(f"`{k}` × {v}" for k, v in sorted(s.refusal_codes.items())) or "none")
        + f". Health endpoint polled during the load: {len(probe.latencies)} answers, slowest {probe_max}, "
        f"{probe.failures} failures. After the load drained, one more request per endpoint: "
        + ", ".join(f"{e} → {st}" for e, st in result.recovered.items())
        + (" (recovered by itself)." if all(v == "200" for v in result.recovered.values()) else " (NOT recovered)."),
    ]
    if result.stopped_early:
        lines.append("\nThe run hit its time limit before the request budget was spent.")
    return "\n".join(lines)


def soak_markdown(result: SoakResult, verdict: SoakVerdict, *, command: str, date: str, setup: str,
                  plot: Path | None, rows: int = 11, heading: str = "## Soak") -> str:
    s = result.summary
    step = max(1, (len(result.samples) - 1) // (rows - 1))
    shown = result.samples[::step]
    if shown[-1] is not result.samples[-1]:
        shown.append(result.samples[-1])
    table = ["| requests | minutes | RSS MB | open fds | TMPDIR files | Gradio cache files (dirs) | model hooks |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for x in shown:
        table.append(f"| {x.requests} | {x.seconds / 60:.1f} | {x.rss_mb:,.0f} | {x.fds} | {x.temp_files} | "
                     f"{x.gradio_files} ({x.gradio_dirs}) | {x.model_hooks} |")
    names = {"rss_growth_within_limit": "RSS growth after warm-up ≤ 10 %", "no_fd_growth": "no fd growth",
             "no_temp_file_growth": "no TMPDIR file growth",
             "no_gradio_file_growth": "Gradio cache swept (no file outlives TTL + sweep period)",
             "no_hooks_left": "no explanation hooks left on the model", "all_answered_200": "every request 200"}
    checks = "; ".join(f"{names.get(k, k)}: **{'yes' if v else 'NO'}**" for k, v in verdict.checks.items())
    lines = [
        heading, "",
        f"`{command}` — {date}. {setup}", "",
        f"**{s.requests} requests in a row** in {s.wall_seconds / 60:.1f} min "
        f"({s.ok_per_second:.2f}/s); statuses {json.dumps(s.by_status)}; latency of 200s p50/p95/p99 "
        f"{_ms(s.latency_ok_ms['p50'])}/{_ms(s.latency_ok_ms['p95'])}/{_ms(s.latency_ok_ms['p99'])} ms. "
        f"Warm-up: the first {result.warmup_requests} requests.", "",
        f"- RSS: {verdict.rss_start_mb:,.0f} MB after warm-up → {verdict.rss_end_mb:,.0f} MB at the end "
        f"(**{verdict.rss_growth:+.1%}**, peak {verdict.rss_max_mb:,.0f} MB).",
        f"- Open file descriptors: {verdict.fds_start} after warm-up → {verdict.fds_end} at the end "
        f"(max {max(x.fds for x in result.samples)}); by kind after warm-up {_kinds(result, first=True)}, "
        f"at the end {_kinds(result, first=False)}.",
        f"- Files in the server's TMPDIR (warm-up end / max / end): {'/'.join(map(str, verdict.temp_files))}; "
        f"in its GRADIO_TEMP_DIR: {'/'.join(map(str, verdict.gradio_files))}"
        + (f"; Gradio files older than the sweep allows, at any sample: "
           f"{max(x.gradio_stale for x in result.samples)}" if result.samples[-1].gradio_stale is not None else "")
        + ".",
        f"- Explanation hooks: the health endpoint's `model_hooks` was checked right after each of the "
        f"{result.hook_checks} explanations and at every sample: {result.hooks_left} found hooks left "
        f"(baseline {result.hooks_base}).",
        f"- Pass criteria — {checks}. Verdict: **{'passed' if verdict.passed else 'FAILED'}**.", "",
        *table,
    ]
    if plot is not None:
        lines += ["", f"![Soak: server RSS, open fds and temp files over {s.requests} requests]({plot.as_posix()})"]
    return "\n".join(lines)


def _kinds(result: SoakResult, *, first: bool) -> str:
    after = [x for x in result.samples if x.requests >= result.warmup_requests] or result.samples
    kinds = (after[0] if first else after[-1]).fd_kinds or {}
    return ", ".join(f"{k} {v}" for k, v in kinds.items()) or "—"


def soak_plot(result: SoakResult, path: Path) -> Path | None:
    """RSS, fds and temp-file counts against requests; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: the soak report has the table only")
        return None
    xs = [x.requests for x in result.samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    ax1.plot(xs, [x.rss_mb for x in result.samples], marker=".", color="tab:blue")
    ax1.axvline(result.warmup_requests, color="gray", linestyle="--", linewidth=1)
    after = [x for x in result.samples if x.requests >= result.warmup_requests]
    if after:
        ax1.axhline(after[0].rss_mb * 1.10, color="tab:red", linestyle=":", linewidth=1, label="warm-up RSS + 10 %")
        ax1.legend(loc="lower right", fontsize=8)
    ax1.set_ylabel("server RSS (MB)")
    ax1.set_title(f"Soak: {len(result.outcomes)} requests in a row")
    ax2.plot(xs, [x.fds for x in result.samples], label="open fds")
    ax2.plot(xs, [x.temp_files for x in result.samples], label="TMPDIR files")
    ax2.plot(xs, [x.gradio_files for x in result.samples], label="Gradio cache files")
    ax2.axvline(result.warmup_requests, color="gray", linestyle="--", linewidth=1)
    ax2.set_xlabel("requests")
    ax2.set_ylabel("count")
    ax2.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for prop in ("passed", "hangs", "unexpected"):
            if hasattr(type(obj), prop):
                out[prop] = to_jsonable(getattr(obj, prop))
        return out
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(payload), indent=1, ensure_ascii=False), encoding="utf-8")
