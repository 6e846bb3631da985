"""The sandbox's own clock: a start instant and a speed factor, plus jumps for tests.

Every delay of the sandbox (scheduled sends, the 1- or 4-day ACK delay, reply times, the
30-day retention) is expressed in simulated time and waited for through this clock, so a
4-day ACK can pass in seconds (``speed``), a demo started on a Sunday night can pretend it
is Monday morning (``start``), and a test can jump ahead (:meth:`SimClock.advance`)
instead of sleeping.

Simulated time = ``start + (monotonic elapsed) * speed + jumps``. Monotonic, not wall
time: a host clock adjustment must not make the sandbox send early or twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from smsdrop.naming import require_aware

__all__ = ["SimClock"]


class SimClock:
    """Simulated time, safe to read and move from any thread.

    :param start: the simulated instant at creation (aware); default: the real now.
    :param speed: simulated seconds per real second (> 0); 1 is real time.
    :param monotonic: the real time source (injectable for tests of the clock itself).
    """

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._start = require_aware(start, "start").astimezone(UTC) if start else datetime.now(UTC)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._origin = monotonic()
        self._jumped = timedelta(0)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """The simulated now, UTC-aware."""
        elapsed = (self._monotonic() - self._origin) * self.speed
        with self._lock:
            jumped = self._jumped
        return self._start + jumped + timedelta(seconds=elapsed)

    def advance(self, delta: timedelta) -> datetime:
        """Jump forward by ``delta`` (never backward: sends already made stay made).

        Listeners (the scheduler) are told at once, so whatever fell due runs now.
        """
        if delta < timedelta(0):
            raise ValueError(f"the clock only moves forward, got {delta}")
        with self._lock:
            self._jumped += delta
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return self.now()

    def advance_to(self, instant: datetime) -> datetime:
        """Jump to ``instant`` (aware) if it is ahead; a past instant changes nothing."""
        delta = require_aware(instant, "instant") - self.now()
        return self.advance(delta) if delta > timedelta(0) else self.now()

    def real_seconds_until(self, instant: datetime) -> float:
        """Real seconds to wait until the simulated ``instant`` (0 when it is past)."""
        remaining = (instant - self.now()).total_seconds()
        return max(0.0, remaining / self.speed)

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the advancing thread) after every jump."""
        with self._lock:
            self._listeners.append(listener)

    def __repr__(self) -> str:
        return f"SimClock(now={self.now().isoformat()}, speed={self.speed:g})"
