"""Fixtures for the Airflow integration tests: keys, a sandbox per test, connections, a
fault proxy, the Airflow metadata DB.

``AIRFLOW_HOME`` is the project root (as ``make test`` sets it) before anything imports
Airflow. Time is the sandbox's simulated clock: it starts on Tuesday 1 December 2026, 09:00
Paris, SEND names are for 08:00 that day (past: sent at once), and tests jump the clock
instead of sleeping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT))

import pytest

from smsdrop.sandbox import Sandbox
from tests.airflow.support import FaultProxy
from tests.sandboxes import MakeSandbox, SandboxFactory, write_key
from tests.warehouse.conftest import pg_database  # noqa: F401  (a fixture)

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 12, 1, 9, 0, tzinfo=PARIS)  # a Tuesday
CONN_ID = "mtarget_default"


@dataclass(frozen=True)
class Keys:
    client: Path  # authorized
    stranger: Path  # not authorized
    host: Path  # the sandbox's host key
    other_host: Path  # a host key the sandbox does not have
    authorized: Path
    password_file: Path
    password: str

    def public(self, path: Path) -> str:
        return " ".join(Path(str(path) + ".pub").read_text().split()[:2])


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")
    paths = {name: write_key(folder, name) for name in ("client", "stranger", "host", "other_host")}
    authorized = folder / "authorized_keys"
    authorized.write_text((folder / "id_client.pub").read_text())
    password = "s3cret-Horse-battery-9"
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    return Keys(
        paths["client"],
        paths["stranger"],
        paths["host"],
        paths["other_host"],
        authorized,
        password_file,
        password,
    )


@pytest.fixture
def make_sandbox(tmp_path: Path, keys: Keys) -> Iterator[MakeSandbox]:
    """Start a sandbox with test settings; ``**changes`` override them."""
    factory = SandboxFactory(
        tmp_path,
        host_key=keys.host,
        authorized_keys=keys.authorized,
        start=START,
        password_file=keys.password_file,
        retention=timedelta(days=3650),
    )
    yield factory
    factory.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox()


Connect = Callable[..., str]


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch, keys: Keys) -> Connect:
    """Point an Airflow connection (env var) at a port; returns the connection id.

    Defaults: the authorized client key, the sandbox's host key pinned, one connect attempt
    (tests inject faults; the hook's own retries would only slow them down). ``extra``
    entries set to None are left out.
    """
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no agent keys offered by paramiko

    def point(
        port: int,
        conn_id: str = CONN_ID,
        *,
        login: str = "sandbox",
        password: str | None = None,
        **extra: object,
    ) -> str:
        extras: dict[str, object] = {
            "key_file": str(keys.client),
            "host_key": keys.public(keys.host),
            "connect_attempts": 1,
        }
        extras.update(extra)
        document = {
            "conn_type": "sftp",
            "host": "127.0.0.1",
            "port": port,
            "login": login,
            "extra": {k: v for k, v in extras.items() if v is not None},
        }
        if password is not None:
            document["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(document))
        return conn_id

    return point


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(sandbox.port)
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The metadata DB ``dag.test()`` needs (``make test`` creates it; so does this)."""
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn")
    path = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
            check=True,
            capture_output=True,
        )
    return path or ROOT


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_conn(request: pytest.FixtureRequest, monkeypatch, tmp_path: Path) -> Iterator[str]:
    """``smsdrop_warehouse`` pointed at a fresh DuckDB file or PostgreSQL schema."""
    if request.param == "duckdb":
        document = {"conn_type": "duckdb", "extra": {"path": str(tmp_path / "wh.duckdb")}}
    else:
        database = request.getfixturevalue("pg_database")
        dbname = database.split("dbname=")[1].split()[0]
        schema = f"r_{uuid.uuid4().hex[:10]}"
        import psycopg

        with psycopg.connect(database, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA {schema}")
        document = postgres_conn(dbname, options=f"-csearch_path={schema}")
    monkeypatch.setenv("AIRFLOW_CONN_SMSDROP_WAREHOUSE", json.dumps(document))
    yield request.param


def postgres_conn(dbname: str, **extra: object) -> dict[str, object]:
    """An Airflow connection document for the local PostgreSQL (trust auth)."""
    return {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "login": "postgres",
        "schema": dbname,
        "extra": extra,
    }
