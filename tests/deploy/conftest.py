"""A real Airflow deployment per executor per test module, built by the launcher that
``make airflow`` uses (:mod:`smsdrop.deploy.stack`).

Each deployment: a throwaway PostgreSQL database on 127.0.0.1:5432 (dropped at the end)
holding the metadata DB and, in schema ``smsdrop``, the warehouse seeded with the demo's
synthetic audience; the provider sandbox in this process (its event log is the oracle);
api-server, scheduler, dag-processor, triggerer (and Celery workers) as processes, each in
its own process group, stopped by group when the module ends, passed or failed. The
``smsdrop_warehouse`` connection lives in the metadata DB (encrypted with the shared Fernet
key), so a test can point it at another warehouse; ``mtarget_default`` is an environment
variable of every component, pointing at a throttling proxy in front of the sandbox.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smsdrop.demo import TEMPLATE, seed_into
from smsdrop.deploy.stack import AirflowStack, StackConfig
from smsdrop.prepare import first_allowed_slot
from smsdrop.sandbox import Sandbox, SandboxConfig
from smsdrop.warehouse import PostgresWarehouse
from tests.airflow.conftest import postgres_conn
from tests.deploy.support import ThrottledProxy

PG = "host=127.0.0.1 port=5432 user=postgres"
AUDIENCE_ROWS = 7_000  # ~6,500 valid …
MAX_RECORDS = 2_000  # … so 4 SEND files, 4 mapped uploads
REDIS = os.environ.get("SMSDROP_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Deployment:
    stack: AirflowStack
    sandbox: Sandbox
    proxy: ThrottledProxy
    warehouse_dsn: str
    folder: Path

    def conf(self, campaign_id: str, **changes: Any) -> dict[str, Any]:
        """A campaign's parameters, its slot the sandbox's current send-allowed minute."""
        now = self.sandbox.clock.now()
        slot = first_allowed_slot(now, ["FR"], None)
        if slot > now:  # Sunday night on the sandbox's clock: jump to Monday 08:00
            self.sandbox.advance(slot - now + timedelta(seconds=1))
        return {
            "campaign_id": campaign_id,
            "service_id": "12345",
            "audience": "audience",
            "message": TEMPLATE,
            "sender": "SMSDROP",
            "send_at": slot.isoformat(),
            "encoding_policy": "transliterate",
            "upload_lead_minutes": 10080,  # the slot is on the sandbox's clock: upload now
            **changes,
        }

    def warehouse(self) -> PostgresWarehouse:
        return PostgresWarehouse(self.warehouse_dsn)

    def set_warehouse(self, document: dict[str, Any]) -> None:
        """(Re)define ``smsdrop_warehouse`` in the metadata DB, through the REST API."""
        body = {"connection_id": "smsdrop_warehouse", **document}
        if "extra" in body:
            body["extra"] = json.dumps(body["extra"])
        try:
            self.stack.api("PATCH", "connections/smsdrop_warehouse", body)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            self.stack.api("POST", "connections", body)


def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    executor: str,
    workers: int = 0,
    heartbeat_timeout: int = 120,
) -> Iterator[Deployment]:
    """A deployment of ``executor``. ``heartbeat_timeout``: the scheduler's
    ``task_instance_heartbeat_timeout``; only a test that kills a worker needs it short, and
    a short one fails a live task whose heartbeat waited on the loaded api-server (the
    heartbeat call may take up to the 60 s execution API timeout set below)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(f"{PG} dbname=postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {error}")
    if workers:
        try:
            socket.create_connection(("127.0.0.1", 6379), timeout=3).close()
        except OSError as error:
            pytest.skip(f"Redis not reachable on 127.0.0.1:6379: {error}")
    folder = tmp_path_factory.mktemp(executor.lower())
    name = f"smsdrop_af_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE DATABASE {name}")
    sandbox = proxy = stack = None
    try:
        with psycopg.connect(f"{PG} dbname={name}", autocommit=True) as con:
            con.execute("CREATE SCHEMA smsdrop")
        warehouse_dsn = f"{PG} dbname={name} options=-csearch_path=smsdrop"
        with PostgresWarehouse(warehouse_dsn) as warehouse:
            seed_into(warehouse, AUDIENCE_ROWS)
        slot = first_allowed_slot(datetime.now(UTC) + timedelta(minutes=2), ["FR"], None)
        sandbox = Sandbox(
            SandboxConfig(root=folder / "sandbox", port=0, start=slot, seed=3, poll_interval=0.05)
        ).start()
        proxy = ThrottledProxy(sandbox.port)
        connection = sandbox.airflow_connection()
        connection["port"] = proxy.port
        queue = f"smsdrop-{uuid.uuid4().hex[:8]}"  # other users of this Redis never see it
        stack = AirflowStack(
            StackConfig(
                home=folder / "airflow",
                sql_alchemy_conn=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
                executor=executor,
                api_port=free_port(),
                celery_workers=workers,
                celery_broker=REDIS if workers else None,
                worker_concurrency=2,
                queue=queue,
                env={
                    "AIRFLOW_CONN_MTARGET_DEFAULT": json.dumps(connection),
                    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(folder / "logs"),
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
                    "AIRFLOW__CORE__PARALLELISM": "8",
                    # the DAG files are parsed when the dag-processor starts and never change
                    # during a test: re-parsing them every 30 s (the default) only burns the
                    # CPU that the other tests running at the same time need (`pytest -n`)
                    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
                    # the machine is shared: an execution API call may wait for a core
                    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
                    # a Celery message held by a killed worker is given up after 90 s
                    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
                    "SMSDROP_STAGING": (folder / "staging").as_uri(),
                    "SMSDROP_MAX_RECORDS": str(MAX_RECORDS),
                    "SMSDROP_POLL_SECONDS": "1",
                    "SMSDROP_ACK_POLL_SECONDS": "1",
                    # a killed worker's or sandbox's task is retried 5 s after its failure
                    "SMSDROP_RETRY_DELAY_SECONDS": "5",
                },
            )
        )
        stack.migrate()
        stack.start()
        deployed = Deployment(stack, sandbox, proxy, warehouse_dsn, folder)
        deployed.set_warehouse(postgres_conn(name, options="-csearch_path=smsdrop"))
        stack.wait_dag("sms_campaign")
        yield deployed
    finally:
        if stack is not None:
            stack.stop()
        if proxy is not None:
            proxy.close()
        if sandbox is not None:
            sandbox.stop()
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
