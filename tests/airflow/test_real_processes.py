"""The operator and the sensors run by Airflow's own processes, not only by ``dag.test()``.

1. **A standalone ``airflow triggerer``.** ``airflow dags test`` runs a DAG's tasks and,
   when a task defers, waits for it in the metadata DB: a TI a triggerer has woken up
   (``scheduled``, with the event in ``next_kwargs``) is run again and resumes in
   ``execute_complete``. Only ``dag.test()``'s own switch ``run_triggerer=True`` makes it
   run the trigger inline instead; :data:`WITHOUT_INLINE_TRIGGERS` starts the CLI with that
   switch off, so the triggers (serialized in the ``trigger`` table) are left to a real
   ``airflow triggerer`` process on the same metadata DB. No scheduler, API server or
   DAG processor is needed for that path (docs/AIRFLOW.md, "Real Airflow processes").
2. **``airflow dags test`` as a user runs it**, triggers inline.
3. **A retry in a later wall-clock minute**: real waiting, no patched clock (``dag.test()``
   in this process; the upload's ``on_retry_callback`` sleeps until the minute changes).

The CLI processes get a metadata DB, a log folder and a DAG folder (``dags/`` next to this
file) of their own, and the connection as ``AIRFLOW_CONN_MTARGET_DEFAULT``; the sandbox
runs in this process (they only talk SFTP to it) and its event log stays the oracle.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import pytest

from smsdrop.sandbox import Sandbox
from tests.airflow.support import (
    FaultProxy,
    deliveries,
    run_dag,
    task_states,
    write_send,
    xcom,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).resolve().parent / "dags"  # mtarget_real.py
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PROVIDER_LOCK_DELAY = 6.0  # real seconds a .csv waits: the status sensors find it pending
#: Seconds an ``airflow dags test`` process may take before the test calls it hung: ~30–70 s
#: here, over 80 s when two deployment tests share the 2 cores (not a speed check).
HANG_GUARD = 300

#: ``airflow …`` with ``dag.test()`` leaving deferred tasks to a triggerer process.
WITHOUT_INLINE_TRIGGERS = """
import sys

import airflow.sdk.definitions.dag as dag_module

run_task = dag_module._run_task


def run_task_leaving_triggers_to_the_triggerer(*, ti, task, run_triggerer=False):
    return run_task(ti=ti, task=task, run_triggerer=False)


dag_module._run_task = run_task_leaving_triggers_to_the_triggerer
from airflow.__main__ import main

sys.argv[0] = "airflow"
sys.exit(main())
"""


# --- a private Airflow: metadata DB, logs, DAG folder --------------------------------------


@dataclass(frozen=True)
class PrivateAirflow:
    db: Path
    logs: Path

    def env(self) -> dict[str, str]:
        """This process's environment (with the connection ``connect`` set) for a CLI."""
        return {
            **os.environ,
            "AIRFLOW_HOME": str(ROOT),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs),
        }

    def query(self, sql: str, *args: Any) -> list[tuple]:
        with closing(sqlite3.connect(self.db, timeout=10)) as db:
            return db.execute(sql, args).fetchall()

    def xcom(self, dag_id: str, task_id: str) -> Any:
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
            dag_id,
            task_id,
        )
        return json.loads(rows[0][0]) if rows else None

    def states(self, dag_id: str) -> dict[str, tuple[str, int]]:
        rows = self.query(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", dag_id
        )
        return {task: (state, tries) for task, state, tries in rows}


@pytest.fixture(scope="module")
def private_airflow(tmp_path_factory: pytest.TempPathFactory) -> PrivateAirflow:
    folder = tmp_path_factory.mktemp("airflow")
    private = PrivateAirflow(folder / "airflow.db", folder / "logs")
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=private.env(), check=True, capture_output=True, cwd=ROOT
    )
    return private


# --- processes ---------------------------------------------------------------------------


