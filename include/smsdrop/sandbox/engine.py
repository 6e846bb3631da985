"""The simulated provider after a file is accepted: sends, balance, ACK, replies, retention.

Every method that changes state runs on the sandbox's single worker thread (scheduler jobs,
file checks, inbox requests), in simulated-time order, so the balance and each campaign's
outcomes need no lock. Work that scales with recipients is vectorised: the per-message
event lines and the ACK are assembled with pyarrow kernels (:mod:`smsdrop.sandbox.records`),
not one Python call per row. What a campaign in flight holds is in
:mod:`smsdrop.sandbox.inflight`; how it is rebuilt at start, in :mod:`smsdrop.sandbox.recovery`.
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop.dropbox import RemoteState
from smsdrop.msisdn import classify, mask_one
from smsdrop.naming import FileKind
from smsdrop.reports import write_reply_line
from smsdrop.sandbox import recovery
from smsdrop.sandbox.clock import SimClock
from smsdrop.sandbox.config import MO_TEXTS, STOP_SPELLINGS, Outcome, SandboxConfig
from smsdrop.sandbox.events import EventLog, stamp
from smsdrop.sandbox.inflight import AcceptedFile, FileAges
from smsdrop.sandbox.layout import Layout
from smsdrop.sandbox.records import SENT_CODES, ack_bytes, message_lines, status_counts
from smsdrop.sandbox.replies import is_stop
from smsdrop.sandbox.scheduler import Scheduler
from smsdrop.sandbox.sending import (
    CODE,
    NO_REPLY,
    STOP_REPLY,
    Plan,
    ack_operator_ids,
    draw,
    schedule,
)
from smsdrop.sandbox.state import Saved, StateStore, Tail

__all__ = ["Engine", "FileAges", "ack_bytes"]

log = logging.getLogger("smsdrop.sandbox")

#: Real seconds between two snapshots at most once (the log after a snapshot is replayed at
#: start, so a later snapshot loses nothing; it only makes the replay longer). A million-row
#: campaign pumps replies many times a second: one snapshot each would cost more than them.
COMMIT_INTERVAL = 0.5
_EMPTY = pa.scalar("", pa.large_string())


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
        self.campaigns: dict[str, AcceptedFile] = {}
        self.store: StateStore | None = None  # set by the Sandbox: commits after each change
        #: Inbox request ids taken (the latest ones): a request file a kill left behind
        #: after it was taken is removed at the next look, never taken twice.
        self.taken: dict[str, None] = {}
        self._committed = 0.0  # time.monotonic() of the last snapshot

    # --- acceptance and sending ---------------------------------------------------------

    def accept(self, plan: Plan, accepted_at: datetime, announce: bool = True) -> AcceptedFile:
        """Schedule an accepted file's messages (worker thread); once per name.

        ``announce`` False: recovery of a campaign whose ``campaign_scheduled`` is logged.
        """
        known = self.campaigns.get(plan.stem)
        if known is not None:
            return known
        campaign = self.admit(plan, accepted_at, announce)
        self.commit()
        self.resume(campaign, accepted_at)
        return campaign

    def admit(self, plan: Plan, accepted_at: datetime, announce: bool) -> AcceptedFile:
        """A new campaign: batches and draws fixed (and saved), announced, not scheduled."""
        batches = schedule(plan, accepted_at, self.config)
        campaign = AcceptedFile(plan, draw(plan, self.config), batches, accepted_at)
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

    def resume(self, campaign: AcceptedFile, now: datetime) -> None:
        """Schedule what is left of a campaign: batches, then its ACK; its reply pump."""
        for index, batch in enumerate(campaign.batches):
            if index not in campaign.batches_done:
                self.scheduler.at(batch.at, self.send_batch, campaign.plan.stem, index)
        if campaign.batches_left == 0 and not campaign.ack_written:
            self._finish_sending(campaign, now)
        self._arm_pump(campaign)

    def recover(self, saved: Saved | None, tail: Tail) -> set[str]:
        """Rebuild the campaigns in flight at start (:func:`smsdrop.sandbox.recovery.recover`)."""
        return recovery.recover(self, saved, tail)

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
        self.store.commit(recovery.snapshot_document(self), changed)

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
        statuses = status_counts(codes)
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

    def _finish_sending(self, campaign: AcceptedFile, when: datetime) -> None:
        ack_at = (campaign.last_send or when) + self.config.ack_delay(campaign.plan.size)
        self.scheduler.at(ack_at, self.write_ack, campaign.plan.stem)

    def _message_events(
        self, when: datetime, plan: Plan, rows: np.ndarray, codes: np.ndarray, paid: np.ndarray
    ) -> None:
        """One ``message_sent`` / ``message_not_sent`` line per message, built vectorised."""
        sent = np.isin(codes, SENT_CODES)
        for kind, mask in (("message_sent", sent), ("message_not_sent", ~sent)):
            if mask.any():
                self.events.write_lines(
                    message_lines(kind, when, plan, rows[mask], codes[mask], paid[mask])
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
        sent = np.isin(codes, SENT_CODES)
        operator = ack_operator_ids(self.config.seed, stem, plan.size)
        operator = pc.if_else(pa.array(sent), operator, _EMPTY)
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
        self, campaign: AcceptedFile, when: datetime, name: str, size: int, **extra: Any
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
            statuses=dict(status_counts(campaign.outcome)),
            **extra,
        )

    # --- replies ------------------------------------------------------------------------

    def _queue_replies(self, campaign: AcceptedFile, when: datetime, rows: np.ndarray) -> None:
        draws = campaign.draws
        replying = rows[(draws.reply[rows] != NO_REPLY)]
        if not len(replying):
            return
        for row, delay in zip(replying.tolist(), draws.reply_delay[replying].tolist(), strict=True):
            heapq.heappush(campaign.replies, (when + timedelta(seconds=delay), row))
        self._arm_pump(campaign)

    def _arm_pump(self, campaign: AcceptedFile) -> None:
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
        campaign: AcceptedFile,
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
                pc.equal(campaign.plan.msisdn, pa.scalar(e164, pa.large_string())).to_numpy(
                    zero_copy_only=False
                )
                & np.isin(campaign.outcome, SENT_CODES)
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
                being_processed = entry.name.endswith(f".{RemoteState.LOCK}")
                if not entry.is_file(follow_symlinks=False) or being_processed:
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


@lru_cache(maxsize=4096)
def _is_stop(text: str) -> bool:
    return is_stop(text)
