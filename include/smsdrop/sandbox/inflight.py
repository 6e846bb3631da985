"""What the engine keeps about work in flight: each accepted file, the files' ages.

Both are saved in the snapshot (:mod:`smsdrop.sandbox.state`) so a restart resumes them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from smsdrop.sandbox.events import stamp
from smsdrop.sandbox.sending import Batch, Draws, Plan

__all__ = ["AcceptedFile", "FileAges"]


class FileAges:
    """Simulated age of the files in ``Send/`` and ``Report/``, for the 30-day retention.

    Keyed by (path, inode) so a file deleted and uploaded again starts a new life. A file the
    sandbox did not see arrive gets the simulated time it was first noticed.
    """

    def __init__(self) -> None:
        self._times: dict[tuple[str, int], datetime] = {}
        self._lock = threading.Lock()

    def touch(self, path: Path, at: datetime) -> None:
        try:
            key = (str(path), path.stat().st_ino)
        except OSError:
            return
        with self._lock:
            self._times[key] = at

    def age_of(self, path: Path, inode: int, now: datetime) -> timedelta:
        with self._lock:
            born = self._times.setdefault((str(path), inode), now)
        return now - born

    def forget(self, path: Path, inode: int) -> None:
        with self._lock:
            self._times.pop((str(path), inode), None)

    def dump(self) -> list[list[Any]]:
        """``[[path, inode, iso instant], …]`` for the snapshot."""
        with self._lock:
            return [[path, inode, stamp(at)] for (path, inode), at in self._times.items()]

    def load(self, rows: list[list[Any]]) -> None:
        with self._lock:
            for path, inode, at in rows:
                self._times[(str(path), int(inode))] = datetime.fromisoformat(at)


@dataclass
class AcceptedFile:
    """One accepted file on its way: outcomes so far, batches left, replies to come.

    ``outcome`` (int8 code per row, -1 until decided), ``replied`` (the row's simulated
    reply is recorded), ``batches_done`` and ``ack_written`` are what a snapshot keeps
    (:mod:`smsdrop.sandbox.state`); the reply heap is rebuilt from them.
    """

    plan: Plan
    draws: Draws
    batches: list[Batch]
    accepted_at: datetime
    outcome: np.ndarray = field(init=False)
    replied: np.ndarray = field(init=False)
    batches_done: set[int] = field(default_factory=set)
    last_send: datetime | None = None
    replies: list[tuple[datetime, int]] = field(default_factory=list)  # heap (time, row)
    pump_at: datetime | None = None
    ack_written: bool = False
    generation: int = 0
    dirty: bool = True

    def __post_init__(self) -> None:
        self.outcome = np.full(self.plan.size, -1, dtype=np.int8)
        self.replied = np.zeros(self.plan.size, dtype=bool)

    @property
    def batches_left(self) -> int:
        return len(self.batches) - len(self.batches_done)

    def batch_of_row(self) -> np.ndarray:
        index = np.full(self.plan.size, -1, dtype=np.int32)
        for number, batch in enumerate(self.batches):
            index[batch.rows] = number
        return index
