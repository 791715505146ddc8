"""Admission for the REST API: a few model calls at once; a request waits while its expected wait is short
(``max_wait``, 10 s by default), else 503 with ``Retry-After``; 504 past the timeout."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool

from demo.http_input import APIError

log = logging.getLogger("demo.rest")


class BusyError(APIError):
    def __init__(self, retry_after: float = 2.0) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(503, "busy", f"the server is busy with other requests; try again in about "
                                      f"{self.retry_after} s")


class RequestTimeoutError(APIError):
    def __init__(self, seconds: float) -> None:
        super().__init__(504, "timeout", f"the request took longer than {seconds:g} s and was abandoned; "
                                         "try a smaller image or fewer explanation methods")


class AbandonedError(Exception):
    """Raised inside a call whose client was already answered 504, at its next progress report: the work
    stops there and frees its slot, instead of holding it for minutes nobody waits for."""


_CALL = threading.local()


def stop_if_abandoned(_fraction: float = 0.0) -> None:
    """A progress callback for long work run by :meth:`WorkLimiter.run` (an explanation): raises
    :class:`AbandonedError` once the request's timeout has passed. Outside such a call it does nothing."""
    deadline = getattr(_CALL, "deadline", None)
    if deadline is not None and time.monotonic() >= deadline:
        raise AbandonedError("the request timed out; its work stops here")


#: what a call is assumed to take before any has been timed (an invoice page read, on a quiet machine)
FIRST_GUESS_SECONDS = 1.0
#: an explanation's first guess before one of its kind has been timed: the page reads' mean said 0.2 s, so a queue
#: formed behind the first slow one was told to retry at once. Measured on lines of examples/invoice_zh.png, 1 thread,
#: ``OCRService.explain_line`` (2026-12-07): Grad-CAM + alignment 0.1 s (3 characters) to 2.1 s (13, the first
#: call, which builds the torch model); with occlusion 1.0-3.4 s; with occlusion and integrated gradients 0.9-7.8 s
FIRST_GUESS_EXPLAIN_SECONDS = 2.0
FIRST_GUESS_SLOW_EXPLAIN_SECONDS = 8.0
#: weight of the newest call in the running mean of call times
SMOOTHING = 0.3


def first_guess(kind: str) -> float:
    """A call's expected seconds before any of its kind has been timed (``demo.rest._call_kind`` names kinds)."""
    if not kind.startswith("explain:"):
        return 0.0
    methods = set(kind.partition(":")[2].split(","))
    return FIRST_GUESS_SLOW_EXPLAIN_SECONDS if methods & {"occlusion", "ig"} else FIRST_GUESS_EXPLAIN_SECONDS


