"""The operator and both sensors in real ``dag.test()`` runs against the sandbox.

``dag.test()`` runs tasks in this process with Airflow's retries, XComs and templating, and
runs a deferred task's trigger inline ("running trigger in line"), so the deferrable path
(defer → trigger → ``execute_complete`` with the event) is the real one. Each DAG is built
in its test and registered in the metadata DB (``support.register_dag``).

The sandbox's clock is moved by a driver thread: once the file's messages are sent, one
simulated day passes, and the ACK appears.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from smsdrop.airflow.hooks import MTargetHook
from smsdrop.airflow.operators import MTargetUploadOperator
from smsdrop.airflow.sensors import MTargetFileStatusSensor, MTargetReportSensor
from smsdrop.airflow.triggers import MTargetReportTrigger
from smsdrop.sandbox import Sandbox
from tests.airflow.support import (
    BODY,
    FaultProxy,
    deliveries,
    msisdns,
    run_dag,
    task_logs,
    task_states,
    write_send,
    xcom,
)

pytestmark = pytest.mark.usefixtures("airflow_db")


def campaign_dag(dag_id: str, local: Path, *, deferrable: bool) -> DAG:
    """upload → status sensor → ACK sensor, as the campaign DAG will wire them."""
    with DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
        tags=["test"],
    ) as dag:
        upload = MTargetUploadOperator(task_id="upload", local_path=str(local))
        status = MTargetFileStatusSensor(
            task_id="status", name=upload.output, poke_interval=0.1, deferrable=deferrable
        )
        ack = MTargetReportSensor(
            task_id="ack",
            name=upload.output,
            poke_interval=0.1,
            stable_for=0.05,
            deferrable=deferrable,
        )
        upload >> status >> ack
    return dag


@pytest.fixture
def clock_driver(monkeypatch) -> Iterator[Any]:
    """Jump the sandbox a day ahead once the ACK sensor has looked and found nothing.

    So the sensor really waits (defers, or pokes again) before the ACK appears. Its checks
    (the synchronous one and the trigger's) are wrapped to signal an empty look.
    """
    looked = threading.Event()
    stop = threading.Event()
    for cls in (MTargetReportSensor, MTargetReportTrigger):
        original = cls.check
        if asyncio.iscoroutinefunction(original):

            async def check(self, sftp, _original=original):
                found = await _original(self, sftp)
                looked.set() if found is None else None
                return found
        else:

            def check(self, hook, _original=original):
                found = _original(self, hook)
                looked.set() if found is None else None
                return found

        monkeypatch.setattr(cls, "check", check)

    def drive(sandbox: Sandbox, name: str) -> threading.Thread:
        def run() -> None:
            while not stop.is_set():
                if looked.wait(0.02) and sandbox.events("batch_done", file=name):
                    sandbox.advance(timedelta(days=1, minutes=1))
                    return

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    yield drive
    stop.set()


@pytest.mark.slow
def test_deferrable_sensors_under_dag_test_with_a_connection_cut_mid_upload(
    make_sandbox, connect, clock_driver, keys, tmp_path, capfd, request
) -> None:
    name = "SEND-12345-20261201-0800-dagdefer.csv"
    local = write_send(tmp_path, name, 2500)  # ~190 KB
    # A provider that takes 1 s to lock a .csv: the status sensor finds it pending, defers.
    sandbox = make_sandbox(lock_delay=1.0)
    proxy = FaultProxy(sandbox.port)
    request.addfinalizer(proxy.close)
    connect(proxy.port, key_file=None, password=keys.password)  # password login this time
    proxy.cut_next(60_000)  # the upload's first try dies mid-file
    clock_driver(sandbox, name)
    dag = campaign_dag("mtarget_test_deferrable", local, deferrable=True)
    started = time.time()
    run = run_dag(dag)

    states = task_states(run)
    assert states == {
        "upload": ("success", 2),  # try 1 cut, try 2 completed
        "status": ("success", 1),
        "ack": ("success", 1),
    }, states
    assert str(run.state) == "success"
    assert deliveries(sandbox, name).exactly_once(2500)
    assert xcom(run, "status")["state"] == "done"
    assert xcom(run, "ack")["path"] == f"Report/{name.replace('SEND-', 'ACK-')}"
    assert xcom(run, "upload")["name"] == name
    output = "".join(capfd.readouterr()) + task_logs(dag.dag_id, started)
    assert output.count("Pausing task as DEFERRED") == 2  # both sensors really deferred
    assert "is .csv; waiting for .done or .reject" in output  # the trigger polled
    assert_nothing_secret(output, keys.password, keys.client.read_text(), 2500)


def test_poke_sensors_under_dag_test_with_a_crash_after_the_rename(
    sandbox, connect, clock_driver, keys, tmp_path, monkeypatch, capfd
) -> None:
    name = "SEND-12345-20261201-0800-dagpoke.csv"
    local = write_send(tmp_path, name, 800)
    connect(sandbox.port, key_file=None, private_key=keys.client.read_text())
    real_rename = MTargetHook._rename
    calls = []

    def rename_then_crash(self, sftp, old, new):
        real_rename(self, sftp, old, new)
        calls.append(new)
        if len(calls) == 1:
            raise RuntimeError("worker lost right after the rename")

    monkeypatch.setattr(MTargetHook, "_rename", rename_then_crash)
    clock_driver(sandbox, name)
    dag = campaign_dag("mtarget_test_poke", local, deferrable=False)
    started = time.time()
    run = run_dag(dag)

    assert task_states(run) == {
        "upload": ("success", 2),
        "status": ("success", 1),
        "ack": ("success", 1),
    }
    assert calls == [f"Send/{name}"]  # the retry renamed nothing: it found the file submitted
    assert deliveries(sandbox, name).exactly_once(800)
    output = "".join(capfd.readouterr()) + task_logs(dag.dag_id, started)
    assert "NOT uploading it again" in output
    assert "DEFERRED" not in output  # poke mode: no deferral
    assert_nothing_secret(output, keys.password, keys.client.read_text(), 800)


def test_a_rejected_file_fails_its_sensor_at_once_and_nothing_is_sent(
    sandbox, connect, tmp_path, capfd
) -> None:
    name = "SEND-12345-20261201-0800-dagreject.csv"
    local = write_send(tmp_path, name, 50, bad_row=17)
    connect(sandbox.port)
    dag = campaign_dag("mtarget_test_reject", local, deferrable=True)
    started = time.time()
    run = run_dag(dag)

    states = task_states(run)
    assert states["upload"] == ("success", 1)
    assert states["status"] == ("failed", 1)  # retries=2, none used
    assert states["ack"][0] == "upstream_failed"
    assert str(run.state) == "failed"
    sandbox.settle()
    seen = deliveries(sandbox, name)
    assert (seen.received, seen.rejected, seen.ignored) == (1, 1, 0)
    assert not seen.per_row  # nothing sent
    output = "".join(capfd.readouterr()) + task_logs(dag.dag_id, started)
    assert f"Send/{name.removesuffix('.csv')}.reject: the provider REJECTED {name}" in output


def assert_nothing_secret(output: str, password: str, private_key: str, rows: int) -> None:
    """No password, no private key, no full phone number, no message text in any log."""
    assert password not in output
    body = "".join(private_key.strip().splitlines()[1:-1])
    for start in range(0, len(body) - 20, 20):
        assert body[start : start + 20] not in output
    for number in msisdns(rows):
        assert number not in output
    assert BODY not in output
