"""The warehouse interface and everything the two engines share.

:class:`Warehouse` holds the domain side (what a load means, keys, SQL that both dialects
accept); an engine supplies five primitives: a transaction, a statement, a query, a bulk
``INSERT … SELECT`` from an Arrow table, and a streaming ``extract``. SQL here is written
once with ``%s`` placeholders (psycopg's; the DuckDB engine turns them into ``?``).
"""

from __future__ import annotations

import contextlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple, Self

import pandas as pd
import pyarrow as pa

from smsdrop.dropbox import FILE_STATES, FINAL, FileKind, FileState, RemoteState, advances
from smsdrop.errors import InvalidName
from smsdrop.naming import parse_name
from smsdrop.warehouse import frames
from smsdrop.warehouse.costs import CampaignCosts
from smsdrop.warehouse.history import SendHistory
from smsdrop.warehouse.migrations import SCHEMA_MIGRATIONS_DDL, SQL_DIR, migrations, pending
from smsdrop.warehouse.optout import OPTOUT_KEYWORDS

if TYPE_CHECKING:
    from smsdrop.reports import Quarantined

__all__ = ["FILE_STATES", "LoadResult", "Warehouse", "rebatch", "source_query"]

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
#: Counts of a Summary copied into sms_campaigns.
_SUMMARY_COUNTS: Final = ("recipients", "valid", "rejected", "opted_out", "segments")


class LoadResult(NamedTuple):
    """What a bulk load did: rows given, rows new in the table, opt-outs new or moved earlier."""

    rows: int
    new: int
    optouts: int = 0


def source_query(sql_or_table: str) -> str:
    """A table name (``audience`` or ``schema.audience``) or a SELECT → a SELECT."""
    text = sql_or_table.strip().rstrip(";").strip()
    if not text:
        raise ValueError("expected a table name or a SELECT, got an empty string")
    if _IDENTIFIER.fullmatch(text):
        return f"SELECT * FROM {text}"
    return text