@dataclass
class Processes:
    """CLI processes of one test, each in its own process group, its output in a file."""

    folder: Path
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = self.folder / f"{name}.out"
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((proc, out))
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        return next(out for p, out in self.started if p is proc).read_text(errors="replace")

    def stop_all(self) -> None:
        """SIGTERM each process group (a triggerer exits cleanly on it; its runner child is
        in its group), then SIGKILL the group if it is still there after 15 s."""
        for proc, _ in reversed(self.started):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if proc.poll() is not None:
                    break
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    continue


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


# --- watching the metadata DB: deferrals, triggers, and the ACK's day ------------------


class Watcher(threading.Thread):
    """Polls the private metadata DB while a run goes on.

    Records each trigger of the run (task, classpath, the triggerer job it was assigned
    to), and jumps the sandbox a day ahead once the ACK sensor has deferred and the file's
    messages are sent: so the ACK only appears while the sensor waits on its trigger.
    """

    def __init__(self, airflow: PrivateAirflow, dag_id: str, sandbox: Sandbox, name: str):
        super().__init__(daemon=True)
        self.airflow, self.dag_id, self.sandbox, self.name = airflow, dag_id, sandbox, name
        self.triggers: dict[str, dict[str, Any]] = {}  # by task: a sensor defers once here
        self.advanced = False
        self.errors: list[Exception] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.look()
            except sqlite3.OperationalError:  # locked for a moment: look again
                continue
            except Exception as error:  # noqa: BLE001 - reported by the test
                self.errors.append(error)
                return

    def look(self) -> None:
        rows = self.airflow.query(
            "SELECT t.id, ti.task_id, t.classpath, t.triggerer_id FROM trigger t "
            "JOIN task_instance ti ON ti.trigger_id = t.id WHERE ti.dag_id = ?",
            self.dag_id,
        )
        for trigger_id, task_id, classpath, triggerer_id in rows:  # SQLite reuses trigger ids
            seen = self.triggers.setdefault(
                task_id, {"id": trigger_id, "classpath": classpath, "triggerer": None}
            )
            seen["triggerer"] = triggerer_id or seen["triggerer"]
        if (
            not self.advanced
            and "ack" in self.triggers
            and self.sandbox.events("batch_done", file=self.name)
        ):
            self.sandbox.advance(timedelta(days=1, minutes=1))
            self.advanced = True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(5)


# --- 1. a standalone triggerer -----------------------------------------------------------


