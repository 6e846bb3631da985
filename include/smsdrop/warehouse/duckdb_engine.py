"""The warehouse in an embedded DuckDB file (the default: nothing to run).

Bulk loads register the Arrow table as a view and run one ``INSERT … SELECT … ON CONFLICT``;
extraction is DuckDB's Arrow stream (``to_arrow_reader``) on a cursor of its own.

DuckDB lets one process at a time hold a file for writing (or any number of processes for
reading, when none writes). Concurrent Airflow tasks on the embedded default therefore take
turns: opening a file another process holds waits, with a growing pause, up to
``lock_timeout`` seconds (``SMSDROP_DUCKDB_LOCK_TIMEOUT``, default 600), and every task
holds the file only for its database work, never across an SFTP transfer or a wait.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

from smsdrop.settings import number_setting
from smsdrop.warehouse.base import Warehouse, rebatch, source_query

__all__ = ["LOCK_TIMEOUT_ENV", "DuckDBWarehouse"]

log = logging.getLogger(__name__)

LOCK_TIMEOUT_ENV: Final = "SMSDROP_DUCKDB_LOCK_TIMEOUT"
_LOCK_ERRORS: Final = ("Could not set lock", "Conflicting lock")


def _lock_timeout() -> float:
    return number_setting(LOCK_TIMEOUT_ENV, 600, minimum=0)


def connect(path: str, *, read_only: bool, lock_timeout: float | None = None) -> Any:
    """A DuckDB connection to ``path``, waiting while another process holds the file.

    A read-only connection is also sandboxed for untrusted queries: no file system or
    network access, no extension loading, and its configuration locked so a query cannot
    lift that.
    """
    timeout = _lock_timeout() if lock_timeout is None else lock_timeout
    deadline = time.monotonic() + timeout
    pause, waited = 0.02, False
    while True:
        try:
            con = duckdb.connect(path, read_only=read_only)
            break
        except duckdb.IOException as error:
            if not any(text in str(error) for text in _LOCK_ERRORS):
                raise
            if time.monotonic() + pause > deadline:
                raise TimeoutError(
                    f"the DuckDB warehouse {path} stayed locked by another process for "
                    f"{timeout:.0f} s (set {LOCK_TIMEOUT_ENV} to wait longer, or use "
                    "PostgreSQL for parallel runs)"
                ) from error
            if not waited:
                log.info("DuckDB warehouse %s is in use by another process: waiting", path)
                waited = True
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)
    con.execute("SET TimeZone = 'UTC'")
    if read_only:
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
    return con


def _qmarks(sql: str) -> str:
    return sql.replace("%s", "?")


class DuckDBWarehouse(Warehouse):
    """:class:`Warehouse` on a DuckDB database file (``":memory:"`` for a throwaway one).

    Timestamps are read back in UTC. DuckDB lets one process write a file at a time: open
    it in the task that needs it and close it (context manager) when done; opening waits
    (up to ``lock_timeout`` s) while another process holds it. ``read_only`` opens it for
    an untrusted query (see :func:`connect`).
    """

    dialect = "duckdb"

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        lock_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = str(path)
        self.read_only = read_only
        self._con = connect(self.path, read_only=read_only, lock_timeout=lock_timeout)
        self._make_private()

    def close(self) -> None:
        self._con.close()
        self._make_private()

    def _make_private(self) -> None:
        """The file (and its write-ahead log) holds personal data: mode 0600."""
        for name in (self.path, f"{self.path}.wal"):
            try:
                if Path(name).is_file() and Path(name).stat().st_mode & 0o077:
                    os.chmod(name, 0o600)
            except OSError:  # not ours to change (a shared, read-only file): leave it
                pass

    def _begin(self) -> None:
        self._con.begin()

    def _commit(self) -> None:
        self._con.commit()

    def _rollback(self) -> None:
        self._con.rollback()

    def _lock_migrations(self) -> None:
        """Nothing to do: DuckDB allows one writing process per file."""

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        result = self._con.execute(_qmarks(sql), list(params)).fetchall()
        return int(result[0][0]) if result and isinstance(result[0][0], int) else -1

    def _script(self, sql: str) -> None:
        self._con.execute(sql)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        cur = self._con.execute(_qmarks(sql), list(params))
        names = [d[0] for d in cur.description]
        return names, cur.fetchall()

    def _insert_select(self, table: str, data: pa.Table, conflict: str) -> int:
        if data.num_rows == 0:
            return 0
        view = f"_incoming_{uuid.uuid4().hex}"
        cols = ", ".join(data.column_names)
        self._con.register(view, data)
        try:
            result = self._con.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {view} {conflict}"
            ).fetchall()
        finally:
            self._con.unregister(view)
        return int(result[0][0])

    def extract(self, sql_or_table: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        query = source_query(sql_or_table)
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        cur = self._con.cursor()
        try:
            if not self.read_only:  # a read-only connection's settings are locked (UTC)
                cur.execute("SET TimeZone = 'UTC'")
            reader = cur.sql(query).to_arrow_reader(batch_rows)
            yield from rebatch(reader, batch_rows)
        finally:
            cur.close()
