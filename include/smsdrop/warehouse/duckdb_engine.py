"""The warehouse in an embedded DuckDB file (the default: nothing to run).

Bulk loads register the Arrow table as a view and run one ``INSERT … SELECT … ON CONFLICT``;
extraction is DuckDB's Arrow stream (``to_arrow_reader``) on a cursor of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from smsdrop.warehouse.base import Warehouse, rebatch, source_query

__all__ = ["DuckDBWarehouse"]


def _qmarks(sql: str) -> str:
    return sql.replace("%s", "?")


class DuckDBWarehouse(Warehouse):
    """:class:`Warehouse` on a DuckDB database file (``":memory:"`` for a throwaway one).

    Timestamps are read back in UTC. DuckDB lets one process write a file at a time: open
    it in the task that needs it and close it (context manager) when done.
    """

    dialect = "duckdb"

    def __init__(self, path: str | Path, *, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = str(path)
        self._con = duckdb.connect(self.path, read_only=read_only)
        self._con.execute("SET TimeZone = 'UTC'")

    def close(self) -> None:
        self._con.close()

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
            cur.execute("SET TimeZone = 'UTC'")
            reader = cur.sql(query).to_arrow_reader(batch_rows)
            yield from rebatch(reader, batch_rows)
        finally:
            cur.close()
