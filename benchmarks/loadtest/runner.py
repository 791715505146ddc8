"""The two runs: many concurrent clients for a request budget (load), and one long sequence (soak)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import httpx

from benchmarks.loadtest.server import ProcSample, health, wait_idle
from benchmarks.loadtest.stats import OVERLOAD_STATUSES, Summary, summarize
from benchmarks.loadtest.workload import Example, Outcome, make_call

log = logging.getLogger("benchmarks.loadtest")

Plan = list[tuple[str, Example]]  # (endpoint, example) per request, in order


def mixed_plan(requests: int, mix: Sequence[tuple[str, int]], examples: Sequence[Example]) -> Plan:
    """``requests`` requests: endpoints interleaved by weight, examples in turn (every pair occurs)."""
    cycle = [name for name, weight in mix for _ in range(weight)]
    if not cycle or not examples:
        raise ValueError("the mix and the examples must not be empty")
    return [(cycle[i % len(cycle)], examples[i % len(examples)]) for i in range(requests)]


@dataclass
class HealthProbe:
    """GET /api/v1/health every few seconds while the load runs: the server must keep answering."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0


@dataclass
class LoadResult:
    clients: int
    summary: Summary
    outcomes: list[Outcome]
    probe: HealthProbe
    recovered: dict[str, str]  # endpoint -> status of one request after the load drained
    stopped_early: bool


def _probe_health(url: str, stop: threading.Event, probe: HealthProbe, every: float) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.wait(every):
            started = time.perf_counter()
            try:
                health(client, url)
                probe.latencies.append(time.perf_counter() - started)
            except httpx.HTTPError:
                probe.failures += 1


def run_load(url: str, plan: Plan, *, clients: int = 32, timeout: float = 180.0, backoff: float = 1.0,
             unique: bool = True, max_seconds: float = 3600.0, serial_base: int = 0,
             health_every: float = 2.0, on_progress: Callable[[int], None] | None = None) -> LoadResult:
    """``clients`` threads share the plan; each waits ``backoff`` s after a 429/503 before its next request.

    Every request has the client ``timeout`` (an answer later than that is a hang); no new
    request starts after ``max_seconds``, so the run always ends.
    """
    calls = {name: make_call(name, unique, timeout) for name in {e for e, _ in plan}}
    counter = itertools.count()
    lock = threading.Lock()
    outcomes: list[Outcome] = []
    stop_at = time.perf_counter() + max_seconds
    stopped_early = threading.Event()

    def worker() -> None:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
            while True:
                with lock:
                    i = next(counter)
                if i >= len(plan):
                    return
                if time.perf_counter() > stop_at:
                    stopped_early.set()
                    return
                endpoint, example = plan[i]
                outcome = calls[endpoint](client, url, example, serial_base + i)
                with lock:
                    outcomes.append(outcome)
                    done = len(outcomes)
                if on_progress:
                    on_progress(done)
                if outcome.status in OVERLOAD_STATUSES and backoff > 0:
                    time.sleep(backoff)

    probe = HealthProbe()
    stop_probe = threading.Event()
    prober = threading.Thread(target=_probe_health, args=(url, stop_probe, probe, health_every), daemon=True)
    prober.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, name=f"client-{n}", daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    stop_probe.set()
    prober.join(15)
    recovered = check_recovery(url, plan, timeout=timeout, serial_base=serial_base + len(plan))
    return LoadResult(clients, summarize(outcomes, wall), outcomes, probe, recovered, stopped_early.is_set())


def check_recovery(url: str, plan: Plan, *, timeout: float = 180.0, serial_base: int = 0) -> dict[str, str]:
    """After the load: wait for the API to drain, then one request per endpoint must succeed."""
    recovered: dict[str, str] = {}
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
        if not wait_idle(client, url, timeout=timeout):
            log.warning("the API still had requests in flight after %.0f s", timeout)
        seen: dict[str, Example] = {}
        for endpoint, example in plan:
            seen.setdefault(endpoint, example)
        for i, (endpoint, example) in enumerate(sorted(seen.items())):
            for attempt in range(30):  # the Gradio queue may still be draining: 503 is allowed, briefly
                outcome = make_call(endpoint, True, timeout)(client, url, example, serial_base + 100 * i + attempt)
                if outcome.status not in OVERLOAD_STATUSES:
                    break
                time.sleep(2)
            recovered[endpoint] = outcome.status
    return recovered


# ---------------------------------------------------------------- soak


@dataclass
class SoakResult:
    summary: Summary
    outcomes: list[Outcome]
    samples: list[ProcSample]
    warmup_requests: int
    hook_checks: int          # health checks of the model's hooks right after an explanation
    hooks_left: int           # ... that found more hooks than before the run (must be 0)
    hooks_base: int | None    # hooks on the model before the first request (0)


