"""The engine at start: campaigns in flight rebuilt from the snapshot and the log after it.

Also the snapshot's JSON part, the other half of the same contract. See
:mod:`smsdrop.sandbox.state` for why this is enough for "never twice, never lost".
"""

from __future__ import annotations

import heapq
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from smsdrop.naming import FileKind, parse_name
from smsdrop.reports import write_reply_line
from smsdrop.sandbox.config import Outcome
from smsdrop.sandbox.events import stamp
from smsdrop.sandbox.inflight import AcceptedFile
from smsdrop.sandbox.sending import CODE, NO_REPLY, Batch, Draws, Plan, build_plan
from smsdrop.sandbox.state import Saved, Tail

if TYPE_CHECKING:
    from smsdrop.sandbox.engine import Engine

__all__ = ["TAKEN_KEPT", "rebuild_replies", "recover", "restore", "snapshot_document"]

log = logging.getLogger("smsdrop.sandbox")

#: How many taken inbox request ids the snapshot keeps.
TAKEN_KEPT = 10_000


def recover(engine: Engine, saved: Saved | None, tail: Tail) -> set[str]:
    """Rebuild the campaigns in flight from the snapshot and the log after it, repair
    what a kill left half-done, schedule what is left. Returns the stems the log says
    were rejected (their ``.lock``, if still there, only needs its rename).

    See :mod:`smsdrop.sandbox.state` for why this is enough for "never twice, never lost".
    """
    assert engine.store is not None
    engine.taken.update(dict.fromkeys(saved.document.get("requests", []) if saved else []))
    engine.taken.update(dict.fromkeys(sorted(tail.requests)))
    if saved is not None:
        engine.balance = saved.document.get("balance", engine.config.balance)
        engine.ages.load(saved.document.get("ages", []))
        for stem, meta in saved.campaigns.items():
            plan = _plan(engine, stem, meta["file"])
            if plan is None:
                continue
            restore(
                engine,
                plan,
                meta,
                saved.arrays(stem, "static"),
                saved.arrays(stem, "dynamic", int(meta["generation"])),
            )
    scheduled = {e["file"] for e in tail.of("campaign_scheduled")}
    by_file = {c.plan.file: c for c in engine.campaigns.values()}
    rejected: set[str] = set()
    appended: dict[str, int] = {}
    for event in tail.events:
        kind, at = event["kind"], datetime.fromisoformat(event["at"])
        if kind == "file_done":
            stem = event["name"].rsplit(".", 1)[0]
            if stem not in engine.campaigns:
                plan = _plan(engine, stem, event["name"])
                if plan is not None:
                    announce = event["name"] not in scheduled
                    by_file[plan.file] = engine.admit(plan, at, announce)
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
                if engine.balance is not None:
                    engine.balance -= int(event["credits"])
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
    _repair_reports(engine, saved, appended)
    for campaign in engine.campaigns.values():
        _repair_ack(engine, campaign)
    engine.commit(force=True)
    for campaign in engine.campaigns.values():
        rebuild_replies(campaign)
        engine.resume(campaign, engine.clock.now())
    if engine.campaigns:
        log.info("resumed %d campaign(s) from %s", len(engine.campaigns), engine.store.folder)
    return rejected


def _plan(engine: Engine, stem: str, file: str) -> Plan | None:
    assert engine.store is not None
    source = engine.store.source(stem, file)
    if not source.exists():
        log.warning("%r: its kept SEND file is gone, the campaign cannot resume", file)
        return None
    return build_plan(source, file, parse_name(file), engine.config)


def _repair_reports(engine: Engine, saved: Saved | None, appended: dict[str, int]) -> None:
    """Cut reply bytes a kill left in SMSMO/STOP without their ``reply_received`` line
    (appended, not logged): they are produced again, logged this time."""
    known = dict(saved.document.get("reports", {})) if saved is not None else {}
    for campaign in engine.campaigns.values():
        for kind in (FileKind.SMSMO, FileKind.STOP):
            name = campaign.plan.name.with_kind(kind).name
            path = engine.layout.report / name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            expected = int(known.get(name, 0)) + appended.get(name, 0)
            if size > expected:
                os.truncate(path, expected)
                log.warning(
                    "%r: %d byte(s) of replies were not logged before a stop; cut, they come again",
                    f"Report/{name}",
                    size - expected,
                )


def _repair_ack(engine: Engine, campaign: AcceptedFile) -> None:
    """An ACK renamed into ``Report/`` by a process killed before it logged it."""
    name = campaign.plan.name.with_kind(FileKind.ACK).name
    (engine.layout.tmp / name).unlink(missing_ok=True)  # assembled, never renamed: redone
    if campaign.ack_written or campaign.batches_left:
        return
    path = engine.layout.report / name
    if path.exists():
        when = (campaign.last_send or campaign.accepted_at) + engine.config.ack_delay(
            campaign.plan.size
        )
        engine.ack_logged(campaign, when, name, path.stat().st_size, recovered=True)


def restore(
    engine: Engine, plan: Plan, meta: dict[str, Any], static: dict, dynamic: dict
) -> AcceptedFile:
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
    draws = Draws(static["network"], static["reply"], static["reply_delay"], static["reply_text"])
    campaign = AcceptedFile(plan, draws, batches, datetime.fromisoformat(meta["accepted_at"]))
    campaign.outcome = dynamic["outcome"].astype(np.int8)
    campaign.replied = dynamic["replied"].astype(bool)
    campaign.batches_done = set(meta["batches_done"])
    campaign.last_send = (
        datetime.fromisoformat(meta["last_send"]) if meta.get("last_send") else None
    )
    campaign.ack_written = bool(meta["ack_written"])
    campaign.generation = int(meta["generation"])
    campaign.dirty = False
    engine.campaigns[plan.stem] = campaign
    return campaign


def rebuild_replies(campaign: AcceptedFile) -> None:
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


def snapshot_document(engine: Engine) -> dict[str, Any]:
    """The snapshot's JSON part (the arrays are written by :meth:`Engine.commit`)."""
    reports = {}
    for campaign in engine.campaigns.values():
        for kind in (FileKind.SMSMO, FileKind.STOP):
            name = campaign.plan.name.with_kind(kind).name
            try:
                reports[name] = (engine.layout.report / name).stat().st_size
            except FileNotFoundError:
                continue
    return {
        "log_offset": engine.events.size(),
        "balance": engine.balance,
        "sim": stamp(engine.clock.now()),
        "wall": stamp(datetime.now(UTC)),
        "ages": engine.ages.dump(),
        "reports": reports,
        "requests": list(engine.taken)[-TAKEN_KEPT:],
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
            for stem, c in engine.campaigns.items()
        },
    }