def rebatch(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``rows`` rows (the last one shorter), whatever the engine gives.

    Holds at most ``rows`` rows plus the engine's current batch.
    """
    if rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {rows}")
    parts: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            parts.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == rows:
                yield _combine(parts)
                parts, count = [], 0
    if count:
        yield _combine(parts)


def _combine(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(parts) == 1:
        return parts[0]
    return pa.Table.from_batches(parts).combine_chunks().to_batches()[0]


def _basename(name: str | PurePath) -> str:
    return PurePath(name).name if isinstance(name, PurePath) else re.split(r"[\\/]", name)[-1]


def _send_file_of(report: str) -> tuple[str | None, str | None]:
    """(SEND file, CAMPAIGNID) a report is named after; (None, None) for another name."""
    try:
        parsed = parse_name(report)
    except InvalidName:
        return None, None
    return parsed.with_kind(FileKind.SEND).name, parsed.campaign_id


def _send_name(name: str) -> str:
    """A SEND file under its ``.csv`` name (the key of sms_campaign_files)."""
    try:
        parsed = parse_name(name)
    except InvalidName:
        return name
    return parsed.with_ext(RemoteState.CSV) if parsed.kind is FileKind.SEND else name


class Warehouse(SendHistory, CampaignCosts, ABC):
    """smsdrop's tables in a SQL warehouse: schema, bulk idempotent loads, stats, extraction.

    Use as a context manager (or call :meth:`close`). Loads are idempotent: reloading the
    same ACK, STOP or SMSMO content inserts nothing (natural keys, ``ON CONFLICT``).
    """

    dialect: ClassVar[str]
    #: Opened for untrusted queries only (see the engines): no write can succeed.
    read_only: bool = False

    def __init__(
        self, *, sql_dir: Path = SQL_DIR, keywords: Sequence[str] = OPTOUT_KEYWORDS
    ) -> None:
        self.sql_dir = Path(sql_dir)
        self.keywords = tuple(keywords)
        self._depth = 0

    # --- engine primitives ---------------------------------------------------------------

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed (-1 when not applicable)."""

    @abstractmethod
    def _script(self, sql: str) -> None:
        """Run several statements (DDL), no parameters."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        """Column names and all rows of a (small) query."""

    @abstractmethod
    def _insert_select(self, table: str, data: pa.Table, conflict: str) -> int:
        """``INSERT INTO table (cols) SELECT cols FROM <data> <conflict>``; rows changed."""

    @abstractmethod
    def extract(self, sql_or_table: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream a table or a SELECT as Arrow batches of exactly ``batch_rows`` rows (the
        last one shorter); memory is bounded by the batch, not the result."""

    @abstractmethod
    def _lock_migrations(self) -> None:
        """Serialise concurrent :meth:`migrate` calls (inside a transaction)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        self._commit()

    # --- schema --------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the DDL not applied yet, each migration in its own transaction with its row
        in ``schema_migrations``. Returns the versions applied now ([] the second time)."""
        available = migrations(self.dialect, self.sql_dir)
        done: list[int] = []
        with self.transaction():
            self._lock_migrations()
            self._script(SCHEMA_MIGRATIONS_DDL)
        for migration in available:
            with self.transaction():
                self._lock_migrations()
                _, rows = self._query("SELECT version, sha256 FROM schema_migrations")
                if not pending(dict(rows), [migration]):
                    continue
                self._script(migration.sql)
                self._execute(
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.sha256),
                )
                done.append(migration.version)
        return done

    def applied_migrations(self) -> list[tuple[int, str]]:
        """(version, file name) of the applied migrations, in order."""
        _, rows = self._query("SELECT version, name FROM schema_migrations ORDER BY version")
        return [(int(v), str(n)) for v, n in rows]

    # --- loads ---------------------------------------------------------------------------

    def _campaign_of(self, report: str) -> tuple[str | None, str | None]:
        """(SEND file name, campaign id) behind a report named after a SEND file.

        The campaign is the one recorded for the SEND file; when the file was not recorded,
        the CAMPAIGNID of the name (a chunk id for campaigns split in several files).
        """
        send, named_campaign = _send_file_of(report)
        if send is None:
            return None, None
        _, rows = self._query("SELECT campaign_id FROM sms_campaign_files WHERE name = %s", (send,))
        return send, (rows[0][0] if rows else named_campaign)

    def load_acks(
        self,
        rows: frames.Rows,
        file: str | PurePath,
        *,
        send_file: str | None = None,
        campaign_id: str | None = None,
    ) -> LoadResult:
        """Load a parsed ACK file (:func:`smsdrop.reports.parse_ack_tolerant`'s table, or
        :func:`smsdrop.reports.parse_ack`'s frame) into ``sms_deliveries``.

        ``send_file`` and ``campaign_id`` are what the caller knows: the SEND file it
        uploaded and the campaign it recorded that file for. Without them they come from
        the ACK's name (the SEND file it is named after, the name's CAMPAIGNID). An ACK
        named after another SEND file than ``send_file`` is refused: its deliveries would
        count for the wrong file. Keyed by (ACK file, MSISDN): reloading inserts nothing.
        """
        name = _basename(file)
        named_send, named_campaign = _send_file_of(name)
        if send_file is not None:
            send_file = _send_name(_basename(send_file))
            if named_send is not None and named_send != send_file:
                raise ValueError(f"{name} is not the ACK of {send_file}")
        data = frames.deliveries_table(
            rows, name, send_file or named_send, campaign_id or named_campaign
        )
        with self.transaction():
            new = self._insert_select(
                "sms_deliveries", data, "ON CONFLICT (file, msisdn) DO NOTHING"
            )
        return LoadResult(len(rows), new)

    def _upsert_optouts(self, data: pa.Table) -> int:
        # The earliest known opt-out wins; reloading the same rows changes nothing.
        return self._insert_select(
            "sms_optouts",
            data,
            "ON CONFLICT (msisdn) DO UPDATE SET source = excluded.source,"
            " received_at = excluded.received_at, keyword = excluded.keyword,"
            " file = excluded.file"
            " WHERE excluded.received_at IS NOT NULL AND (sms_optouts.received_at IS NULL"
            " OR excluded.received_at < sms_optouts.received_at)",
        )

    def upsert_optouts(
        self, frame: frames.Rows, source: str, file: str | PurePath | None = None
    ) -> LoadResult:
        """Add numbers to the suppression list (``sms_optouts``).

        ``frame`` needs ``msisdn`` (any notation; stored as E.164, unparseable numbers
        skipped), and may have ``received_at`` and ``message`` (a STOP report has both:
        the keyword is kept). ``source`` says where they come from (``stop_report``,
        ``import``, …). A number already there keeps its earliest opt-out.
        """
        name = None if file is None else _basename(file)
        data = frames.optouts_table(frame, source, name, self.keywords)
        with self.transaction():
            new = self._upsert_optouts(data)
        return LoadResult(len(frame), new, new)

    def load_replies(self, frame: frames.Rows, file: str | PurePath) -> LoadResult:
        """Load parsed MO replies (:func:`smsdrop.reports.parse_replies`) into ``sms_replies``;
        a reply whose first word is an opt-out keyword is an opt-out too (source
        ``mo_reply``), in the same transaction."""
        name = _basename(file)
        _, campaign_id = self._campaign_of(name)
        data = frames.replies_table(frame, name, campaign_id, self.keywords)
        stops = data.filter(data["is_stop"]).select(["msisdn", "received_at", "message"])
        optouts = frames.optouts_table(stops, "mo_reply", name, self.keywords)
        with self.transaction():
            new = self._insert_select(
                "sms_replies", data, "ON CONFLICT (msisdn, received_at, idremote) DO NOTHING"
            )
            moved = self._upsert_optouts(optouts) if optouts.num_rows else 0
        return LoadResult(len(frame), new, moved)

    def optout_numbers(self) -> pd.Series:
        """Every opted-out number (E.164), as a ``string[pyarrow]`` Series named ``msisdn``."""
        batches = list(self.extract("SELECT msisdn FROM sms_optouts ORDER BY msisdn", 1_000_000))
        if not batches:
            return pd.Series([], dtype="string[pyarrow]", name="msisdn")
        column = pa.Table.from_batches(batches).column("msisdn").cast(pa.string())
        return pd.Series(pd.array(column, dtype="string[pyarrow]"), name="msisdn")

    def save_rejects(self, campaign_id: str, rejects: pd.DataFrame) -> LoadResult:
        """Store a campaign's rejected rows (:data:`smsdrop.record_rules.REJECT_COLUMNS`),
        keyed by (campaign, source row); the MSISDN is stored masked, whatever is given."""
        data = frames.rejects_table(campaign_id, rejects)
        with self.transaction():
            new = self._insert_select(
                "sms_rejected_rows", data, "ON CONFLICT (campaign_id, source_row) DO NOTHING"
            )
        return LoadResult(len(rejects), new)

    def forget_rejects(self, campaign_id: str) -> int:
        """Drop a campaign's stored rejects before it is prepared again.

        Rejects are saved while the preparation streams (memory follows the batch), so an
        attempt that stopped (a budget stop, a crash) leaves some; the next attempt, with
        newer opt-outs and caps, must not keep their reasons. Only for a campaign that
        handed nothing over (the run's ``start`` has checked it).
        """
        with self.transaction():
            return self._execute(
                "DELETE FROM sms_rejected_rows WHERE campaign_id = %s", (campaign_id,)
            )

    def save_late_optouts(self, campaign_id: str, rejects: pd.DataFrame) -> int:
        """Rows removed from a SEND file before its upload (opted out since it was
        written): saved as rejects, and moved from ``valid`` to ``rejected``/``opted_out``
        in ``sms_campaigns`` — by the rows new here, so a retried save counts nothing twice.
        Returns how many were new."""
        with self.transaction():
            new = self.save_rejects(campaign_id, rejects).new
            self._execute(
                "UPDATE sms_campaigns SET valid = valid - %s, rejected = rejected + %s,"
                " opted_out = opted_out + %s, updated_at = now() WHERE campaign_id = %s",
                (new, new, new, campaign_id),
            )
        return new

    # --- campaigns and files -------------------------------------------------------------

    def record_campaign(
        self,
        campaign_id: str,
        service_id: str,
        *,
        status: str,
        parameters: Mapping[str, Any] | None = None,
        summary: object = None,
        send_at: datetime | None = None,
    ) -> None:
        """Create or update a campaign. ``summary`` (a :class:`smsdrop.prepare.Summary` or
        its dict) fills the counts and the send time; what is not given is kept."""
        facts = frames.as_mapping(summary)
        counts = [facts.get(k) for k in _SUMMARY_COUNTS]
        files = facts.get("files")
        n_files = len(files) if isinstance(files, list) else None
        if send_at is None and facts.get("send_at"):
            send_at = datetime.fromisoformat(str(facts["send_at"]))
        params = None if parameters is None else json.dumps(parameters, default=str)
        keep = ", ".join(
            f"{c} = COALESCE(excluded.{c}, sms_campaigns.{c})"
            for c in ("parameters", *_SUMMARY_COUNTS, "files", "send_at")
        )
        with self.transaction():
            self._execute(
                "INSERT INTO sms_campaigns (campaign_id, service_id, parameters, status,"
                " recipients, valid, rejected, opted_out, segments, files, send_at)"
                " VALUES (%s, %s, CAST(%s AS JSON), %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (campaign_id) DO UPDATE SET service_id = excluded.service_id,"
                f" status = excluded.status, {keep}, updated_at = now()",
                (campaign_id, service_id, params, status, *counts, n_files, send_at),
            )

    def record_file_state(
        self,
        name: str | PurePath,
        state: FileState | str,
        *,
        campaign_id: str | None = None,
        row_count: int | None = None,
        byte_count: int | None = None,
        sha256: str | None = None,
    ) -> str:
        """Record a SEND file's state (``planned`` → ``tmp`` → ``csv`` → ``lock`` →
        ``done``/``reject``) and facts; returns the state now stored.

        The file is keyed by its ``.csv`` name whatever extension is given. States only move
        forward: recording an earlier state (a retried task) changes nothing, and a final
        state is final. A new file needs its ``campaign_id``.
        """
        if state not in FILE_STATES:
            raise ValueError(f"state must be one of {', '.join(FILE_STATES)}, got {state!r}")
        state = FileState(state)
        key = _send_name(_basename(name))
        with self.transaction():
            _, found = self._query("SELECT state FROM sms_campaign_files WHERE name = %s", (key,))
            if not found:
                if campaign_id is None:
                    raise ValueError(f"{key} is not recorded yet: give its campaign_id")
                self._execute(
                    "INSERT INTO sms_campaign_files (name, campaign_id, row_count, byte_count,"
                    " sha256, state, finished_at) VALUES (%s, %s, %s, %s, %s, %s,"
                    " CASE WHEN %s THEN now() END)",
                    (key, campaign_id, row_count, byte_count, sha256, state.value, state in FINAL),
                )
                return state.value
            current = FileState(found[0][0])
            new_state = state if advances(current, state) else current
            self._execute(
                "UPDATE sms_campaign_files SET state = %s,"
                " campaign_id = COALESCE(%s, campaign_id), row_count = COALESCE(%s, row_count),"
                " byte_count = COALESCE(%s, byte_count), sha256 = COALESCE(%s, sha256),"
                " updated_at = now(),"
                " finished_at = CASE WHEN %s THEN COALESCE(finished_at, now()) END"
                " WHERE name = %s",
                (
                    new_state.value,
                    campaign_id,
                    row_count,
                    byte_count,
                    sha256,
                    new_state in FINAL,
                    key,
                ),
            )
            return new_state.value

    def campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """A campaign's row (``parameters`` decoded), or None."""
        names, rows = self._query(
            "SELECT * FROM sms_campaigns WHERE campaign_id = %s", (campaign_id,)
        )
        if not rows:
            return None
        row = dict(zip(names, rows[0], strict=True))
        if isinstance(row.get("parameters"), str):
            row["parameters"] = json.loads(row["parameters"])
        return row

    def lock_campaign(self, campaign_id: str) -> None:
        """Hold the campaign's row until the transaction ends, so two runs cannot plan the
        same campaign at once. (PostgreSQL: ``FOR UPDATE``; a DuckDB file has one writer.)"""
        if self.dialect == "postgres":
            self._query(
                "SELECT campaign_id FROM sms_campaigns WHERE campaign_id = %s FOR UPDATE",
                (campaign_id,),
            )

    def campaign_files(self, campaign_id: str) -> list[dict[str, Any]]:
        """The SEND files recorded for a campaign (name, state, row_count, sha256), by name."""
        names, rows = self._query(
            "SELECT name, state, row_count, sha256 FROM sms_campaign_files"
            " WHERE campaign_id = %s ORDER BY name",
            (campaign_id,),
        )
        return [dict(zip(names, row, strict=True)) for row in rows]

    def forget_planned(self, campaign_id: str, names: Sequence[str]) -> int:
        """Drop ``planned`` names that never reached the provider (the caller checked);
        a name in any other state is kept. Returns how many were dropped."""
        dropped = 0
        with self.transaction():
            for name in names:
                dropped += max(
                    0,
                    self._execute(
                        "DELETE FROM sms_campaign_files WHERE campaign_id = %s AND name = %s"
                        " AND state = %s",
                        (campaign_id, _send_name(_basename(name)), FileState.PLANNED.value),
                    ),
                )
        return dropped

    # --- report offsets ------------------------------------------------------------------

    def get_offset(self, report_name: str | PurePath) -> int:
        """Byte offset where the next read of a growing report starts (0 if never read)."""
        _, rows = self._query(
            "SELECT byte_offset FROM sms_report_offsets WHERE report_name = %s",
            (_basename(report_name),),
        )
        return int(rows[0][0]) if rows else 0

    def set_offset(self, report_name: str | PurePath, offset: int) -> None:
        """Persist the offset reached (call it in the transaction that loaded the rows)."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        with self.transaction():
            self._execute(
                "INSERT INTO sms_report_offsets (report_name, byte_offset) VALUES (%s, %s)"
                " ON CONFLICT (report_name) DO UPDATE SET byte_offset = excluded.byte_offset,"
                " updated_at = now()",
                (_basename(report_name), offset),
            )

    def quarantine_records(self, file: str | PurePath, records: Sequence[Quarantined]) -> int:
        """Keep report records that could not be loaded (:class:`smsdrop.reports.Quarantined`:
        byte offset, length, field, reason, masked raw text) in ``sms_report_quarantine``;
        call it in the transaction that moves the file's offset past them. Keyed by (file,
        byte offset): the same bytes read again add nothing. Returns the rows new."""
        name = _basename(file)
        data = pa.table(
            {
                "file": pa.array([name] * len(records), pa.string()),
                "byte_offset": pa.array([r.offset for r in records], pa.int64()),
                "byte_length": pa.array([r.length for r in records], pa.int64()),
                "field": pa.array([r.field for r in records], pa.string()),
                "reason": pa.array([r.reason for r in records], pa.string()),
                "raw_masked": pa.array([r.raw for r in records], pa.string()),
            }
        )
        with self.transaction():
            return self._insert_select(
                "sms_report_quarantine", data, "ON CONFLICT (file, byte_offset) DO NOTHING"
            )

    def record_optout_load(
        self, started_at: datetime, finished_at: datetime, counts: Mapping[str, int]
    ) -> None:
        """Note an opt-out refresh that read every STOP and SMSMO report without a failure
        (``counts``: files, files_read, bytes, rows, quarantined, replies, optouts)."""
        with self.transaction():
            self._execute(
                "INSERT INTO sms_optout_loads (started_at, finished_at, files, files_read,"
                " bytes, records, quarantined, replies, optouts)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    started_at,
                    finished_at,
                    *(
                        int(counts.get(k, 0))
                        for k in (
                            "files",
                            "files_read",
                            "bytes",
                            "rows",
                            "quarantined",
                            "replies",
                            "optouts",
                        )
                    ),
                ),
            )

    def last_optout_load(self) -> datetime | None:
        """When the last opt-out refresh that read every report without a failure finished
        (aware, UTC), or None when none ever did: how fresh the suppression list is."""
        _, rows = self._query("SELECT max(finished_at) FROM sms_optout_loads")
        return rows[0][0] if rows and rows[0][0] is not None else None

    # --- stats ---------------------------------------------------------------------------

    def campaign_stats(self, campaign_id: str) -> dict[str, Any]:
        """The campaign's row of the ``sms_campaign_stats`` view, as a dict."""
        names, rows = self._query(
            "SELECT * FROM sms_campaign_stats WHERE campaign_id = %s", (campaign_id,)
        )
        if not rows:
            raise LookupError(f"no campaign {campaign_id!r} in the warehouse")
        return dict(zip(names, rows[0], strict=True))

    def replace_table(self, name: str, data: pa.Table) -> int:
        """(Re)create table ``name`` holding ``data`` (text and integer columns): to seed an
        audience for the demo, the tests and the benchmarks. Returns the rows loaded."""
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a table name: {name!r}")
        columns = ", ".join(
            f'"{f.name}" {"BIGINT" if pa.types.is_integer(f.type) else "TEXT"}' for f in data.schema
        )
        with self.transaction():
            self._execute(f"DROP TABLE IF EXISTS {name}")
            self._execute(f"CREATE TABLE {name} ({columns})")
            for batch in data.to_batches(max_chunksize=1_000_000):
                self._insert_select(name, pa.Table.from_batches([batch]), "")
        return data.num_rows

    def query_columns(self, sql_or_table: str) -> list[str]:
        """The column names of a table or a SELECT (nothing is read)."""
        names, _ = self._query(f"SELECT * FROM (\n{source_query(sql_or_table)}\n) AS q LIMIT 0")
        return names

    def query_frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """A small query as a pandas frame (views, checks); use :meth:`extract` for big ones."""
        names, rows = self._query(sql, params)
        return pd.DataFrame.from_records(rows, columns=names)
