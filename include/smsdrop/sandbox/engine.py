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
from smsdrop.naming import FileKind
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
    draw,
    schedule,
)
from smsdrop.sandbox.replies import is_stop
from smsdrop.sandbox.scheduler import Scheduler

__all__ = ["Engine", "FileAges", "ack_bytes"]

log = logging.getLogger("smsdrop.sandbox")

_LS = pa.large_string()
_STATUS_NAMES = pa.array([o.value for o in OUTCOMES], _LS)
_IDSTATUS = pa.array([str(STATUSES[o].idstatus) for o in OUTCOMES], _LS)
_SENT_CODES = np.array([CODE[o] for o in OUTCOMES if STATUSES[o].sent], dtype=np.int8)
_JSON_SAFE = r"^[A-Za-z0-9+]*$"


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


@dataclass
class Campaign:
    """One accepted file on its way: outcomes so far, batches left, replies to come."""

    plan: Plan
    draws: Draws
    batches: list[Batch]
    accepted_at: datetime
    outcome: np.ndarray = field(init=False)  # int8 code per row, -1 until decided
    batches_left: int = field(init=False)
    last_send: datetime | None = None
    replies: list[tuple[datetime, int]] = field(default_factory=list)  # heap (time, row)
    pump_at: datetime | None = None
    ack_written: bool = False

    def __post_init__(self) -> None:
        self.outcome = np.full(self.plan.size, -1, dtype=np.int8)
        self.batches_left = len(self.batches)


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

    # --- acceptance and sending ---------------------------------------------------------

    def accept(self, plan: Plan, accepted_at: datetime) -> Campaign:
        """Schedule an accepted file's messages (worker thread)."""
        batches = schedule(plan, accepted_at, self.config)
        campaign = Campaign(plan, draw(plan, self.config), batches, accepted_at)
        self.campaigns[plan.stem] = campaign
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
        for index, batch in enumerate(batches):
            self.scheduler.at(batch.at, self.send_batch, plan.stem, index)
        if not batches:
            self._finish_sending(campaign, accepted_at)
        return campaign

    def send_batch(self, when: datetime, stem: str, index: int) -> None:
        """Decide a batch at ``when``: rejected, or sent while the balance lasts."""
        campaign = self.campaigns[stem]
        plan, batch = campaign.plan, campaign.batches[index]
        rows = batch.rows
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
        credits = int(plan.segments[rows][paid].sum())
        self._message_events(when, plan, rows, codes, paid)
        statuses = _status_counts(codes)
        self.events.emit(
            "batch_done",
            when,
            file=plan.file,
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
        self._queue_replies(campaign, when, rows[paid])
        campaign.batches_left -= 1
        campaign.last_send = max(campaign.last_send or when, when)
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
        """Write ``Report/ACK-….csv``, one line per message of the file, in file order."""
        campaign = self.campaigns[stem]
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
        campaign.ack_written = True
        statuses = _status_counts(codes)
        self.events.emit(
            "report_written",
            when,
            report="ACK",
            name=name,
            file=plan.file,
            records=plan.size,
            bytes=len(data),
            statuses=dict(statuses),
        )
        log.info("%r written: %d record(s)", f"Report/{name}", plan.size)

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
        for (at, _, text), msisdn, idremote in zip(replies, numbers, ids, strict=True):
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

        ``.lock`` files (being processed) and files open for writing are kept.
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
