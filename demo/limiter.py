"""Admission for the REST API: a few model calls at once, a short queue, 503 past it, 504 past the timeout."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool

from demo.http_input import APIError

log = logging.getLogger("demo.rest")


class BusyError(APIError):
    def __init__(self) -> None:
        super().__init__(503, "busy", "the server is busy with other requests; try again in a few seconds")


class RequestTimeoutError(APIError):
    def __init__(self, seconds: float) -> None:
        super().__init__(504, "timeout", f"the request took longer than {seconds:g} s and was abandoned; "
                                         "try a smaller image or fewer explanation methods")


class WorkLimiter:
    """At most ``workers`` model calls at once and ``workers + queue`` admitted; the rest get 503.

    ``timeout_seconds`` bounds each admitted request (queue wait + work): past it the client
    gets 504 at once. A thread cannot be killed, so a timed-out call keeps its admission slot
    until it really ends; otherwise abandoned work would pile up beyond ``workers + queue``.
    """

    def __init__(self, workers: int = 1, queue: int = 4, wait_seconds: float = 60.0,
                 timeout_seconds: float | None = None) -> None:
        self.workers = max(1, workers)
        self.max_admitted = self.workers + max(0, queue)
        self.wait_seconds = wait_seconds
        self.timeout_seconds = timeout_seconds if timeout_seconds and timeout_seconds > 0 else None
        self._running = threading.BoundedSemaphore(self.workers)
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        return self._admitted

    async def run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._admitted >= self.max_admitted:
                raise BusyError()
            self._admitted += 1
        deadline = time.monotonic() + self.timeout_seconds if self.timeout_seconds else None
        task = asyncio.ensure_future(run_in_threadpool(self._call, fn, args, kwargs, deadline))
        task.add_done_callback(self._release)
        try:  # shield: a timeout or a client that went away must not detach the slot from the thread
            return await asyncio.wait_for(asyncio.shield(task), self.timeout_seconds)
        except asyncio.TimeoutError:
            log.warning("request abandoned after %.1f s; its worker slot stays held until the call ends",
                        self.timeout_seconds)
            raise RequestTimeoutError(self.timeout_seconds or 0) from None

    def _release(self, task: asyncio.Future) -> None:
        with self._lock:
            self._admitted -= 1
        if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), APIError):
            log.debug("an abandoned or failed call ended: %r", task.exception())

    def _call(self, fn: Callable, args: tuple, kwargs: dict, deadline: float | None = None) -> Any:
        wait = self.wait_seconds if deadline is None else min(self.wait_seconds, deadline - time.monotonic())
        if not self._running.acquire(timeout=max(0.0, wait)):
            raise BusyError()
        try:
            if deadline is not None and time.monotonic() >= deadline:
                raise BusyError()  # the client was already answered 504: do not start work nobody awaits
            return fn(*args, **kwargs)
        finally:
            self._running.release()

