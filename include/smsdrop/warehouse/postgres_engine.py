"""The warehouse in PostgreSQL through psycopg 3 (for real deployments).

Bulk loads ``COPY`` Arrow-written CSV into a temporary table, then ``INSERT … SELECT …
ON CONFLICT`` in the same transaction. Extraction is ``COPY (query) TO STDOUT`` read by
pyarrow's streaming CSV reader with the column types taken from the query's description,
on a connection of its own: memory is bounded by the batch and one CSV block.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Final

import psycopg
import pyarrow as pa
import pyarrow.csv as pcsv

from smsdrop.warehouse.base import Warehouse, rebatch, source_query

__all__ = ["PostgresWarehouse"]

#: PostgreSQL type OIDs → Arrow types for extraction; anything else is read as text
#: (numeric included: exact digits rather than a lossy float).
PG_TO_ARROW: Final[dict[int, pa.DataType]] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    26: pa.int64(),
    700: pa.float32(),
    701: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}
_LOAD_CHUNK_ROWS: Final = 65_536
_MIGRATION_LOCK: Final = 0x736D7364  # "smsd": pg_advisory_xact_lock key of migrate()


class _CopyStream(io.RawIOBase):
    """The rows of a ``COPY … TO STDOUT`` as a readable byte stream (pyarrow pulls blocks)."""

    def __init__(self, copy: psycopg.Copy, first: bytes) -> None:
        self._copy = copy
        self._buf = bytearray(first)
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        want = len(b)
        while len(self._buf) < want and not self._done:
            row = self._copy.read()
            if not row:
                self._done = True
            else:
                self._buf += row
        n = min(want, len(self._buf))
        b[:n] = self._buf[:n]
        del self._buf[:n]
        return n


class PostgresWarehouse(Warehouse):
    """:class:`Warehouse` on PostgreSQL; ``dsn`` is a libpq connection string or URL.

    The connection runs in autocommit mode; every write is in an explicit transaction.
    Timestamps are read back in UTC. ``read_only`` is for untrusted queries: every
    transaction of the session, extraction's included, is ``READ ONLY`` (production should
    also give it a role that may only read, see docs/SECURITY.md).
    """

    dialect = "postgres"

    def __init__(self, dsn: str, *, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dsn = dsn
        self.read_only = read_only
        self._con = self._connect()

    def _connect(self) -> psycopg.Connection:
        con = psycopg.connect(self.dsn, autocommit=True)
        con.execute("SET TimeZone = 'UTC'")
        if self.read_only:
            con.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        return con
        self._tx: psycopg.Transaction | None = None

    def close(self) -> None:
        self._con.close()

    def _begin(self) -> None:
        self._tx = self._con.transaction()
        self._tx.__enter__()

    def _commit(self) -> None:
        tx, self._tx = self._tx, None
        assert tx is not None
        tx.__exit__(None, None, None)

    def _rollback(self) -> None:
        tx, self._tx = self._tx, None
        if tx is not None:
            error = RuntimeError("rollback")
            tx.__exit__(type(error), error, None)

    def _lock_migrations(self) -> None:
        self._con.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._con.execute(sql, tuple(params)).rowcount

    def _script(self, sql: str) -> None:
        self._con.execute(sql)  # no parameters: several statements are allowed

    def _query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        cur = self._con.execute(sql, tuple(params))
        names = [d.name for d in cur.description or ()]
        return names, cur.fetchall()

    def _insert_select(self, table: str, data: pa.Table, conflict: str) -> int:
        if data.num_rows == 0:
            return 0
        staged = f"_incoming_{uuid.uuid4().hex}"
        cols = ", ".join(data.column_names)
        options = pcsv.WriteOptions(include_header=False, quoting_style="all_valid")
        with self.transaction(), self._con.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE {staged} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with cur.copy(f"COPY {staged} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                for batch in data.to_batches(max_chunksize=_LOAD_CHUNK_ROWS):
                    sink = io.BytesIO()
                    pcsv.write_csv(batch, sink, options)
                    copy.write(sink.getbuffer())
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staged} {conflict}")
            changed = cur.rowcount
            cur.execute(f"DROP TABLE {staged}")
        return changed

    def extract(self, sql_or_table: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        query = source_query(sql_or_table)
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        with self._connect() as con, con.transaction(), con.cursor() as cur:
            if self.read_only:
                cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(f"SELECT * FROM (\n{query}\n) AS q LIMIT 0")
            names = [d.name for d in cur.description or ()]
            types = {d.name: PG_TO_ARROW.get(d.type_code, pa.string()) for d in cur.description}
            with cur.copy(f"COPY (\n{query}\n) TO STDOUT (FORMAT csv)") as copy:
                first = copy.read()
                if not first:
                    return
                reader = pcsv.open_csv(
                    _CopyStream(copy, bytes(first)),
                    read_options=pcsv.ReadOptions(column_names=names, use_threads=False),
                    parse_options=pcsv.ParseOptions(newlines_in_values=True),
                    convert_options=pcsv.ConvertOptions(
                        column_types=types,
                        null_values=[""],
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=False,
                        true_values=["t"],
                        false_values=["f"],
                    ),
                )
                yield from rebatch(reader, batch_rows)
