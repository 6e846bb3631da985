"""The simulated provider after a file is accepted: sends, balance, ACK, replies, retention.

Every method that changes state runs on the sandbox's single worker thread (scheduler jobs,
file checks, inbox requests), in simulated-time order, so the balance and each campaign's
outcomes need no lock. Work that scales with recipients is vectorised: the per-message
event lines and the ACK are assembled with pyarrow kernels (the ACK byte-identical to
:func:`smsdrop.reports.write_ack_line`, which a test checks), not one Python call per row.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop.csvfile import quote_field
from smsdrop.msisdn import classify, mask_one
from smsdrop.naming import FileKind, parse_name
from smsdrop.reports import write_reply_line
from smsdrop.sandbox.clock import SimClock
from smsdrop.sandbox.config import MO_TEXTS, STATUSES, STOP_SPELLINGS, Outcome, SandboxConfig
from smsdrop.sandbox.events import EventLog, stamp
from smsdrop.sandbox.layout import Layout
from smsdrop.sandbox.plan import (
    CODE,
    NO_REPLY,
    OUTCOMES,
    STOP_REPLY,
    Batch,
    Draws,
    Plan,
    ack_operator_ids,
    build_plan,
    draw,
    schedule,
)
from smsdrop.sandbox.replies import is_stop
from smsdrop.sandbox.scheduler import Scheduler
from smsdrop.sandbox.state import Saved, StateStore, Tail

__all__ = ["Engine", "FileAges", "ack_bytes"]

log = logging.getLogger("smsdrop.sandbox")

_LS = pa.large_string()
_STATUS_NAMES = pa.array([o.value for o in OUTCOMES], _LS)
_IDSTATUS = pa.array([str(STATUSES[o].idstatus) for o in OUTCOMES], _LS)
_SENT_CODES = np.array([CODE[o] for o in OUTCOMES if STATUSES[o].sent], dtype=np.int8)
_JSON_SAFE = r"^[A-Za-z0-9+]*$"
#: How many taken inbox request ids the snapshot keeps.
TAKEN_KEPT = 10_000
#: Real seconds between two snapshots at most once (the log after a snapshot is replayed at
#: start, so a later snapshot loses nothing; it only makes the replay longer). A million-row
#: campaign pumps replies many times a second: one snapshot each would cost more than them.
COMMIT_INTERVAL = 0.5


def _s(text: str) -> pa.Scalar:
    return pa.scalar(text, _LS)


def _bytes_of(values: pa.Array) -> bytes:
    """The concatenated UTF-8 bytes of a string array (one copy, no per-value objects)."""
    values = values.cast(_LS)
    if len(values) == 0:
        return b""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)
    start, stop = offsets[values.offset], offsets[values.offset + len(values)]
    return values.buffers()[2].slice(int(start), int(stop - start)).to_pybytes()


def ack_bytes(
    idremote: pa.Array,
    msisdn: pa.Array,
    oadc: pa.Array,
    msg: pa.Array,
    codes: np.ndarray,
    ackoperator: pa.Array,
) -> bytes:
    """ACK records (``IDREMOTE;MSISDN;OADC;MSG;IDSTATUS;STATUS;ACKOPERATOR``), vectorised.

    The same bytes as joining :func:`smsdrop.reports.write_ack_line` over the rows: RFC 4180
    quoting only where a field needs it (:func:`smsdrop.csvfile.quote_field`), CRLF ends.
    """
    if len(codes) == 0:
        return b""
    index = pa.array(codes.astype(np.int64))
    columns = [
        quote_field(idremote),
        quote_field(msisdn),
        quote_field(oadc),
        quote_field(msg),
        _IDSTATUS.take(index),
        _STATUS_NAMES.take(index),
        quote_field(ackoperator),
    ]
    records = pc.binary_join_element_wise(*columns, _s(";"))
    return _bytes_of(pc.binary_join_element_wise(records, _s("\r\n"), _s("")))


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
class Campaign:
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


class Engine:
    """Accepted files → scheduled sends → outcomes, debits, replies, ACK; plus retention."""

    def __init__(
        self,
        config: SandboxConfig,
        layout: Layout,
        clock: SimClock,
        events: EventLog,
        scheduler: Scheduler,
        ages: FileAges,
    ) -> None:
        self.config, self.layout, self.clock = config, layout, clock
        self.events, self.scheduler, self.ages = events, scheduler, ages
        self.balance = config.balance
        self.campaigns: dict[str, Campaign] = {}
        self.store: StateStore | None = None  # set by the Sandbox: commits after each change
        #: Inbox request ids taken (the latest ones): a request file a kill left behind
        #: after it was taken is removed at the next look, never taken twice.
        self.taken: dict[str, None] = {}
        self._committed = 0.0  # time.monotonic() of the last snapshot

    # --- acceptance and sending ---------------------------------------------------------

    def accept(self, plan: Plan, accepted_at: datetime, announce: bool = True) -> Campaign:
        """Schedule an accepted file's messages (worker thread); once per name.

        ``announce`` False: recovery of a campaign whose ``campaign_scheduled`` is logged.
        """
        known = self.campaigns.get(plan.stem)
        if known is not None:
            return known
        campaign = self._admit(plan, accepted_at, announce)
        self.commit()
        self.resume(campaign, accepted_at)
        return campaign

    def _admit(self, plan: Plan, accepted_at: datetime, announce: bool) -> Campaign:
        """A new campaign: batches and draws fixed (and saved), announced, not scheduled."""
        batches = schedule(plan, accepted_at, self.config)
        campaign = Campaign(plan, draw(plan, self.config), batches, accepted_at)
        self.campaigns[plan.stem] = campaign
        if self.store is not None:
            draws = campaign.draws
            self.store.save_static(
                plan.stem,
                batch=campaign.batch_of_row(),
                network=draws.network,
                reply=draws.reply,
                reply_delay=draws.reply_delay,
                reply_text=draws.reply_text,
            )
        if announce:
            self.events.emit(
                "campaign_scheduled",
                accepted_at,
                file=plan.file,
                messages=plan.size,
                due=stamp(plan.name.at),
                batches=[
                    {
                        "at": stamp(b.at),
                        "messages": len(b.rows),
                        "rejected": b.rejected,
                        "reason": b.reason,
                    }
                    for b in batches
                ],
            )
        return campaign

    def resume(self, campaign: Campaign, now: datetime) -> None:
        """Schedule what is left of a campaign: batches, then its ACK; its reply pump."""
        for index, batch in enumerate(campaign.batches):
            if index not in campaign.batches_done:
                self.scheduler.at(batch.at, self.send_batch, campaign.plan.stem, index)
        if campaign.batches_left == 0 and not campaign.ack_written:
            self._finish_sending(campaign, now)
        self._arm_pump(campaign)

    def restore(self, plan: Plan, meta: dict[str, Any], static: dict, dynamic: dict) -> Campaign:
        """A campaign as a snapshot saved it (no event, nothing scheduled yet)."""
        batch_of_row = static["batch"]
        batches = [
            Batch(
                datetime.fromisoformat(b["at"]),
                np.flatnonzero(batch_of_row == number).astype(np.int64),
                bool(b["rejected"]),
                str(b["reason"]),
            )
            for number, b in enumerate(meta["batches"])
        ]
        draws = Draws(
            static["network"], static["reply"], static["reply_delay"], static["reply_text"]
        )
        campaign = Campaign(plan, draws, batches, datetime.fromisoformat(meta["accepted_at"]))
        campaign.outcome = dynamic["outcome"].astype(np.int8)
        campaign.replied = dynamic["replied"].astype(bool)
        campaign.batches_done = set(meta["batches_done"])
        campaign.last_send = (
            datetime.fromisoformat(meta["last_send"]) if meta.get("last_send") else None
        )
        campaign.ack_written = bool(meta["ack_written"])
        campaign.generation = int(meta["generation"])
        campaign.dirty = False
        self.campaigns[plan.stem] = campaign
        return campaign

    def rebuild_replies(self, campaign: Campaign) -> None:
        """The heap of simulated replies still to come: delivered, drawn to reply, not yet
        recorded; each at its batch's send time plus its drawn delay."""
        draws = campaign.draws
        rows = np.flatnonzero(
            (campaign.outcome == CODE[Outcome.DELIVERED])
            & (draws.reply != NO_REPLY)
            & ~campaign.replied
        )
        if not len(rows):
            return
        batch_of_row = campaign.batch_of_row()
        sent_at = [campaign.batches[b].at for b in batch_of_row[rows].tolist()]
        delays = draws.reply_delay[rows].tolist()
        campaign.replies = [
            (at + timedelta(seconds=delay), row)
            for at, delay, row in zip(sent_at, delays, rows.tolist(), strict=True)
        ]
        heapq.heapify(campaign.replies)

    # --- recovery (at start, before anything runs) --------------------------------------

    def recover(self, saved: Saved | None, tail: Tail) -> set[str]:
        """Rebuild the campaigns in flight from the snapshot and the log after it, repair
        what a kill left half-done, schedule what is left. Returns the stems the log says
        were rejected (their ``.lock``, if still there, only needs its rename).

        See :mod:`smsdrop.sandbox.state` for why this is enough for "never twice, never lost".
        """
        assert self.store is not None
        self.taken.update(dict.fromkeys(saved.document.get("requests", []) if saved else []))
        self.taken.update(dict.fromkeys(sorted(tail.requests)))
        if saved is not None:
            self.balance = saved.document.get("balance", self.config.balance)
            self.ages.load(saved.document.get("ages", []))
            for stem, meta in saved.campaigns.items():
                plan = self._plan(stem, meta["file"])
                if plan is None:
                    continue
                self.restore(
                    plan,
                    meta,
                    saved.arrays(stem, "static"),
                    saved.arrays(stem, "dynamic", int(meta["generation"])),
                )
        scheduled = {e["file"] for e in tail.of("campaign_scheduled")}
        by_file = {c.plan.file: c for c in self.campaigns.values()}
        rejected: set[str] = set()
        appended: dict[str, int] = {}
        for event in tail.events:
            kind, at = event["kind"], datetime.fromisoformat(event["at"])
            if kind == "file_done":
                stem = event["name"].rsplit(".", 1)[0]
                if stem not in self.campaigns:
                    plan = self._plan(stem, event["name"])
                    if plan is not None:
                        announce = event["name"] not in scheduled
                        by_file[plan.file] = self._admit(plan, at, announce)
                continue
            if kind == "file_rejected":
                rejected.add(event["name"].rsplit(".", 1)[0])
                continue
            campaign = by_file.get(event.get("file", ""))
            if campaign is None:
                continue
            campaign.dirty = True
            if kind in ("message_sent", "message_not_sent"):
                index = int(event["row"]) - 1
                if campaign.outcome[index] < 0:
                    campaign.outcome[index] = CODE[Outcome(event["status"])]
                    if self.balance is not None:
                        self.balance -= int(event["credits"])
            elif kind == "batch_done" and "batch" in event:
                campaign.batches_done.add(int(event["batch"]))
                campaign.last_send = max(campaign.last_send or at, at)
            elif kind == "reply_received":
                if event.get("source") == "simulated" and event.get("row"):
                    campaign.replied[int(event["row"]) - 1] = True
                line = write_reply_line(event["msisdn"], at, event["text"], event["idremote"])
                for name in event.get("reports", []):
                    appended[name] = appended.get(name, 0) + len(line)
            elif kind == "report_written" and event.get("report") == "ACK":
                campaign.ack_written = True
        self._repair_reports(saved, appended)
        for campaign in self.campaigns.values():
            self._repair_ack(campaign)
        self.commit(force=True)
        for campaign in self.campaigns.values():
            self.rebuild_replies(campaign)
            self.resume(campaign, self.clock.now())
        if self.campaigns:
            log.info("resumed %d campaign(s) from %s", len(self.campaigns), self.store.folder)
        return rejected

    def _plan(self, stem: str, file: str) -> Plan | None:
        assert self.store is not None
        source = self.store.source(stem, file)
        if not source.exists():
            log.warning("%r: its kept SEND file is gone, the campaign cannot resume", file)
            return None
        return build_plan(source, file, parse_name(file), self.config)

    def _repair_reports(self, saved: Saved | None, appended: dict[str, int]) -> None:
        """Cut reply bytes a kill left in SMSMO/STOP without their ``reply_received`` line
        (appended, not logged): they are produced again, logged this time."""
        known = dict(saved.document.get("reports", {})) if saved is not None else {}
        for campaign in self.campaigns.values():
            for kind in (FileKind.SMSMO, FileKind.STOP):
                name = campaign.plan.name.with_kind(kind).name
                path = self.layout.report / name
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue
                expected = int(known.get(name, 0)) + appended.get(name, 0)
                if size > expected:
                    os.truncate(path, expected)
                    log.warning(
                        "%r: %d byte(s) of replies were not logged before a stop; cut, "
                        "they come again",
                        f"Report/{name}",
                        size - expected,
                    )

    def _repair_ack(self, campaign: Campaign) -> None:
        """An ACK renamed into ``Report/`` by a process killed before it logged it."""
        name = campaign.plan.name.with_kind(FileKind.ACK).name
        (self.layout.tmp / name).unlink(missing_ok=True)  # assembled, never renamed: redone
        if campaign.ack_written or campaign.batches_left:
            return
        path = self.layout.report / name
        if path.exists():
            when = (campaign.last_send or campaign.accepted_at) + self.config.ack_delay(
                campaign.plan.size
            )
            self.ack_logged(campaign, when, name, path.stat().st_size, recovered=True)

    # --- the snapshot ---------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The snapshot's JSON part (arrays are written by :meth:`commit`)."""
        reports = {}
        for campaign in self.campaigns.values():
            for kind in (FileKind.SMSMO, FileKind.STOP):
                name = campaign.plan.name.with_kind(kind).name
                try:
                    reports[name] = (self.layout.report / name).stat().st_size
                except FileNotFoundError:
                    continue
        return {
            "log_offset": self.events.size(),
            "balance": self.balance,
            "sim": stamp(self.clock.now()),
            "wall": stamp(datetime.now(UTC)),
            "ages": self.ages.dump(),
            "reports": reports,
            "requests": list(self.taken)[-TAKEN_KEPT:],
            "campaigns": {
                stem: {
                    "file": c.plan.file,
                    "accepted_at": stamp(c.accepted_at),
                    "batches": [
                        {"at": stamp(b.at), "rejected": b.rejected, "reason": b.reason}
                        for b in c.batches
                    ],
                    "batches_done": sorted(c.batches_done),
                    "last_send": stamp(c.last_send) if c.last_send else None,
                    "ack_written": c.ack_written,
                    "generation": c.generation,
                }
                for stem, c in self.campaigns.items()
            },
        }

    def commit(self, force: bool = False) -> None:
        """Persist every change made so far (worker thread; after the events are written).

        At most every :data:`COMMIT_INTERVAL` unless ``force`` (the stop, the recovery).
        """
        if self.store is None:
            return
        if not force and time.monotonic() - self._committed < COMMIT_INTERVAL:
            return
        self._committed = time.monotonic()
        changed = {}
        for stem, campaign in self.campaigns.items():
            if campaign.dirty:
                campaign.generation += 1
                self.store.save_dynamic(
                    stem, campaign.generation, outcome=campaign.outcome, replied=campaign.replied
                )
                campaign.dirty = False
                changed[stem] = campaign.generation
        self.store.commit(self.document(), changed)

    def send_batch(self, when: datetime, stem: str, index: int) -> None:
        """Decide a batch at ``when``: rejected, or sent while the balance lasts.

        Once per batch; the rows already decided (logged before a crash) are not decided
        again, so a batch cut short by a kill is completed, never repeated.
        """
        campaign = self.campaigns[stem]
        if index in campaign.batches_done:
            return
        plan, batch = campaign.plan, campaign.batches[index]
        rows = batch.rows[campaign.outcome[batch.rows] < 0]
        if batch.rejected:
            codes = np.full(len(rows), CODE[Outcome.REJECTED], dtype=np.int8)
            paid = np.zeros(len(rows), dtype=bool)
        else:
            segments = plan.segments[rows]
            if self.balance is None:
                paid = np.ones(len(rows), dtype=bool)
            else:
                # Debited in file order; once a message does not fit, the rest are not sent.
                paid = np.cumsum(segments) <= self.balance
                self.balance -= int(segments[paid].sum())
            codes = np.where(paid, campaign.draws.network[rows], CODE[Outcome.NO_CREDIT])
            codes = codes.astype(np.int8)
        campaign.outcome[rows] = codes
        campaign.dirty = True
        credits = int(plan.segments[rows][paid].sum())
        self._message_events(when, plan, rows, codes, paid)
        statuses = _status_counts(codes)
        self.events.emit(
            "batch_done",
            when,
            file=plan.file,
            batch=index,
            messages=len(rows),
            sent=int(paid.sum()),
            credits=credits,
            balance=self.balance,
            statuses=dict(statuses),
            reason=batch.reason,
        )
        log.info(
            "%r: %d message(s) %s at %s, %d credit(s) debited",
            plan.file,
            len(rows),
            "rejected" if batch.rejected else "sent",
            stamp(when),
            credits,
        )
        campaign.batches_done.add(index)
        campaign.last_send = max(campaign.last_send or when, when)
        self.commit()
        self._queue_replies(campaign, when, rows[paid])
        if campaign.batches_left == 0:
            self._finish_sending(campaign, when)

    def _finish_sending(self, campaign: Campaign, when: datetime) -> None:
        ack_at = (campaign.last_send or when) + self.config.ack_delay(campaign.plan.size)
        self.scheduler.at(ack_at, self.write_ack, campaign.plan.stem)

    def _message_events(
        self, when: datetime, plan: Plan, rows: np.ndarray, codes: np.ndarray, paid: np.ndarray
    ) -> None:
        """One ``message_sent`` / ``message_not_sent`` line per message, built vectorised."""
        sent = np.isin(codes, _SENT_CODES)
        for kind, mask in (("message_sent", sent), ("message_not_sent", ~sent)):
            if mask.any():
                self.events.write_lines(
                    _message_lines(kind, when, plan, rows[mask], codes[mask], paid[mask])
                )

    # --- ACK --------------------------------------------------------------------------

    def write_ack(self, when: datetime, stem: str) -> None:
        """Write ``Report/ACK-….csv``, one line per message of the file, in file order.

        Assembled aside and renamed into ``Report/`` whole, then logged: an ACK found in
        ``Report/`` without its event after a crash is logged at start (state module).
        """
        campaign = self.campaigns[stem]
        if campaign.ack_written:
            return
        plan = campaign.plan
        codes = campaign.outcome
        sent = np.isin(codes, _SENT_CODES)
        operator = ack_operator_ids(self.config.seed, stem, plan.size)
        operator = pc.if_else(pa.array(sent), operator, _s(""))
        data = ack_bytes(plan.idremote, plan.msisdn, plan.oadc, plan.msg, codes, operator)
        name = plan.name.with_kind(FileKind.ACK).name
        target = self.layout.report / name
        partial = self.layout.tmp / name
        partial.write_bytes(data)
        os.replace(partial, target)
        self.ages.touch(target, when)
        self.ack_logged(campaign, when, name, len(data))
        self.commit()
        log.info("%r written: %d record(s)", f"Report/{name}", plan.size)

    def ack_logged(
        self, campaign: Campaign, when: datetime, name: str, size: int, **extra: Any
    ) -> None:
        campaign.ack_written = True
        self.events.emit(
            "report_written",
            when,
            report="ACK",
            name=name,
            file=campaign.plan.file,
            records=campaign.plan.size,
            bytes=size,
            statuses=dict(_status_counts(campaign.outcome)),
            **extra,
        )

    # --- replies ------------------------------------------------------------------------

    def _queue_replies(self, campaign: Campaign, when: datetime, rows: np.ndarray) -> None:
        draws = campaign.draws
        replying = rows[(draws.reply[rows] != NO_REPLY)]
        if not len(replying):
            return
        for row, delay in zip(replying.tolist(), draws.reply_delay[replying].tolist(), strict=True):
            heapq.heappush(campaign.replies, (when + timedelta(seconds=delay), row))
        self._arm_pump(campaign)

    def _arm_pump(self, campaign: Campaign) -> None:
        if not campaign.replies:
            return
        first = campaign.replies[0][0]
        if campaign.pump_at is None or first < campaign.pump_at:
            campaign.pump_at = first
            self.scheduler.at(first, self.pump_replies, campaign.plan.stem)

    def pump_replies(self, when: datetime, stem: str) -> None:
        """Append the simulated replies due by ``when`` to the SMSMO (and STOP) files."""
        campaign = self.campaigns[stem]
        if campaign.pump_at is not None and campaign.pump_at <= when:
            campaign.pump_at = None
        # Late (after a clock jump), take every reply due by now in one go: one job per
        # reply would be thousands of jobs. Each keeps its own time in the files and events.
        until = max(when, self.clock.now())
        draws, due = campaign.draws, []
        while campaign.replies and campaign.replies[0][0] <= until:
            at, row = heapq.heappop(campaign.replies)
            texts = STOP_SPELLINGS if draws.reply[row] == STOP_REPLY else MO_TEXTS
            due.append((at, row, texts[int(draws.reply_text[row])]))
        if due:
            self._replies(campaign, due, source="simulated")
            campaign.replied[[row for _, row, _ in due]] = True
            campaign.dirty = True
            self.commit()
        self._arm_pump(campaign)

    def _replies(
        self,
        campaign: Campaign,
        replies: list[tuple[datetime, int, str]],
        source: str,
        **extra: Any,
    ) -> list[dict[str, Any]]:
        """Record replies (time order): one append per report file, one write of events."""
        plan = campaign.plan
        names = {kind: plan.name.with_kind(kind).name for kind in (FileKind.SMSMO, FileKind.STOP)}
        index = pa.array([row for _, row, _ in replies], pa.int64())
        numbers = plan.msisdn.take(index).to_pylist()
        ids = plan.idremote.take(index).to_pylist()
        wall = stamp(datetime.now(UTC))
        lines: dict[FileKind, list[bytes]] = {FileKind.SMSMO: [], FileKind.STOP: []}
        found = []
        for (at, row, text), msisdn, idremote in zip(replies, numbers, ids, strict=True):
            line = write_reply_line(msisdn, at, text, idremote)
            stop = _is_stop(text)
            kinds = [FileKind.SMSMO, FileKind.STOP] if stop else [FileKind.SMSMO]
            for kind in kinds:
                lines[kind].append(line)
            found.append(
                {
                    "kind": "reply_received",
                    "at": stamp(at),
                    "wall": wall,
                    "file": plan.file,
                    "row": int(row) + 1,
                    "reports": [names[k] for k in kinds],
                    "msisdn": msisdn,
                    "idremote": idremote,
                    "stop": stop,
                    "text": text,
                    "source": source,
                    **extra,
                }
            )
        last = replies[-1][0]
        for kind, chunk in lines.items():
            if chunk:
                path = self.layout.report / names[kind]
                with open(path, "ab") as handle:  # one write: readers see whole records
                    handle.write(b"".join(chunk))
                self.ages.touch(path, last)
        self.events.write_lines(self.events.encode(*found))
        return found

    def inject_reply(self, msisdn: str, text: str, request_id: str) -> dict[str, Any]:
        """A reply from a chosen number, now, to the latest campaign that reached it."""
        now = self.clock.now()
        numbers = classify(pd.Series([msisdn], dtype="string[pyarrow]"))
        e164 = numbers["e164"].iloc[0]
        e164 = msisdn if pd.isna(e164) else str(e164)
        for campaign in reversed(list(self.campaigns.values())):
            hits = np.flatnonzero(
                pc.equal(campaign.plan.msisdn, _s(e164)).to_numpy(zero_copy_only=False)
                & np.isin(campaign.outcome, _SENT_CODES)
            )
            if len(hits):
                [event] = self._replies(
                    campaign, [(now, int(hits[-1]), text)], source="injected", request=request_id
                )
                log.info("reply from %s injected into %s", mask_one(e164), event["reports"])
                return event
        log.info("reply from %s: no message was sent to this number", mask_one(e164))
        return self.events.emit("reply_unmatched", now, msisdn=e164, request=request_id)

    # --- retention ----------------------------------------------------------------------

    def sweep(self, when: datetime, busy_inodes: frozenset[int]) -> list[str]:
        """Delete files of ``Send/`` and ``Report/`` older than the retention (simulated).

        ``.lock`` files (being processed) and files open for writing are kept. A finished
        campaign (ACK written, no reply to come) is forgotten the retention after its last
        send, with its kept SEND file.
        """
        deleted = []
        for folder in (self.layout.send, self.layout.report):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if not entry.is_file(follow_symlinks=False) or entry.name.endswith(".lock"):
                    continue
                inode = entry.inode()
                path = Path(entry.path)
                if inode in busy_inodes:
                    continue
                if self.ages.age_of(path, inode, when) <= self.config.retention:
                    continue
                try:
                    path.unlink()
                except OSError:
                    continue
                self.ages.forget(path, inode)
                name = f"{folder.name}/{entry.name}"
                deleted.append(name)
                self.events.emit("file_deleted", when, name=name, reason="retention")
                log.info("%r deleted: older than %s", name, self.config.retention)
        forgotten = []
        for stem, campaign in list(self.campaigns.items()):
            finished = campaign.ack_written and not campaign.replies
            since = campaign.last_send or campaign.accepted_at
            if finished and when - since > self.config.retention:
                del self.campaigns[stem]  # its replies go unmatched from now on
                if self.store is not None:
                    self.store.drop(stem)
                forgotten.append(stem)
        if deleted or forgotten:
            self.commit()
        return deleted


