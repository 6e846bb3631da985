"""Randomized fault schedules across upload, rename and sensors: each ends exactly once.

Every schedule (a seed) draws a SEND file (sometimes one the provider will reject), then
runs the upload task's attempts with a fault drawn for each — the connection cut at a
random byte of the encrypted stream (handshake, state probe, data, rename…), the worker
killed right after the rename, the rename's answer lost — until one attempt succeeds,
sometimes followed by a cleared-and-re-run task. Then the status sensor waits, in poke or
deferrable mode (the trigger run as the triggerer would), its polls cut at random too.

The oracle is the sandbox's event log: one ``file_received``, no ``file_ignored`` (a second
``.csv`` of a processed name), every record sent exactly once — or, for a rejected file,
nothing sent and the sensor failed with the file's name.

``SMSDROP_FAULT_SCHEDULES`` (default 50) sets how many; ``SMSDROP_FAULT_SEED`` the base seed.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest

from smsdrop.airflow.exceptions import MTargetRejectedError
from smsdrop.airflow.hooks import MTargetHook
from smsdrop.airflow.operators import MTargetUploadOperator
from smsdrop.airflow.sensors import MTargetFileStatusSensor
from tests.airflow.support import FaultProxy, deliveries, write_send

SCHEDULES = int(os.environ.get("SMSDROP_FAULT_SCHEDULES", "50"))
BASE_SEED = int(os.environ.get("SMSDROP_FAULT_SEED", "20261201"))
UPLOAD_FAULTS = ("none", "cut", "cut", "cut", "crash_after_rename", "answer_lost")
SENSOR_FAULTS = ("none", "cut", "crash")
MAX_TRIES = 6


class WorkerKilled(BaseException):
    """Stands for the worker process dying: nothing of the task runs after it."""


@dataclass
class Schedule:
    seed: int
    rows: int
    rejected: bool
    log: list[str] = field(default_factory=list)


def draw(seed: int) -> Schedule:
    rng = random.Random(seed)
    return Schedule(seed, rng.randint(20, 5000), rng.random() < 0.15)


@pytest.mark.parametrize("index", range(SCHEDULES))
def test_fault_schedule_ends_with_every_message_sent_once(
    index: int, sandbox, proxy: FaultProxy, connect, tmp_path: Path, monkeypatch
) -> None:
    seed = BASE_SEED + index
    rng = random.Random(seed)
    schedule = draw(seed)
    name = f"SEND-12345-20261201-0800-fz{index:04d}.csv"
    bad_row = rng.randint(1, schedule.rows) if schedule.rejected else None
    local = write_send(tmp_path, name, schedule.rows, bad_row=bad_row)
    size = local.stat().st_size
    connect(proxy.port)
    real_rename = MTargetHook._rename

    def rename_then_die(self, sftp, old, new):
        real_rename(self, sftp, old, new)
        raise WorkerKilled

    def rename_answer_lost(self, sftp, old, new):
        sftp._async_request(
            type(None), paramiko.sftp.CMD_EXTENDED, "posix-rename@openssh.com", old, new
        )
        time.sleep(rng.choice((0.0, 0.01, 0.2)))  # the answer may or may not be on its way
        sftp.get_channel().get_transport().close()
        raise EOFError("connection lost")

    # --- the upload task's attempts ------------------------------------------------------
    results = []
    for attempt in range(1, MAX_TRIES + 1):
        fault = rng.choice(UPLOAD_FAULTS) if attempt < MAX_TRIES else "none"
        if fault == "cut":
            at = rng.randint(0, size + 20_000)
            proxy.cut_next(at)
            fault = f"cut@{at}"
        elif fault == "crash_after_rename":
            monkeypatch.setattr(MTargetHook, "_rename", rename_then_die)
        elif fault == "answer_lost":
            monkeypatch.setattr(MTargetHook, "_rename", rename_answer_lost)
        task = MTargetUploadOperator(task_id="upload", local_path=str(local), retries=MAX_TRIES)
        started = time.perf_counter()
        try:
            results.append(task.execute({}))
            schedule.log.append(f"try {attempt}: {fault} -> success {_since(started)}")
        except (Exception, WorkerKilled) as error:  # noqa: BLE001 - any failure is one try
            schedule.log.append(
                f"try {attempt}: {fault} -> {type(error).__name__} {_since(started)}"
            )
        finally:
            monkeypatch.setattr(MTargetHook, "_rename", real_rename)
            proxy.clear()
        if results:
            break
    assert results, schedule
    if rng.random() < 0.3:  # someone clears the task and it runs again
        results.append(MTargetUploadOperator(task_id="upload", local_path=str(local)).execute({}))
        schedule.log.append("cleared and re-run -> success")
    assert all(r == results[0] for r in results), schedule

    # --- the status sensor's attempts ---------------------------------------------------------
    mode = rng.choice(("poke", "defer"))
    verdict: dict | None = None
    rejected_error: MTargetRejectedError | None = None
    for attempt in range(1, MAX_TRIES + 1):
        fault = rng.choice(SENSOR_FAULTS) if attempt < MAX_TRIES else "none"
        sensor = MTargetFileStatusSensor(
            task_id="status",
            name=results[0],
            poke_interval=0.02,
            deferrable=mode == "defer",
            retries=MAX_TRIES,
        )
        if fault == "cut":
            for _ in range(rng.randint(1, 3)):
                proxy.cut_next(rng.randint(0, 4000))
        started = time.perf_counter()
        try:
            if fault == "crash":
                raise WorkerKilled
            verdict = run_sensor(sensor, mode)
            schedule.log.append(f"sensor {mode} {attempt}: {fault} -> done {_since(started)}")
        except MTargetRejectedError as error:
            rejected_error = error
            schedule.log.append(f"sensor {mode} {attempt}: {fault} -> rejected {_since(started)}")
        except (Exception, WorkerKilled) as error:  # noqa: BLE001 - any failure is one try
            schedule.log.append(
                f"sensor {mode} {attempt}: {fault} -> {type(error).__name__} {_since(started)}"
            )
        finally:
            proxy.clear()
        if verdict is not None or rejected_error is not None:
            break

    # --- the oracle ------------------------------------------------------------------------
    sandbox.settle()
    seen = deliveries(sandbox, name)
    assert seen.received == 1 and seen.ignored == 0, (schedule, seen)
    if schedule.rejected:
        assert rejected_error is not None and name in str(rejected_error), schedule
        assert seen.rejected == 1 and not seen.per_row, (schedule, seen)
    else:
        assert verdict is not None and verdict["state"] == "done", schedule
        assert seen.exactly_once(schedule.rows), (schedule, seen)


def run_sensor(sensor: MTargetFileStatusSensor, mode: str) -> dict | None:
    """One sensor attempt as Airflow runs it: pokes until done, or defer → trigger → resume."""
    if mode == "poke":
        for _ in range(200):
            result = sensor.poke({})
            if result:
                return result.xcom_value
            time.sleep(sensor.poke_interval)
        raise TimeoutError("status not final after 200 pokes")
    hook = MTargetHook(sensor.mtarget_conn_id)
    outcome = sensor.check(hook)  # the check execute() makes before deferring
    if outcome is not None:
        return sensor._finish(outcome)
    trigger = sensor.trigger(hook, deadline=_in(30))

    async def first_event() -> dict:
        async for fired in trigger.run():
            return fired.payload
        raise AssertionError("the trigger ended without an event")

    return sensor.execute_complete({}, asyncio.run(first_event()))


def _since(started: float) -> str:
    return f"({time.perf_counter() - started:.2f} s)"


def _in(seconds: float):
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=seconds)
