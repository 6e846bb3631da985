"""Triggers and sensors: serialization, the event schema, timeouts, riding out faults."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, TaskDeferred
from airflow.sdk.module_loading import import_string
from airflow.sdk.serde import deserialize, serialize

from smsdrop.airflow.exceptions import MTargetConfigError, MTargetTransferError
from smsdrop.airflow.hooks import MTargetHook
from smsdrop.airflow.sensors import (
    MTargetFileStatusSensor,
    MTargetReportSensor,
    ack_timeout,
)
from smsdrop.airflow.triggers import (
    MTargetFileStatusTrigger,
    MTargetReportTrigger,
    MTargetTrigger,
)
from tests.airflow.support import write_send

NAME = "SEND-12345-20261201-0800-sense.csv"
ACK = "ACK-12345-20261201-0800-sense.csv"
SCHEMA = {"status", "reason", "name", "target", "path", "state", "bytes", "message"}


def first_event(trigger: MTargetTrigger) -> dict:
    async def run() -> dict:
        async for fired in trigger.run():
            return fired.payload
        raise AssertionError("no event")

    return asyncio.run(run())


@pytest.mark.parametrize(
    "trigger",
    [
        MTargetFileStatusTrigger(
            name=NAME, mtarget_conn_id="c1", folder="Send", poll_interval=7.5, deadline=None
        ),
        MTargetReportTrigger(
            name=NAME,
            report_name=ACK,
            mtarget_conn_id="c2",
            folder="Out/Report",
            poll_interval=600,
            deadline="2026-12-05T19:00:00+00:00",
            stable_for=0.5,
        ),
    ],
    ids=["status", "report"],
)
def test_trigger_serialization_round_trip(trigger: MTargetTrigger) -> None:
    classpath, kwargs = trigger.serialize()
    assert classpath == f"smsdrop.airflow.triggers.{type(trigger).__name__}"
    # As the triggerer stores and revives it: JSON-safe kwargs, serde, import by classpath.
    stored = json.loads(json.dumps(serialize(kwargs)))
    revived = import_string(classpath)(**deserialize(stored))
    assert type(revived) is type(trigger)
    assert revived.serialize() == (classpath, kwargs)


def test_every_event_has_the_one_schema(sandbox, connect, tmp_path) -> None:
    connect(sandbox.port)
    hook = MTargetHook()
    hook.upload_atomic(write_send(tmp_path, NAME, 5), NAME)
    sandbox.wait_for("file_done", name=NAME)
    done = first_event(MTargetFileStatusTrigger(name=NAME, poll_interval=0.01))
    absent = first_event(
        MTargetFileStatusTrigger(name=NAME.replace("sense", "other"), poll_interval=0.01)
    )
    late = first_event(
        MTargetReportTrigger(
            name=NAME,
            report_name=ACK,
            folder="Report",
            poll_interval=0.01,
            deadline=datetime.now(UTC).isoformat(),
        )
    )
    sandbox.advance(timedelta(days=1, minutes=1))
    sandbox.wait_for("report_written", file=NAME)
    ack = first_event(
        MTargetReportTrigger(
            name=NAME, report_name=ACK, folder="Report", poll_interval=0.01, stable_for=0.05
        )
    )
    for fired in (done, absent, late, ack):
        assert set(fired) == SCHEMA, fired
        json.dumps(fired)  # stored by the triggerer as JSON
    assert (done["status"], done["state"], done["path"]) == (
        "success",
        "done",
        f"Send/{NAME[:-4]}.done",
    )
    assert (absent["status"], absent["reason"]) == ("error", "absent")
    assert (late["status"], late["reason"]) == ("error", "timeout")
    assert (ack["status"], ack["path"], ack["bytes"]) == (
        "success",
        f"Report/{ACK}",
        (sandbox.layout.report / ACK).stat().st_size,
    )


def test_resume_needs_only_the_event(sandbox, connect) -> None:
    """Under ``dags test`` defer kwargs arrive as None: the event alone resumes the task."""
    connect(sandbox.port)
    sensor = MTargetFileStatusSensor(task_id="status", name=NAME)
    event = {
        "status": "success",
        "reason": None,
        "name": NAME,
        "target": "status",
        "path": f"Send/{NAME[:-4]}.done",
        "state": "done",
        "bytes": 10,
        "message": "accepted",
    }
    assert sensor.execute_complete({}, event) == {
        "name": NAME,
        "state": "done",
        "path": f"Send/{NAME[:-4]}.done",
        "bytes": 10,
    }
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete({}, {**event, "status": "error", "reason": "timeout"})
    with pytest.raises(MTargetTransferError) as network:
        sensor.execute_complete({}, {**event, "status": "error", "reason": "connection"})
    assert not isinstance(network.value, AirflowFailException)  # the sensor's retry waits again
    with pytest.raises(Exception, match="without a trigger event"):
        sensor.execute_complete({}, None)


def test_deferrable_sensor_defers_with_a_deadline_and_execute_complete(
    make_sandbox, connect, tmp_path
) -> None:
    sandbox = make_sandbox(lock_delay=30)  # the .csv stays pending
    connect(sandbox.port)
    MTargetHook().upload_atomic(write_send(tmp_path, NAME, 5), NAME)
    sensor = MTargetFileStatusSensor(
        task_id="status", name={"name": NAME, "records": 5}, poke_interval=5, timeout=600
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=600)
    trigger = deferred.value.trigger
    assert isinstance(trigger, MTargetFileStatusTrigger)
    assert (trigger.name, trigger.folder, trigger.poll_interval) == (NAME, "Send", 5)
    deadline = datetime.fromisoformat(trigger.deadline)
    assert timedelta(seconds=590) < deadline - datetime.now(UTC) <= timedelta(seconds=600)


def test_an_absent_name_fails_the_status_sensor_without_retry(sandbox, connect) -> None:
    connect(sandbox.port)
    sensor = MTargetFileStatusSensor(task_id="status", name=NAME, deferrable=False, retries=3)
    with pytest.raises(MTargetConfigError, match="not in Send/ under any extension"):
        sensor.poke({})


def test_trigger_rides_out_dropped_connections_then_gives_up(
    sandbox, connect, proxy, tmp_path
) -> None:
    connect(proxy.port)
    MTargetHook().upload_atomic(write_send(tmp_path, NAME, 5), NAME)
    sandbox.wait_for("file_done", name=NAME)
    for _ in range(3):
        proxy.cut_next(500)
    fired = first_event(MTargetFileStatusTrigger(name=NAME, poll_interval=0.01))
    assert fired["status"] == "success" and proxy.cuts == 3
    for _ in range(6):
        proxy.cut_next(500)
    fired = first_event(MTargetFileStatusTrigger(name=NAME, poll_interval=0.01))
    assert (fired["status"], fired["reason"]) == ("error", "connection")
    assert "5 polls in a row failed" in fired["message"]


def test_poke_rides_out_a_dropped_connection(sandbox, connect, proxy, tmp_path) -> None:
    connect(proxy.port)
    MTargetHook().upload_atomic(write_send(tmp_path, NAME, 5), NAME)
    sandbox.wait_for("file_done", name=NAME)
    sensor = MTargetFileStatusSensor(task_id="status", name=NAME, deferrable=False)
    proxy.cut_next(300)
    assert sensor.poke({}) is False  # no answer this time; the sensor pokes again
    assert sensor.poke({}).xcom_value["state"] == "done"


def test_report_trigger_waits_for_a_report_to_stop_growing() -> None:
    sizes = iter([100, 180, 180, 180])

    class GrowingFile:
        async def stat(self, path: str) -> SimpleNamespace:
            return SimpleNamespace(size=next(sizes))

    trigger = MTargetReportTrigger(name=NAME, report_name=ACK, stable_for=0.01)
    assert asyncio.run(trigger.check(GrowingFile())) is None  # 100 then 180: still growing
    found = asyncio.run(trigger.check(GrowingFile()))
    assert found is not None and found["bytes"] == 180


PARIS_0800 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sms", "now", "expected"),
    [
        (9_999, PARIS_0800 - timedelta(days=2), timedelta(days=2 + 1, hours=12)),
        (10_000, PARIS_0800 - timedelta(days=2), timedelta(days=2 + 4, hours=12)),
        (None, PARIS_0800, timedelta(days=4, hours=12)),  # unknown: the safe, longer wait
        (50, PARIS_0800 + timedelta(hours=5), timedelta(days=1, hours=12)),  # send time past
    ],
)
def test_ack_timeout_follows_the_spec(sms, now, expected) -> None:
    assert ack_timeout(PARIS_0800, sms, timedelta(hours=12), now=now) == expected


def test_report_sensor_takes_the_spec_timeout_unless_given_one(tmp_path: Path) -> None:
    small = MTargetReportSensor(task_id="ack", name={"name": NAME, "records": 200})
    assert small.report_name() == ACK and small.count() == 200
    wait = timedelta(seconds=small.wait_timeout())
    expected = ack_timeout(PARIS_0800, 200, timedelta(hours=12))
    assert abs(wait - expected) < timedelta(seconds=5)
    big = MTargetReportSensor(task_id="ack", name=NAME, sms_count="250000", margin=timedelta(0))
    assert big.count() == 250_000
    assert timedelta(seconds=big.wait_timeout()) >= timedelta(days=4)
    fixed = MTargetReportSensor(task_id="ack", name=NAME, timeout=timedelta(hours=3))
    assert fixed.wait_timeout() == 3 * 3600
    stop = MTargetReportSensor(task_id="stop", name=NAME, kind="STOP")
    assert stop.report_name() == ACK.replace("ACK-", "STOP-")


def test_a_file_left_unprocessed_past_the_lock_deadline_fails_naming_it(
    make_sandbox, connect, tmp_path
) -> None:
    """The provider holds the .csv (lock_delay): past lock_deadline_minutes since the wait
    began, the poke and the trigger both end in the same error, without retry."""
    from smsdrop.airflow.exceptions import MTargetFailure

    sandbox = make_sandbox(lock_delay=600)
    connect(sandbox.port)
    MTargetHook().upload_atomic(write_send(tmp_path, NAME, 5), NAME)
    sensor = MTargetFileStatusSensor(
        task_id="status", name=NAME, deferrable=False, lock_deadline_minutes="120"
    )
    sensor.since = datetime.now(UTC) - timedelta(minutes=119)
    assert sensor.poke({}) is False  # a minute short: waits
    assert sensor.wait_timeout() == 120 * 60 + 60  # outlasts the deadline
    sensor.since = datetime.now(UTC) - timedelta(minutes=125)
    with pytest.raises(MTargetFailure) as stuck:
        sensor.poke({})
    assert str(stuck.value).startswith(
        f"Send/{NAME}: {NAME} is still .csv 125 min after its upload (deadline 120 min"
    )
    since = (datetime.now(UTC) - timedelta(minutes=125)).isoformat()
    trigger = MTargetFileStatusTrigger(
        name=NAME, poll_interval=0.01, since=since, lock_deadline_minutes=120.0
    )
    fired = first_event(trigger)
    assert (fired["status"], fired["reason"], fired["state"]) == ("error", "stuck", "csv")
    assert fired["message"] == str(stuck.value)
    classpath, kwargs = trigger.serialize()
    assert import_string(classpath)(**kwargs).serialize() == (classpath, kwargs)
    assert not sandbox.events("file_received")