def _status_counts(codes: np.ndarray) -> dict[str, int]:
    counts = np.bincount(codes[codes >= 0].astype(np.int64), minlength=len(OUTCOMES))
    return {OUTCOMES[i].value: int(n) for i, n in enumerate(counts.tolist()) if n}


@lru_cache(maxsize=4096)
def _is_stop(text: str) -> bool:
    return is_stop(text)


def _message_lines(
    kind: str, when: datetime, plan: Plan, rows: np.ndarray, codes: np.ndarray, paid: np.ndarray
) -> bytes:
    """JSON lines for messages, assembled with string kernels (1M lines in well under 1 s).

    Safe without escaping: the check accepted the file, so IDREMOTE is ASCII alphanumeric
    and MSISDN is ``+`` and digits; the file name follows the naming rules. Verified anyway.
    """
    index = pa.array(rows)
    idremote, msisdn = plan.idremote.take(index), plan.msisdn.take(index)
    for values in (idremote, msisdn):
        if not pc.all(pc.match_substring_regex(values, _JSON_SAFE)).as_py():
            raise ValueError("a field would need JSON escaping; the check should have refused it")
    segments = pa.array(plan.segments[rows]).cast(_LS)
    credits = pc.if_else(pa.array(paid), segments, _s("0"))
    code_index = pa.array(codes.astype(np.int64))
    head = f'{{"kind":"{kind}","at":"{stamp(when)}","file":"{plan.file}","row":'
    lines = pc.binary_join_element_wise(
        _s(head),
        pa.array(plan.row[rows]).cast(_LS),
        _s(',"idremote":"'),
        idremote,
        _s('","msisdn":"'),
        msisdn,
        _s('","status":"'),
        _STATUS_NAMES.take(code_index),
        _s('","idstatus":'),
        _IDSTATUS.take(code_index),
        _s(',"segments":'),
        segments,
        _s(',"credits":'),
        credits,
        _s("}\n"),
        _s(""),
    )
    return _bytes_of(lines)
