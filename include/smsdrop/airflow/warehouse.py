"""The ``smsdrop_warehouse`` Airflow connection: which warehouse smsdrop's tasks use.

- conn type ``duckdb`` (:class:`DuckDBHook`, our own small ``DbApiHook``; there is no
  maintained DuckDB provider): the DuckDB file is the ``path`` extra or the host field; a
  relative path is under ``AIRFLOW_HOME``; default ``var/warehouse.duckdb``.
- conn type ``postgres`` (the postgres provider's type): host, port, login, password,
  schema (= the database) and libpq extras such as ``sslmode`` make the DSN of a
  :class:`~smsdrop.warehouse.PostgresWarehouse`.
- **no such connection**: the embedded DuckDB file ``$AIRFLOW_HOME/var/warehouse.duckdb``,
  so a fresh checkout (the demo, the tests) works without setting anything up.

The hook is registered by importing this module (no provider info, no form widgets): give
it as ``hook_class`` where one is asked for, or just use :func:`warehouse_from_connection`.
duckdb and psycopg are imported when a connection is opened, never at import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

if TYPE_CHECKING:
    from smsdrop.warehouse import Warehouse

WAREHOUSE_CONN_ID = "smsdrop_warehouse"
DEFAULT_DUCKDB_PATH = "var/warehouse.duckdb"

#: libpq connection parameters taken from a postgres connection's extras.
_LIBPQ_EXTRAS = (
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "application_name",
    "connect_timeout",
    "options",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
)


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def duckdb_path(value: str | None = None) -> Path:
    """The DuckDB file for ``value`` (a path; relative to ``AIRFLOW_HOME``; default
    ``var/warehouse.duckdb``)."""
    path = Path(value or DEFAULT_DUCKDB_PATH).expanduser()
    return path if path.is_absolute() else airflow_home() / path


class DuckDBHook(DbApiHook):
    """An embedded DuckDB file as an Airflow SQL hook (conn type ``duckdb``).

    :param smsdrop_warehouse_conn_id: the connection (default ``smsdrop_warehouse``); when
        it does not exist, the default file is used.
    """

    conn_name_attr = "smsdrop_warehouse_conn_id"
    default_conn_name = WAREHOUSE_CONN_ID
    conn_type = "duckdb"
    hook_name = "DuckDB (smsdrop)"
    supports_autocommit = False
    placeholder = "?"

    def __init__(self, *args: Any, path: str | os.PathLike[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._path = None if path is None else str(path)

    @property
    def path(self) -> Path:
        if self._path is not None:
            return duckdb_path(self._path)
        conn_id = getattr(self, self.conn_name_attr)
        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException:
            return duckdb_path()
        return duckdb_path(conn.extra_dejson.get("path") or conn.host)

    def get_conn(self) -> Any:
        import duckdb

        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(path))

    def get_uri(self) -> str:
        return f"duckdb:///{self.path}"


def postgres_dsn(conn: Any) -> str:
    """A libpq DSN from an Airflow connection of type postgres."""
    from psycopg.conninfo import make_conninfo

    extras = conn.extra_dejson
    params: dict[str, Any] = {
        "host": conn.host or None,
        "port": conn.port or None,
        "user": conn.login or None,
        "password": conn.password or None,
        "dbname": conn.schema or extras.get("dbname") or None,
    }
    params.update({k: extras[k] for k in _LIBPQ_EXTRAS if extras.get(k) not in (None, "")})
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def _connection(conn_id: str) -> Any:
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _kind(conn: Any, conn_id: str) -> str:
    """``duckdb`` or ``postgres`` for a connection (None: the default DuckDB file)."""
    kind = "duckdb" if conn is None else (conn.conn_type or "").lower()
    if kind == "postgresql":
        kind = "postgres"
    if kind not in ("duckdb", "postgres"):
        raise ValueError(
            f"connection {conn_id!r} is of type {conn.conn_type!r}; the warehouse is 'duckdb' "
            "or 'postgres'"
        )
    return kind


def warehouse_dialect(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    """The SQL dialect of the connection's warehouse (``duckdb`` or ``postgres``), known
    without connecting: untrusted SQL is checked in it before any connection is opened."""
    return _kind(_connection(conn_id), conn_id)


def warehouse_from_connection(
    conn_id: str = WAREHOUSE_CONN_ID, *, read_only: bool = False
) -> Warehouse:
    """The :class:`~smsdrop.warehouse.Warehouse` of an Airflow connection (not migrated).

    ``duckdb`` → :class:`~smsdrop.warehouse.DuckDBWarehouse`; ``postgres`` (or
    ``postgresql``) → :class:`~smsdrop.warehouse.PostgresWarehouse`; no such connection → the
    default DuckDB file. ``read_only`` opens it for an untrusted query (the audience): a
    sandboxed read-only DuckDB connection, or READ ONLY PostgreSQL transactions. Use it as a
    context manager (it holds a database connection).
    """
    from smsdrop.warehouse import DuckDBWarehouse, PostgresWarehouse

    conn = _connection(conn_id)
    if _kind(conn, conn_id) == "postgres":
        return PostgresWarehouse(postgres_dsn(conn), read_only=read_only)
    path = duckdb_path() if conn is None else DuckDBHook(smsdrop_warehouse_conn_id=conn_id).path
    path.parent.mkdir(parents=True, exist_ok=True)
    return DuckDBWarehouse(path, read_only=read_only)