def test_sensors_defer_to_a_standalone_triggerer_and_resume_from_its_events(
    make_sandbox, connect, private_airflow, processes, tmp_path
) -> None:
    dag_id = "mtarget_real_two_files"
    good, bad = "SEND-12345-20261201-0800-trig.csv", "SEND-12345-20261201-0800-trigrej.csv"
    local = write_send(tmp_path, good, 300)
    rejected = write_send(tmp_path, bad, 40, bad_row=9)
    sandbox = make_sandbox(lock_delay=PROVIDER_LOCK_DELAY)
    connect(sandbox.port)
    env = private_airflow.env()

    triggerer = processes.start(
        "triggerer", [AIRFLOW, "triggerer", "--skip-serve-logs", "--capacity", "10"], env
    )
    conf = {"local_path": str(local), "rejected_path": str(rejected)}
    command = [sys.executable, "-c", WITHOUT_INLINE_TRIGGERS, "dags", "test", dag_id]
    with Watcher(private_airflow, dag_id, sandbox, good) as watcher:
        runner = processes.start("dags-test", [*command, "-c", json.dumps(conf)], env)
        code = runner.wait(HANG_GUARD)
    run_log = processes.output(runner)
    assert triggerer.poll() is None, processes.output(triggerer)  # alive all along

    assert private_airflow.states(dag_id) == {
        "upload": ("success", 1),
        "status": ("success", 1),
        "ack": ("success", 1),
        "upload_rejected": ("success", 1),
        "status_rejected": ("failed", 1),  # at once, no retry
    }, run_log[-4000:]
    assert code == 1 and "DagRun failed" in run_log  # the rejected file fails the run
    assert watcher.advanced and not watcher.errors, watcher.errors

    # Each sensor deferred; its trigger was serialized in the DB and assigned to the
    # triggerer process's job, never run inline by ``dags test``.
    [(job_id,)] = private_airflow.query("SELECT id FROM job WHERE job_type = 'TriggererJob'")
    triggers = watcher.triggers
    assert {task: (t["classpath"], t["triggerer"]) for task, t in triggers.items()} == {
        "status": ("smsdrop.airflow.triggers.MTargetFileStatusTrigger", job_id),
        "ack": ("smsdrop.airflow.triggers.MTargetReportTrigger", job_id),
        "status_rejected": ("smsdrop.airflow.triggers.MTargetFileStatusTrigger", job_id),
    }
    assert "running trigger in line" not in run_log
    for task in triggers:  # run twice: deferred, then resumed once the triggerer woke it
        assert run_log.count(f"running task <TaskInstance: {dag_id}.{task} ") == 2, task
    assert run_log.count("Pausing task as DEFERRED") == 3

    # The triggerer process ran each trigger (its log per task: ``….trigger.<job id>.log``)
    # and fired the event the task resumed from.
    fired = {task: trigger_log(private_airflow.logs, dag_id, task, job_id) for task in triggers}
    for task, log in fired.items():
        assert f"(ID {triggers[task]['id']}) starting" in log, task
        assert "Trigger fired event" in log and "trigger completed" in log, task
    assert "'status': 'success'" in fired["status"] and "'state': 'done'" in fired["status"]
    assert f"'path': 'Report/{good.replace('SEND-', 'ACK-')}'" in fired["ack"]
    assert "'reason': 'rejected'" in fired["status_rejected"]
    # The resumed tasks: XComs from the events; the rejected one fails in execute_complete.
    assert private_airflow.xcom(dag_id, "status")["state"] == "done"
    assert private_airflow.xcom(dag_id, "ack")["path"] == f"Report/{good.replace('SEND-', 'ACK-')}"
    assert f"Send/{good.removesuffix('.csv')}.done: the provider accepted {good}" in run_log
    rejection = (
        f"MTargetRejectedError: Send/{bad.removesuffix('.csv')}.reject: the provider REJECTED "
        f"{bad}; nothing of it was sent"
    )
    assert rejection in run_log
    assert "in execute_complete" in run_log.split(rejection)[0].rsplit("Traceback", 1)[1]

    sandbox.settle()
    assert deliveries(sandbox, good).exactly_once(300)
    seen = deliveries(sandbox, bad)
    assert (seen.received, seen.rejected, seen.ignored, len(seen.per_row)) == (1, 1, 0, 0)


# --- 2. ``airflow dags test`` ------------------------------------------------------------


def test_airflow_dags_test_cli_runs_the_campaign_and_each_message_is_sent_once(
    make_sandbox, connect, private_airflow, processes, tmp_path
) -> None:
    dag_id = "mtarget_real_campaign"
    name = "SEND-12345-20261201-0800-clirun.csv"
    local = write_send(tmp_path, name, 1200)
    sandbox = make_sandbox(lock_delay=3.0)
    connect(sandbox.port)

    with Watcher(private_airflow, dag_id, sandbox, name) as watcher:
        cli = processes.start(
            "dags-test",
            [AIRFLOW, "dags", "test", dag_id, "-c", json.dumps({"local_path": str(local)})],
            private_airflow.env(),
        )
        code = cli.wait(HANG_GUARD)
    output = processes.output(cli)

    assert code == 0, output[-4000:]
    assert private_airflow.states(dag_id) == {
        "upload": ("success", 1),
        "status": ("success", 1),
        "ack": ("success", 1),
    }
    # The ACK came a simulated day later, while its sensor waited on its (inline) trigger.
    assert watcher.advanced and not watcher.errors, watcher.errors
    assert output.count("running trigger in line") == 2  # both sensors deferred
    assert f"Report/{name.replace('SEND-', 'ACK-')} is there" in output
    sandbox.settle()
    assert deliveries(sandbox, name).exactly_once(1200)