def soak_plan(requests: int, line: Example, pages: Sequence[Example]) -> Plan:
    """Mostly the single-line sample (so 2,000 requests fit in minutes on 2 cores), every path covered.

    A cycle of 20: REST line reads (kind=line) x11, the line as a page (detection) x4, REST
    explanations (Grad-CAM hooks) x2, Gradio /ocr of the line x2, and one whole page, alternately
    through REST and Gradio, the page examples in turn.
    """
    as_page = Example(line.name, "page", line.rgb)
    cycle: list[tuple[str, Example | None]] = (
        [("rest_ocr", line)] * 6 + [("rest_ocr", as_page)] * 2 + [("rest_explain", line)]
        + [("gradio_ocr", line)] + [("rest_ocr", line)] * 5 + [("rest_ocr", as_page)] * 2
        + [("rest_explain", line)] + [("gradio_ocr", line)] + [("page", None)])
    plan: Plan = []
    page_turn = 0
    for i in range(requests):
        endpoint, example = cycle[i % len(cycle)]
        if example is None:
            endpoint = "rest_ocr" if page_turn % 2 == 0 else "gradio_ocr"
            example = pages[(page_turn // 2) % len(pages)]
            page_turn += 1
        plan.append((endpoint, example))
    return plan


def run_soak(url: str, plan: Plan, sample: Callable[[int, float], ProcSample], *, sample_every: int = 50,
             warmup: float = 0.1, timeout: float = 180.0, serial_base: int = 0,
             on_progress: Callable[[int], None] | None = None) -> SoakResult:
    """The plan one request after another; a process sample every ``sample_every`` requests.

    After every explanation the health endpoint's ``model_hooks`` must be 0: nothing else runs,
    so a hook still attached was left behind.
    """
    calls = {name: make_call(name, True, timeout) for name in {e for e, _ in plan}}
    outcomes: list[Outcome] = []
    samples: list[ProcSample] = []
    hook_checks = hooks_left = 0
    started = time.perf_counter()
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
        base = health(client, url).get("model_hooks")

        def take(n: int) -> None:
            s = sample(n, started)
            h = health(client, url)
            s.model_hooks, s.in_flight = h.get("model_hooks"), h.get("in_flight")
            samples.append(s)

        take(0)
        for i, (endpoint, example) in enumerate(plan):
            outcome = calls[endpoint](client, url, example, serial_base + i)
            outcomes.append(outcome)
            if endpoint == "rest_explain":
                hook_checks += 1
                hooks_left += int(health(client, url).get("model_hooks") != base)
            if (i + 1) % sample_every == 0 or i + 1 == len(plan):
                take(i + 1)
            if on_progress:
                on_progress(i + 1)
    wall = time.perf_counter() - started
    return SoakResult(summarize(outcomes, wall), outcomes, samples, int(len(plan) * warmup), hook_checks, hooks_left,
                      base)


@dataclass
class SoakVerdict:
    rss_start_mb: float       # at the end of the warm-up
    rss_end_mb: float
    rss_max_mb: float
    rss_growth: float         # (end - start) / start
    fds_start: int
    fds_end: int
    temp_files: tuple[int, int, int]    # warm-up end, max, end
    gradio_files: tuple[int, int, int]
    checks: dict[str, bool]

    @property
    def passed(self) -> bool:
        return all(self.checks.values())


def _bounded(values: Sequence[int], slack: float = 0.10, extra: int = 2) -> bool:
    """No upward trend: the second half never rises above the first half's peak (+10 % + 2).

    A cache with a cap or a time-based sweep saw-tooths below a fixed peak; a leak keeps climbing.
    """
    if len(values) < 4:
        return values[-1] <= values[0] + extra if values else True
    half = len(values) // 2
    return max(values[half:]) <= max(values[:half]) * (1 + slack) + extra


def soak_verdict(result: SoakResult, *, max_rss_growth: float = 0.10, fd_slack: int = 2) -> SoakVerdict:
    """The pass criteria, on the samples after the warm-up: RSS at the end at most ``max_rss_growth``
    above the first, and fds and temp-file counts without an upward trend (:func:`_bounded`): a
    one-off step (a lazily opened resource, a cache filling to its cap) is not a leak."""
    after = [s for s in result.samples if s.requests >= result.warmup_requests] or result.samples
    first, last = after[0], after[-1]
    growth = (last.rss_mb - first.rss_mb) / first.rss_mb
    temp = [s.temp_files for s in after]
    grad = [s.gradio_files for s in after]
    checks = {
        "rss_growth_within_limit": growth <= max_rss_growth,
        "no_fd_growth": _bounded([s.fds for s in after], extra=fd_slack),
        "no_temp_file_growth": _bounded(temp),
        # with a sweep, no file may outlive it (a count alone follows the request rate); else: no trend
        "no_gradio_file_growth": all(s.gradio_stale == 0 for s in after) if after[0].gradio_stale is not None
        else _bounded(grad),
        "no_hooks_left": result.hooks_base is not None and result.hooks_left == 0
                         and all(s.model_hooks == result.hooks_base for s in result.samples),
        "all_answered_200": set(result.summary.by_status) == {"200"},
    }
    return SoakVerdict(first.rss_mb, last.rss_mb, max(s.rss_mb for s in after), growth, first.fds, last.fds,
                       (temp[0], max(temp), temp[-1]), (grad[0], max(grad), grad[-1]), checks)
