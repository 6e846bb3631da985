"""Warehouse fixtures: every test runs on DuckDB (a file under tmp_path) and PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth); the session gets a database of
its own (dropped at the end) and each test a schema of its own. When the server is not
reachable the PostgreSQL cases are skipped, with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from smsdrop.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse

PG_ADMIN_DSN = os.environ.get(
    "SMSDROP_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The DSN of a fresh PostgreSQL database for this session."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN!r}: {exc}")
    name = f"smsdrop_wh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN_DSN.replace("dbname=postgres", f"dbname={name}")
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def pg_dsn(pg_database: str) -> Iterator[str]:
    """A DSN whose search_path is a schema of this test's own."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{pg_database} options=-csearch_path={schema}"
    finally:
        with psycopg.connect(pg_database, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, object]]:
    """(engine name, how to open it): a path for DuckDB, a DSN for PostgreSQL."""
    if request.param == "duckdb":
        yield "duckdb", tmp_path / "warehouse.duckdb"
    else:
        yield "postgres", request.getfixturevalue("pg_dsn")


@pytest.fixture
def open_warehouse(engine) -> Callable[..., Warehouse]:
    """Open (not migrate) a warehouse on this test's engine; the caller closes it."""
    kind, target = engine

    def opener(**kwargs) -> Warehouse:
        if kind == "duckdb":
            return DuckDBWarehouse(target, **kwargs)
        return PostgresWarehouse(str(target), **kwargs)

    return opener


@pytest.fixture
def warehouse(open_warehouse) -> Iterator[Warehouse]:
    """A migrated, empty warehouse on each engine."""
    wh = open_warehouse()
    wh.migrate()
    try:
        yield wh
    finally:
        wh.close()
