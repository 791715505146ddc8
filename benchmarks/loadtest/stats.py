"""Figures from a list of outcomes: counts by status, latency percentiles, throughput, pass/fail."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from benchmarks.loadtest.workload import Outcome

#: statuses that are a correct answer under overload: the service refuses clearly and at once
OVERLOAD_STATUSES = ("429", "503")


def percentiles(values: Sequence[float], qs: Iterable[float] = (50, 95, 99)) -> dict[str, float | None]:
    """Latency percentiles in ms (linear interpolation); None for an empty list."""
    if not len(values):
        return {f"p{q:g}": None for q in qs}
    arr = np.asarray(values, dtype=np.float64) * 1000.0
    return {f"p{q:g}": float(np.percentile(arr, q)) for q in qs}


@dataclass
class Summary:
    requests: int
    by_status: dict[str, int]
    by_endpoint: dict[str, dict[str, int]]
    latency_ok_ms: dict[str, float | None]          # successful answers
    latency_refused_ms: dict[str, float | None]     # 429/503 answers: a refusal must be quick
    latency_ok_by_endpoint_ms: dict[str, dict[str, float | None]]
    wall_seconds: float
    ok_per_second: float
    answered_per_second: float
    refusal_codes: dict[str, int]
    non_json_errors: int

    @property
    def hangs(self) -> int:
        return self.by_status.get("hang", 0)

    @property
    def unexpected(self) -> dict[str, int]:
        """Everything but a success or a clear overload refusal: 5xx other than 503, other 4xx for a
        valid image, hangs, connection errors, failed Gradio events, 200s without the expected JSON."""
        return {s: n for s, n in self.by_status.items() if s not in ("200", *OVERLOAD_STATUSES)}


def summarize(outcomes: Sequence[Outcome], wall_seconds: float) -> Summary:
    by_status = Counter(o.status for o in outcomes)
    by_endpoint: dict[str, Counter] = {}
    for o in outcomes:
        by_endpoint.setdefault(o.endpoint, Counter())[o.status] += 1
    ok = [o for o in outcomes if o.status == "200"]
    refused = [o for o in outcomes if o.status in OVERLOAD_STATUSES]
    answered = [o for o in outcomes if o.status not in ("hang", "conn_error")]
    wall = max(wall_seconds, 1e-9)
    return Summary(
        requests=len(outcomes),
        by_status=dict(sorted(by_status.items())),
        by_endpoint={e: dict(sorted(c.items())) for e, c in sorted(by_endpoint.items())},
        latency_ok_ms=percentiles([o.latency for o in ok]),
        latency_refused_ms=percentiles([o.latency for o in refused]),
        latency_ok_by_endpoint_ms={e: percentiles([o.latency for o in ok if o.endpoint == e])
                                   for e in sorted(by_endpoint)},
        wall_seconds=wall_seconds,
        ok_per_second=len(ok) / wall,
        answered_per_second=len(answered) / wall,
        refusal_codes=dict(Counter(f"{o.status} {o.code}" for o in refused)),
        non_json_errors=sum(1 for o in outcomes if o.status not in ("200", "hang", "conn_error", "event_error",
                                                                   "bad_body") and not o.json_body),
    )
