"""``sms_campaign`` through a real deployment: LocalExecutor, metadata DB on PostgreSQL.

One deployment for the module (api-server, scheduler, dag-processor, triggerer as
processes; ``conftest.deployment``); under ``pytest -n`` (``make test``) the three tests are
not grouped, so each worker that runs one builds its own: they run at the same time, and
none depends on what another left (the DuckDB test puts the warehouse connection back). The
campaign is triggered over the REST API, as the
form's Trigger button does, and checked on one run: 4 SEND files uploaded by mapped tasks in
parallel, the scheduler and the triggerer SIGKILLed (by process group) while the ACK
sensors are deferred and then restarted, every task done in one try, every audience row in a
SEND file or the rejects, every record sent exactly once per the sandbox's event log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smsdrop.demo import seed
from smsdrop.deploy.stack import group_gone
from smsdrop.prepare import first_allowed_slot
from smsdrop.sandbox.cli import serve_command
from smsdrop.sandbox.events import events
from tests.deploy.conftest import Deployment, deployment, free_port
from tests.deploy.support import accounted, by_task, overlapping, retried

pytestmark = pytest.mark.slow
DAG = "sms_campaign"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deployment(tmp_path_factory, "LocalExecutor")


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(1)
    return found


def test_a_multi_file_campaign_survives_scheduler_and_triggerer_killed_while_deferred(
    local: Deployment,
) -> None:
    stack, sandbox = local.stack, local.sandbox
    started = time.monotonic()
    run_id = stack.trigger(DAG, local.conf("localexec"))

    def all_acks_deferred() -> bool:
        tis = by_task(stack.task_instances(DAG, run_id))
        acks = tis.get("wait_ack", [])
        busy = [t for ts in tis.values() for t in ts if t["state"] in ("running", "queued")]
        return bool(acks) and all(t["state"] == "deferred" for t in acks) and not busy

    wait_for(all_acks_deferred, 300, "the ACK sensors never all deferred")
    deferred_at = time.monotonic() - started
    groups = [stack.processes[name].pid for name in ("scheduler", "triggerer")]
    stack.kill("scheduler")
    stack.kill("triggerer")
    for group in groups:  # the whole group went, LocalExecutor workers included
        assert group_gone(group, timeout=0)
    assert {
        t["state"] for t in stack.task_instances(DAG, run_id) if t["task_id"] == "wait_ack"
    } == {"deferred"}
    stack.start_component("scheduler")
    stack.start_component("triggerer")
    stack.wait_healthy()
    with sandbox.fast_forward():  # now the ACKs come, to the restarted triggerer
        state = stack.wait_run(DAG, run_id, timeout=300)
    elapsed = time.monotonic() - started
    tis = by_task(stack.task_instances(DAG, run_id))

    assert state == "success", {k: [t["state"] for t in v] for k, v in tis.items()}
    assert len(tis["upload"]) == 4 == len(tis["wait_done"]) == len(tis["wait_ack"])
    assert overlapping(tis["upload"]) >= 2, tis["upload"]  # mapped uploads in parallel
    tries = {
        (t["task_id"], t["map_index"]): (t["state"], t["try_number"])
        for v in tis.values()
        for t in v
    }
    # no retry, killed or not
    assert set(tries.values()) == {("success", 1)}, (
        tries,
        retried(stack, local.folder / "logs", [(DAG, run_id)]),
    )
    figures = accounted(local.warehouse(), sandbox, "localexec")
    assert figures["recipients"] == figures["valid+rejected"] == 7_000, figures
    assert figures["rejected"] == figures["rejected_rows"] > 0, figures
    assert figures["valid"] == figures["in_files"] == figures["acked"], figures
    assert (figures["files"], figures["states"]) == (4, ["done"]), figures
    assert figures["not_sent_exactly_once"] == [], figures
    print(f"\nLocalExecutor campaign: deferred after {deferred_at:.0f} s, done in {elapsed:.0f} s")


def test_four_campaigns_and_sms_reports_together_on_the_duckdb_default(
    local: Deployment, tmp_path
) -> None:
    """Part 2 of issue 10 (the lead's DuckDB connection handling): at least 4 campaigns and
    ``sms_reports`` at once on the embedded DuckDB warehouse, all succeed in one try."""
    stack, sandbox = local.stack, local.sandbox
    warehouse = tmp_path / "warehouse.duckdb"
    seed(warehouse, 3_000)
    local.set_warehouse({"conn_type": "duckdb", "extra": {"path": str(warehouse)}})
    try:
        stack.wait_dag("sms_reports")
        started = time.monotonic()
        runs = [(DAG, stack.trigger(DAG, local.conf(f"duck{i}"))) for i in range(4)]
        runs.append(("sms_reports", stack.trigger("sms_reports")))
        with sandbox.fast_forward():
            states = {run: stack.wait_run(*run, timeout=600) for run in runs}
        elapsed = time.monotonic() - started
        tries = {
            (dag_id, t["task_id"], t["map_index"]): (t["state"], t["try_number"])
            for dag_id, run_id in runs
            for t in stack.task_instances(dag_id, run_id)
            if t["state"] is not None
        }
    finally:
        stack.api("PATCH", "dags/sms_reports", {"is_paused": True})
        local.set_warehouse(_postgres(local))
    why = retried(stack, local.folder / "logs", runs)
    assert set(states.values()) == {"success"}, (states, tries, why)
    assert max(t for _, t in tries.values()) == 1, (
        {k: v for k, v in tries.items() if v[1] > 1},
        why,
    )
    print(f"\n4 campaigns + sms_reports on DuckDB: {elapsed:.0f} s")


def _postgres(local: Deployment) -> dict:
    from tests.airflow.conftest import postgres_conn

    dbname = local.warehouse_dsn.split("dbname=")[1].split()[0]
    return postgres_conn(dbname, options="-csearch_path=smsdrop")


def test_the_sandbox_killed_and_restarted_mid_campaign_sends_each_message_once(
    local: Deployment, tmp_path: Path
) -> None:
    """The provider side dies: ``smsdrop sandbox serve`` (a process, its state persisted
    under its root) SIGKILLed once files are arriving, restarted on the same root and port.
    Uploads cut by the kill are retried; the campaign ends with every record sent once."""
    keys = local.sandbox.layout.root / ".sandbox"  # the keys the connection already pins
    root, port = tmp_path / "provider", free_port()
    start = first_allowed_slot(local.sandbox.clock.now(), ["FR"], None)
    command = serve_command(
        root, port, "--start", start.isoformat(), "--seed", "5", "--poll-interval", "0.05",
        "--host-key", str(keys / "host_ed25519"),
        "--authorized-keys", str(keys / "client_ed25519.pub"), "-q",
    )  # fmt: skip
    provider = EventLog(root)
    serving: list[subprocess.Popen[bytes]] = []

    def serve() -> None:
        with (tmp_path / "sandbox.out").open("ab") as out:
            serving.append(
                subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
            )
        wait_for(lambda: _listening(port), 30, "the sandbox process did not listen")

    stack = local.stack
    try:
        serve()
        local.proxy.target_port = port  # new SFTP sessions go to the process
        conf = {**local.conf("sbkill"), "send_at": start.isoformat()}
        run_id = stack.trigger(DAG, conf)
        wait_for(lambda: provider.events("file_received"), 300, "no file reached the provider")
        os.killpg(serving[-1].pid, signal.SIGKILL)
        serving[-1].wait(10)
        received_before = len(provider.events("file_received"))
        time.sleep(2)
        serve()  # same root, same port: resumes its campaigns and its clock

        def all_done() -> bool:
            waits = by_task(stack.task_instances(DAG, run_id)).get("wait_done", [])
            return len(waits) == 4 and all(t["state"] == "success" for t in waits)

        wait_for(all_done, 400, "the files never all reached .done")
        advance = [*command[:4], "advance", "--root", str(root), "--by", "2d"]
        subprocess.run(advance, check=True, capture_output=True, timeout=60)
        state = stack.wait_run(DAG, run_id, timeout=300)
    finally:
        local.proxy.target_port = local.sandbox.port
        for proc in serving:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
    tis = by_task(stack.task_instances(DAG, run_id))
    assert state == "success", {
        k: [(t["state"], t["try_number"]) for t in v] for k, v in tis.items()
    }
    assert 1 <= received_before <= 4
    figures = accounted(local.warehouse(), provider, "sbkill")
    assert figures["recipients"] == figures["valid+rejected"] == 7_000, figures
    assert figures["valid"] == figures["in_files"] == figures["acked"], figures
    assert (figures["files"], figures["states"]) == (4, ["done"]), figures
    assert figures["not_sent_exactly_once"] == [], figures


class EventLog:
    """The oracle of a sandbox running in another process: its root's event log."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def events(self, kind: str | None = None, **match: Any) -> list[dict]:
        return events(self.root, kind, **match) if (self.root / ".sandbox").exists() else []

    def settle(self) -> None:
        time.sleep(2)  # the process's scan interval is 0.05 s


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
