"""``Send/`` as the provider watches it: ``.csv`` → ``.lock`` → checked → ``.done``/``.reject``.

Detection is one scan of ``Send/``, run whenever something may have changed (an SFTP
rename, the last write handle on a file closing) and every ``poll_interval`` as a safety
net (a file put there by other means, a missed wake-up). One code path, so an upload that
renames, one that writes straight to ``.csv`` and a file copied in locally are all treated
alike, and a rename hook alone cannot miss anything.

A file is taken only when no SFTP handle has it open for writing: a hostile client that
renames an open ``.tmp`` to ``.csv`` and keeps writing gets its file taken when it closes
it, never half-read (a ``file_waiting`` event records that it happened). The real provider
may be less careful; our client never relies on this (it renames after closing).

A name (its stem) is processed once: a later ``.csv`` with the same stem stays untouched
and is logged ``file_ignored`` (the spec: a scheduled campaign cannot be replaced by
uploading it again). The check runs on the worker thread: a 1,000,000-record file takes a
few seconds, during which SFTP transfers go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import asdict
from pathlib import Path
from typing import Final

from smsdrop import naming
from smsdrop.dropbox import RemoteState, state_file, stem_of
from smsdrop.errors import InputError
from smsdrop.gsm import EncodingPolicy
from smsdrop.intake_check import Problem, check_file
from smsdrop.reasons import Reason
from smsdrop.record_rules import Rules
from smsdrop.sandbox.clock import SimClock
from smsdrop.sandbox.config import SandboxConfig
from smsdrop.sandbox.engine import Engine, FileAges
from smsdrop.sandbox.events import EventLog, iter_events
from smsdrop.sandbox.layout import Layout
from smsdrop.sandbox.sending import build_plan

__all__ = ["PROVIDER_TOLERATES", "Intake", "OpenFiles"]

log = logging.getLogger("smsdrop.sandbox")

#: Problems our checker reports that the provider accepts: a non-mobile number is sent and
#: fails at the operator (status ``failed`` in the ACK); characters outside GSM 03.38 are
#: "automatically replaced" (spec). Every other problem rejects the file.
PROVIDER_TOLERATES: Final = frozenset({Reason.MSISDN_NOT_MOBILE.value, Reason.MSG_NOT_GSM.value})
#: How many problems of a rejected file the event log keeps (the counts cover them all).
PROBLEMS_LOGGED: Final = 20

FileId = tuple[int, int]  # (st_dev, st_ino)


class OpenFiles:
    """Files open for writing through SFTP, by identity (a rename keeps the inode)."""

    def __init__(self) -> None:
        self._count: Counter[FileId] = Counter()

    def opened(self, file_id: FileId) -> None:
        self._count[file_id] += 1

    def closed(self, file_id: FileId) -> bool:
        """Forget one handle; True when it was the last one on that file."""
        self._count[file_id] -= 1
        if self._count[file_id] <= 0:
            del self._count[file_id]
            return True
        return False

    def busy(self, file_id: FileId) -> bool:
        return file_id in self._count

    def inodes(self) -> frozenset[int]:
        return frozenset(ino for _, ino in self._count)


class Intake:
    """Scans ``Send/``, locks what is ready, checks it on the worker, hands it to the engine."""

    def __init__(
        self,
        config: SandboxConfig,
        layout: Layout,
        clock: SimClock,
        events: EventLog,
        engine: Engine,
        ages: FileAges,
        open_files: OpenFiles,
        executor: Executor,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.config, self.layout, self.clock, self.events = config, layout, clock, events
        self.engine, self.ages, self.open_files = engine, ages, open_files
        self._executor, self._on_error = executor, on_error
        self.processed: set[str] = set()
        self._noted: set[tuple[str, int, str]] = set()
        self._first_seen: dict[tuple[str, int], float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scan_pending = False
        policy = EncodingPolicy.UCS2 if config.unicode else EncodingPolicy.TRANSLITERATE
        self.rules = Rules(policy, config.long_sms, "FR", require_e164=True)

    def start(
        self, loop: asyncio.AbstractEventLoop, rejected: frozenset[str] = frozenset()
    ) -> None:
        """Remember processed names (from the event log) and resume interrupted checks.

        After a stop (or a kill), a stem the engine already runs only needs its ``.lock``
        renamed ``.done``, one the log says was rejected its ``.reject``; any other
        ``.lock``, and any kept SEND file without a verdict, is checked again.
        """
        self._loop = loop
        for event in iter_events(self.layout.root, "file_locked"):
            self.processed.add(stem_of(event["name"]))
        store = self.engine.store
        pending: dict[str, str] = store.kept() if store is not None else {}
        for lock in sorted(self.layout.send.glob(state_file("*", RemoteState.LOCK))):
            pending.setdefault(lock.stem, state_file(lock.stem, RemoteState.CSV))
        for stem, name in sorted(pending.items()):
            self.processed.add(stem)
            lock = self.layout.send / state_file(stem, RemoteState.LOCK)
            if stem in self.engine.campaigns:
                self._finish(lock, stem, RemoteState.DONE)
            elif stem in rejected:
                self._finish(lock, stem, RemoteState.REJECT)
                if store is not None:
                    store.drop(stem)
            else:
                self.events.emit("file_resumed", self.clock.now(), name=name)
                self._submit(name)
        self.poke()

    def poke(self) -> None:
        """Scan soon (coalesced; thread-safe)."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._request_scan)

    def _request_scan(self) -> None:
        if not self._scan_pending:
            self._scan_pending = True
            assert self._loop is not None
            self._loop.call_soon(self._scan)

    def _scan(self) -> None:
        self._scan_pending = False
        self.scan()

    def scan(self) -> None:
        """Look at ``Send/`` now (event loop thread only)."""
        try:
            entries = list(os.scandir(self.layout.send))
        except OSError:
            return
        for entry in entries:
            handed_over = entry.name.endswith(f".{RemoteState.CSV}")
            if not handed_over or not entry.is_file(follow_symlinks=False):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            file_id = (info.st_dev, info.st_ino)
            if self.open_files.busy(file_id):
                self._note("file_waiting", entry.name, info.st_ino, "open for writing")
                continue
            if stem_of(entry.name) in self.processed:
                self._note("file_ignored", entry.name, info.st_ino, "ALREADY_PROCESSED")
                continue
            if self.config.lock_delay > 0 and not self._delay_over(entry.name, info.st_ino):
                continue
            self._lock(entry.name, info.st_size)

    def _note(self, kind: str, name: str, inode: int, reason: str) -> None:
        """Log a file left alone, once per file and reason (the scan repeats)."""
        key = (name, inode, reason)
        if key not in self._noted:
            self._noted.add(key)
            self.events.emit(kind, self.clock.now(), name=name, reason=reason)
            log.info("%r left alone: %s", f"Send/{name}", reason)

    def _delay_over(self, name: str, inode: int) -> bool:
        first = self._first_seen.setdefault((name, inode), time.monotonic())
        remaining = self.config.lock_delay - (time.monotonic() - first)
        if remaining > 0:
            assert self._loop is not None
            self._loop.call_later(remaining, self.poke)
            return False
        return True

    def _lock(self, name: str, size: int) -> None:
        now = self.clock.now()
        stem = stem_of(name)
        lock = self.layout.send / state_file(stem, RemoteState.LOCK)
        self.events.emit("file_received", now, name=name, bytes=size)
        try:
            os.rename(self.layout.send / name, lock)
        except FileNotFoundError:  # the client moved it away meanwhile
            return
        self.processed.add(stem)
        self.ages.touch(lock, now)
        self.events.emit("file_locked", now, name=name)
        log.info("%r received (%d bytes), locked", f"Send/{name}", size)
        self._submit(name)

    def _submit(self, name: str) -> None:
        future = self._executor.submit(self._check, name)
        future.add_done_callback(
            lambda f: f.exception() and self._on_error("check", f.exception())  # type: ignore[arg-type]
        )

    # --- on the worker thread ------------------------------------------------------------

    def _check(self, name: str) -> None:
        stem = stem_of(name)
        lock = self.layout.send / state_file(stem, RemoteState.LOCK)
        store = self.engine.store
        assert store is not None
        # Kept under the name as received (the checker reads the name): a hard link, so the
        # data survives the client deleting its .done, and a restart (state module).
        source = store.source(stem, name)
        if not source.exists():
            store.link_source(lock, stem, name)
        started = time.perf_counter()
        records, problems = self._judge(source)
        if problems:
            self._finish(lock, stem, RemoteState.REJECT)
            reasons = Counter(p.reason for p in problems)
            self.events.emit(
                "file_rejected",
                self.clock.now(),
                name=name,
                records=records,
                reasons=dict(reasons),
                problems=[_problem_dict(p) for p in problems[:PROBLEMS_LOGGED]],
                seconds=round(time.perf_counter() - started, 3),
            )
            log.info(
                "%r: %s", f"Send/{state_file(stem, RemoteState.REJECT)}", ", ".join(sorted(reasons))
            )
            store.drop(stem)
            return
        self._finish(lock, stem, RemoteState.DONE)
        now = self.clock.now()
        self.events.emit(
            "file_done",
            now,
            name=name,
            records=records,
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info("%r: %d record(s)", f"Send/{state_file(stem, RemoteState.DONE)}", records)
        plan = build_plan(source, name, naming.parse_name(name), self.config)
        self.engine.accept(plan, now)

    def _judge(self, work: Path) -> tuple[int, list[Problem]]:
        """The provider's verdict: our checker's problems minus those it tolerates."""
        if work.stat().st_size == 0:  # check_file cannot read an empty file (pyarrow raises)
            return 0, [Problem("FILE_EMPTY", "no records")]
        try:
            report = check_file(
                work, self.rules, encoding=self.config.file_encoding, cap=self.config.max_records
            )
        except Exception as error:  # noqa: BLE001 - a checker bug must not leave a .lock
            return 0, [Problem("SANDBOX_ERROR", type(error).__name__)]
        problems = [p for p in report.problems if p.reason not in PROVIDER_TOLERATES]
        expected = self.config.service_id
        if expected and not problems:
            try:
                found = naming.parse_name(work.name).service_id
            except InputError:
                found = None
            if found != expected:
                problems.append(Problem("SERVICEID_UNKNOWN", f"not this account's ({found})"))
        return report.records, problems

    def _finish(self, lock: Path, stem: str, verdict: RemoteState) -> None:
        """``.lock`` → ``.done``/``.reject`` (already done when a restart finds no lock)."""
        target = lock.with_name(state_file(stem, verdict))
        try:
            os.rename(lock, target)
        except FileNotFoundError:
            return
        self.ages.touch(target, self.clock.now())


def _problem_dict(problem: Problem) -> dict[str, object]:
    return {k: v for k, v in asdict(problem).items() if v not in (None, "")}
