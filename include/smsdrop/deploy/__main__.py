"""``make airflow``: smsdrop as a service on this machine, until Ctrl-C.

Starts the provider sandbox (in this process, its clock at the next minute a French
marketing SMS may go, jumping ahead while a file waits for its ACK), seeds a DuckDB
warehouse with the demo's synthetic audience (once: later starts keep it and its history),
then Airflow's own components on the embedded defaults: api-server (UI on
http://localhost:8080), scheduler with the LocalExecutor, dag-processor and triggerer, the
metadata DB being the SQLite file ``var/service/airflow.db`` (Airflow 3 runs the
LocalExecutor on SQLite; no server needed). It is not ``var/airflow.db``, the one ``make
demo`` and ``make test`` run ``airflow dags test`` on: this scheduler would take up their
runs' tasks. The connections are given to every component as
``AIRFLOW_CONN_*`` variables. Ctrl-C (or SIGTERM) stops everything, by process group.

Everything lives in ``var/service/``: ``secrets.json`` (JWT secret and Fernet key, made
once), each component's output (``<name>.log``), the warehouse, the sandbox's root and
event log, the staging area, the task logs (``logs/``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smsdrop.demo import TEMPLATE, seed
from smsdrop.deploy.stack import PROJECT, AirflowStack, StackConfig
from smsdrop.prepare import first_allowed_slot
from smsdrop.sandbox import Sandbox, SandboxConfig

#: Everything of the service; ``SMSDROP_SERVICE_DIR`` moves it (the test does).
SERVICE = Path(os.environ.get("SMSDROP_SERVICE_DIR") or PROJECT / "var" / "service").resolve()
DAGS = ("sms_campaign", "sms_reports")  # unpaused; the nightly DAG stays paused


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else a free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


def main() -> int:
    rows = int(os.environ.get("SMSDROP_DEMO_ROWS", "100000"))
    api_port = int(os.environ.get("SMSDROP_API_PORT", "8080"))
    SERVICE.mkdir(parents=True, exist_ok=True)
    warehouse = SERVICE / "warehouse.duckdb"
    if not warehouse.exists():
        opted_out = seed(warehouse, rows)
        print(
            f"warehouse {warehouse}: seeded {rows:,} people (table audience), {opted_out:,} opted out"
        )
    slot = first_allowed_slot(datetime.now(UTC) + timedelta(minutes=1), ["FR"], None)
    port = free_port(int(os.environ.get("SMSDROP_SANDBOX_PORT", "2222")))
    sandbox = Sandbox(SandboxConfig(root=SERVICE / "sandbox", port=port, start=slot, seed=1))
    stack = AirflowStack(
        StackConfig(
            home=SERVICE,
            sql_alchemy_conn=f"sqlite:///{SERVICE / 'airflow.db'}",
            api_port=api_port,
            env={
                "AIRFLOW_CONN_SMSDROP_WAREHOUSE": json.dumps(
                    {"conn_type": "duckdb", "extra": {"path": str(warehouse)}}
                ),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(SERVICE / "logs"),
                "SMSDROP_STAGING": (SERVICE / "staging").as_uri(),
                "SMSDROP_POLL_SECONDS": "5",
                "SMSDROP_ACK_POLL_SECONDS": "5",
            },
        )
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with sandbox, sandbox.fast_forward():
        stack.config.env["AIRFLOW_CONN_MTARGET_DEFAULT"] = json.dumps(sandbox.airflow_connection())
        try:
            print("starting Airflow: api-server, scheduler, dag-processor, triggerer …")
            stack.migrate()
            stack.start()
            for dag_id in DAGS:
                stack.wait_dag(dag_id)
            print(banner(stack, sandbox, warehouse, slot))
            while not stopping.wait(1):
                if dead := stack.dead():
                    print(f"{dead[0]} stopped unexpectedly:\n{stack.tail(dead[0])}")
                    return 1
        except (RuntimeError, TimeoutError) as error:
            print(f"Airflow did not start: {error}", file=sys.stderr)
            return 1
        finally:
            print("stopping Airflow and the sandbox …")
            stack.stop()
    print("stopped")
    return 0


def banner(stack: AirflowStack, sandbox: Sandbox, warehouse: Path, slot: datetime) -> str:
    conf = {
        "campaign_id": "spring26",
        "service_id": "12345",
        "audience": "audience",
        "message": TEMPLATE,
        "sender": "SMSDROP",
        "encoding_policy": "transliterate",
        # Uploads wait until the slot less this lead; the slot follows real time (08:00
        # tomorrow at night) but the sandbox's clock is already there: upload at once.
        "upload_lead_minutes": 10080,
    }
    return f"""
smsdrop is running (Ctrl-C stops everything).

  UI          http://localhost:{stack.config.api_port}  (no login: every user is admin)
              DAGs → sms_campaign → Trigger, then fill in the form, e.g. (a lead of
              10080 minutes: upload now, the sandbox's clock being at the slot already)
              {json.dumps(conf, ensure_ascii=False)}
              or: curl -X POST localhost:{stack.config.api_port}/api/v2/dags/sms_campaign/dagRuns \
                    -H 'Content-Type: application/json' -d '{{"logical_date": null, "conf": <that JSON>}}'
  campaigns   http://localhost:{stack.config.api_port}/plugin/smsdrop-campaigns  (the campaign pages)
  sandbox     127.0.0.1:{sandbox.port}, its clock from {slot:%a %d %b %H:%M %Z} (jumps ahead
              while a file waits for its ACK); event log {sandbox.layout.events}
  warehouse   {warehouse} (DuckDB; connection smsdrop_warehouse)
  components  {stack.config.home}/<name>.log for {", ".join(stack.processes)}
  metadata DB {stack.config.sql_alchemy_conn}
  task logs   {SERVICE / "logs"}
  secrets     {stack.secrets_file} (JWT secret, Fernet key: made once, shared by all)
"""


if __name__ == "__main__":
    sys.exit(main())
