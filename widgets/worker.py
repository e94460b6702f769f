"""The one mechanism for slow work on a dashboard page: one worker thread per page.

Every request gets a generation number; a new request cancels the pending one (cooperatively:
a running job sees ``job.cancelled()``), and only the newest request's outcome is handed to
the page, through ``deliver`` (the page's session event loop when served). An older outcome
that finishes later is dropped: a stale result is never painted. A job may hand over a first
answer before its final one (``job.partial``), under the same rule.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any


@dataclass(frozen=True)
class Job:
    """What a running request may ask: whether a newer one superseded it, how to report its
    progress (``done`` of ``total`` steps) and how to hand over a first answer before the
    whole one (``partial``); both are shown only while it is the newest."""

    generation: int
    report: Callable[[int, int, str], None]
    first_answer: Callable[[Any], None] = lambda value: None
    stop: threading.Event = field(default_factory=threading.Event)

    def cancelled(self) -> bool:
        return self.stop.is_set()

    def progress(self, done: int, total: int, text: str = "") -> None:
        self.report(done, total, text)

    def partial(self, value: Any) -> None:
        """Show ``value`` now as the page's result; the request goes on to its final one."""
        self.first_answer(value)


class Worker:
    """One worker thread; ``submit`` runs ``work(job)`` on it and hands the newest outcome to
    ``show(value)`` or ``fail(error)`` through ``deliver``."""

    def __init__(self, deliver: Callable[[Callable[[], None]], None], name: str = "page") -> None:
        self._deliver = deliver
        self._name = name
        self._pool: ThreadPoolExecutor | None = None  # the thread starts with the first request
        self._lock = threading.RLock()
        self._settled = threading.Condition(self._lock)
        self._generation = 0  # the newest request
        self._finished = 0  # the newest request whose outcome was handed over (or dropped)
        self._job: Job | None = None
        self._future: Future | None = None
        self._closed = False

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def pending(self) -> bool:
        """Whether the newest request has not been handed over yet."""
        return self._finished < self._generation

    def submit(self, work: Callable[[Job], Any], show: Callable[[Any], None],
               fail: Callable[[BaseException], None],
               progress: Callable[[int, int, str], None] | None = None,
               partial: Callable[[Any], None] | None = None) -> int:
        """Start ``work`` as the newest request (cancelling the previous one); its generation.
        ``partial`` shows a first answer (default: ``show``)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self._name} page's worker is closed")
            if self._job is not None:
                self._job.stop.set()
                self._future.cancel()  # not started yet: never runs
            self._generation += 1
            generation = self._generation

            def report(done: int, total: int, text: str) -> None:
                if progress is not None:
                    self._deliver(lambda: self._if_newest(generation,
                                                          lambda: progress(done, total, text)))

            def first_answer(value: Any) -> None:
                self._deliver(lambda: self._if_newest(generation, lambda: (partial or show)(value)))

            self._job = Job(generation, report, first_answer)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"{self._name}-worker")
            self._future = self._pool.submit(self._run, self._job, work, show, fail)
            return generation

    def _run(self, job: Job, work, show, fail) -> None:
        if job.cancelled():
            outcome = None  # superseded before it started
        else:
            try:
                outcome = partial(show, work(job))
            except Exception as error:  # shown on the page; the server keeps serving
                outcome = partial(fail, error)
        self._deliver(partial(self._finish, job.generation, outcome))

    def _if_newest(self, generation: int, apply: Callable[[], None]) -> None:
        with self._lock:
            if generation == self._generation and not self._closed:
                apply()

    def _finish(self, generation: int, outcome: Callable[[], None] | None) -> None:
        with self._lock:
            if generation == self._generation and not self._closed and outcome is not None:
                outcome()
            self._finished = max(self._finished, generation)
            self._settled.notify_all()

    def cancel(self) -> None:
        """Ask the running request to stop (it still hands over what it returns)."""
        with self._lock:
            if self._job is not None:
                self._job.stop.set()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the newest request's outcome was handed over (tests and scripts that
        deliver in the worker thread; a served page never waits)."""
        with self._settled:
            if not self._settled.wait_for(lambda: not self.pending or self._closed, timeout):
                raise TimeoutError(f"the {self._name} page's request {self._generation} did not "
                                   f"finish within {timeout:g} s")

    def close(self) -> None:
        """Cancel the pending request and let the thread end; nothing is delivered after."""
        with self._lock:
            self._closed = True
            if self._job is not None:
                self._job.stop.set()
            pool, self._pool, self._job, self._future = self._pool, None, None, None
            self._settled.notify_all()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