# --- 3. a retry in a later real minute ---------------------------------------------------


def test_a_retry_in_a_later_wall_clock_minute_uploads_the_same_name_once(
    sandbox, connect, tmp_path, request, capfd, airflow_db
) -> None:
    """``prepare`` names the file after the wall-clock minute; the upload is cut mid-file,
    its retry waits (really: ``sleep``) into the next minute and submits that one name."""
    from airflow.sdk import DAG, task

    from smsdrop.airflow.operators import MTargetUploadOperator
    from smsdrop.airflow.sensors import MTargetFileStatusSensor

    rows = 3000  # ~230 KB: the first try dies at 60 KB
    proxy = FaultProxy(sandbox.port)
    request.addfinalizer(proxy.close)
    connect(proxy.port)
    proxy.cut_next(60_000)

    @task
    def prepare() -> dict[str, Any]:
        minute = datetime.now(UTC)
        path = write_send(tmp_path, f"SEND-12345-20261201-0800-m{minute:%H%M}.csv", rows)
        return {"path": str(path), "rows": rows}

    with DAG(
        "mtarget_real_retry_later_minute",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args={"retries": 1, "retry_delay": timedelta(0)},
        tags=["test"],
    ) as dag:
        upload = MTargetUploadOperator(
            task_id="upload",
            local_path="{{ ti.xcom_pull('prepare')['path'] }}",
            records="{{ ti.xcom_pull('prepare')['rows'] }}",
            on_retry_callback=wait_for_the_next_minute,  # then the retry runs at once
        )
        status = MTargetFileStatusSensor(task_id="status", name=upload.output, poke_interval=0.2)
        prepare() >> upload >> status
    run = run_dag(dag)

    assert task_states(run) == {
        "prepare": ("success", 1),
        "upload": ("success", 2),  # try 1 cut mid-file, try 2 in a later minute
        "status": ("success", 1),
    }
    assert proxy.cuts == 1
    name = xcom(run, "upload")["name"]
    assert name == Path(xcom(run, "prepare")["path"]).name
    first, second = upload_tries(run)
    assert first["end"].replace(second=0, microsecond=0) < second["start"].replace(
        second=0, microsecond=0
    ), (first, second)
    assert f"m{second['start']:%H%M}" not in name  # the retry's minute made no new name

    stem = name.removesuffix(".csv")
    output = "".join(capfd.readouterr())
    assert f"Removing Send/{stem}.tmp left by an interrupted attempt" in output  # cut mid-file
    sandbox.settle()
    assert deliveries(sandbox, name).exactly_once(rows)
    assert sorted(p.name for p in sandbox.layout.send.iterdir()) == [f"{stem}.done"]


def wait_for_the_next_minute(context: Any) -> None:
    """``on_retry_callback``: runs after the failed try is recorded, before the retry."""
    now = datetime.now(UTC)
    time.sleep(60 - now.second - now.microsecond / 1e6 + 0.1)  # at most ~60 s


def upload_tries(run: Any) -> list[dict[str, datetime]]:
    """Start and end of each try of ``upload`` (the history table keeps the earlier ones)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session

    tries = []
    with create_session() as session:
        for model in (TaskInstanceHistory, TaskInstance):
            rows = session.query(model).filter_by(
                dag_id=run.dag_id, run_id=run.run_id, task_id="upload"
            )
            tries += [
                {"try": row.try_number, "start": row.start_date, "end": row.end_date}
                for row in rows
            ]
    return sorted(tries, key=lambda t: t["try"])


def trigger_log(logs: Path, dag_id: str, task_id: str, job_id: int) -> str:
    """What the triggerer with job ``job_id`` logged for a task's trigger."""
    files = logs.glob(f"dag_id={dag_id}/*/task_id={task_id}/*.log.trigger.{job_id}.log")
    return "\n".join(p.read_text(errors="replace") for p in files)
