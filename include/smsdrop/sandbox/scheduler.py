"""Jobs at simulated instants, run one at a time on the sandbox's worker thread.

Why one worker: every state change of the simulated provider (a campaign's outcomes, the
balance, the reply files) happens on that thread, in time order, so nothing needs a lock
and a send can never race its own ACK. Why not the event loop: a million-message send or
ACK takes a second or two of pandas/pyarrow work that must not stall SFTP transfers.

A job gets the simulated instant it was scheduled for, not the clock's now: after a clock
jump several jobs fall due at once and each still records the time it "happened".
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

from smsdrop.sandbox.clock import SimClock

__all__ = ["Scheduler"]

Job = Callable[..., Any]
#: Longest real wait between two looks at the clock (robustness; jumps wake it anyway).
MAX_WAIT = 5.0


class Scheduler:
    """A heap of (simulated instant, job) drained in order by :meth:`run`.

    :meth:`at` may be called from any thread; :meth:`run` runs on the event loop and hands
    each due job to ``executor`` (a single-thread pool), awaiting it before the next.
    """

    def __init__(
        self,
        clock: SimClock,
        executor: Executor,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.clock = clock
        self._executor = executor
        self._on_error = on_error
        self._heap: list[tuple[datetime, int, Job, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._idle = threading.Event()
        self._idle.set()
        clock.on_advance(self.wake)

    def at(self, when: datetime, job: Job, *args: Any) -> None:
        """Run ``job(when, *args)`` once the simulated clock reaches ``when``."""
        with self._lock:
            heapq.heappush(self._heap, (when, next(self._seq), job, args))
        self.wake()

    def wake(self) -> None:
        """Look at the clock and the heap again now (thread-safe)."""
        with self._lock:
            self._idle.clear()
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def pending(self) -> list[tuple[datetime, str]]:
        """Scheduled jobs (instant, job name), soonest first: for tests and the status line."""
        with self._lock:
            return [
                (when, getattr(job, "__name__", repr(job)))
                for when, _, job, _ in sorted(self._heap)
            ]

    def next_due(self) -> datetime | None:
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is due (those in the future do not count); for tests."""
        return self._idle.wait(timeout)

    async def run(self) -> None:
        """Drain due jobs forever (cancel the task to stop)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            job = self._pop_due()
            if job is not None:
                when, fn, args = job
                try:
                    await self._loop.run_in_executor(self._executor, fn, when, *args)
                except Exception as error:  # noqa: BLE001 - a bad job must not stop the provider
                    self._on_error(getattr(fn, "__name__", repr(fn)), error)
                continue
            self._wake.clear()
            now = self.clock.now()
            with self._lock:
                if self._heap and self._heap[0][0] <= now:
                    continue  # fell due meanwhile
                self._idle.set()
                due = self._heap[0][0] if self._heap else None
            wait = MAX_WAIT if due is None else min(MAX_WAIT, self.clock.real_seconds_until(due))
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that races
            # with the wake-up (gh-86296), and the sandbox would never stop.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=max(wait, 0.001))
            finally:
                waiter.cancel()

    def _pop_due(self) -> tuple[datetime, Job, tuple[Any, ...]] | None:
        now = self.clock.now()
        with self._lock:
            if self._heap and self._heap[0][0] <= now:
                when, _, job, args = heapq.heappop(self._heap)
                self._idle.clear()
                return when, job, args
        return None