class WorkLimiter:
    """At most ``workers`` model calls at once. A new request is admitted while the wait it can expect
    (the calls ahead of it, in waves of ``workers``, times their mean expected time) is at most
    ``max_wait`` seconds and fewer than ``workers + queue`` are admitted; else 503 with ``Retry-After``
    set to that expected wait: queue briefly rather than refuse, refuse rather than keep a client
    waiting a minute. A call's expected time is the running mean of the calls of its ``kind`` (a page read
    takes 0.2 s, an explanation with occlusion and integrated gradients 7 s: one mean of both would admit
    a queue of slow calls on the strength of the fast ones), else of all calls.

    ``timeout_seconds`` bounds each admitted request (queue wait + work): past it the client
    gets 504 at once. A thread cannot be killed, so a timed-out call keeps its admission slot
    until it really ends; otherwise abandoned work would pile up beyond ``workers + queue``. Long work
    that reports progress through :func:`stop_if_abandoned` (explanations) ends at its next report.
    """

    def __init__(self, workers: int = 1, queue: int = 4, wait_seconds: float = 60.0,
                 timeout_seconds: float | None = None, max_wait: float | None = 10.0) -> None:
        self.workers = max(1, workers)
        self.max_admitted = self.workers + max(0, queue)
        self.wait_seconds = wait_seconds
        self.timeout_seconds = timeout_seconds if timeout_seconds and timeout_seconds > 0 else None
        self.max_wait = max_wait
        self.mean_call_seconds = FIRST_GUESS_SECONDS
        self.mean_seconds_by_kind: dict[str, float] = {}
        self._running = threading.BoundedSemaphore(self.workers)
        self._admitted = 0
        self._expected: dict[int, float] = {}  # admitted call -> its expected seconds
        self._tickets = itertools.count()
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        return self._admitted

    def expected_seconds(self, kind: str) -> float:
        """What a call of ``kind`` is expected to take: its kind's running mean; before one has been timed, every
        call's mean, or an explanation's first guess if that is longer."""
        if kind in self.mean_seconds_by_kind:
            return self.mean_seconds_by_kind[kind]
        return max(self.mean_call_seconds, first_guess(kind))

    def expected_wait(self) -> float:
        """Seconds a request admitted now would wait before its call starts."""
        ahead = self._admitted - self.workers + 1
        if ahead <= 0:
            return 0.0
        per_call = (sum(self._expected.values()) / len(self._expected) if self._expected
                    else self.mean_call_seconds)
        return math.ceil(ahead / self.workers) * per_call

    def refuses(self, wait: float | None = None) -> bool:
        """Whether a request arriving now is answered 503 (too many admitted, or too long a wait ahead)."""
        wait = self.expected_wait() if wait is None else wait
        return self._admitted >= self.max_admitted or (self.max_wait is not None and wait > self.max_wait)

    def _admit(self, kind: str) -> int:
        with self._lock:
            wait = self.expected_wait()
            if self.refuses(wait):
                raise BusyError(max(wait, self.mean_call_seconds))
            self._admitted += 1
            ticket = next(self._tickets)
            self._expected[ticket] = self.expected_seconds(kind)
            return ticket

    async def run(self, fn: Callable, *args: Any, kind: str = "call", **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker thread once admitted; ``kind`` names what it is (its expected
        time is learnt per kind)."""
        ticket = self._admit(kind)
        deadline = time.monotonic() + self.timeout_seconds if self.timeout_seconds else None
        task = asyncio.ensure_future(run_in_threadpool(self._call, fn, args, kwargs, kind, deadline))
        task.add_done_callback(lambda done: self._release(done, ticket))
        try:  # shield: a timeout or a client that went away must not detach the slot from the thread
            return await asyncio.wait_for(asyncio.shield(task), self.timeout_seconds)
        except (asyncio.TimeoutError, AbandonedError):  # the work may notice the deadline a moment before the wait
            log.warning("request abandoned after %.1f s; its worker slot stays held until the call ends",
                        self.timeout_seconds)
            raise RequestTimeoutError(self.timeout_seconds or 0) from None

    def _release(self, task: asyncio.Future, ticket: int) -> None:
        with self._lock:
            self._admitted -= 1
            self._expected.pop(ticket, None)
        if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), APIError):
            log.debug("an abandoned or failed call ended: %r", task.exception())

    def _call(self, fn: Callable, args: tuple, kwargs: dict, kind: str, deadline: float | None = None) -> Any:
        wait = self.wait_seconds if deadline is None else min(self.wait_seconds, deadline - time.monotonic())
        if not self._running.acquire(timeout=max(0.0, wait)):
            raise BusyError()
        try:
            if deadline is not None and time.monotonic() >= deadline:
                raise BusyError()  # the client was already answered 504: do not start work nobody awaits
            started = time.monotonic()
            _CALL.deadline = deadline
            try:
                return fn(*args, **kwargs)
            finally:
                _CALL.deadline = None
                took = time.monotonic() - started
                with self._lock:
                    self.mean_call_seconds += SMOOTHING * (took - self.mean_call_seconds)
                    before = self.mean_seconds_by_kind.get(kind, took)  # a kind's first call is its mean
                    self.mean_seconds_by_kind[kind] = before + SMOOTHING * (took - before)
        finally:
            self._running.release()

