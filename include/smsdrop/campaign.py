"""One campaign run, step by step, without Airflow: what the ``sms_campaign`` DAG's tasks do.

The campaign itself is a :class:`~smsdrop.spec.CampaignSpec` (checked once, when the run
starts).

* :func:`submission` — whether the campaign id was submitted already: a campaign is sent
  once, whatever number of runs are triggered for it.
* :func:`extract_audience` — the audience from the warehouse into a staged Parquet file,
  in batches (only the columns the message needs).
* :func:`prepare_staged` — :func:`smsdrop.prepare.prepare` on the staged audience with the
  warehouse's opt-outs; the rejects go to the warehouse.

Everything that holds personal data stays in the run's staging folder, which the DAG
removes once the files have served.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from smsdrop import windows
from smsdrop.account import Account
from smsdrop.audience import audience_query
from smsdrop.audience_files import as_frame
from smsdrop.contract_process import ContractProcess
from smsdrop.csvfile import MAX_RECORDS, open_private
from smsdrop.dropbox import FileState, RemoteState
from smsdrop.errors import InputError
from smsdrop.prepare import REJECTS_FILE, Summary, prepare, send_window
from smsdrop.pricing import PriceList
from smsdrop.spec import CampaignSpec
from smsdrop.warehouse import Warehouse

AUDIENCE_FILE = "audience.parquet"
#: Beside each staged SEND file, the audience row of each of its records (int64, ``.npy``).
ROWS_SUFFIX = ".rows.npy"


# --- submitted once ----------------------------------------------------------------------


class Submission(StrEnum):
    NEW = "new"  # nothing recorded: prepare it
    STALE = "stale"  # names planned by a run that never handed any over: prepare anew
    SUBMITTED = "submitted"  # handed over (or being): never again


@dataclass(frozen=True)
class SubmissionCheck:
    state: Submission
    files: list[dict[str, Any]]
    detail: str


def submission(
    warehouse: Warehouse, campaign_id: str, remote_state: Callable[[str], str]
) -> SubmissionCheck:
    """Was ``campaign_id`` handed over to the provider already?

    The warehouse records each SEND name as ``planned`` before its upload. A name past
    ``planned`` was handed over. A ``planned`` one may have been too (the run died between
    the upload and the record), so the provider's ``Send/`` is asked (``remote_state``:
    ``absent``, ``tmp``, ``csv``, ``lock``, ``done`` or ``reject``) before a plan is
    called stale.
    """
    files = warehouse.campaign_files(campaign_id)
    if not files:
        return SubmissionCheck(Submission.NEW, [], f"campaign {campaign_id} is new")
    states = {f["name"]: f["state"] for f in files}
    for name, state in states.items():
        if state == FileState.PLANNED:
            found = remote_state(name)
            if found != RemoteState.ABSENT:
                states[name] = found
    handed = {n: s for n, s in states.items() if s != FileState.PLANNED}
    listing = ", ".join(f"{n} ({s})" for n, s in sorted(states.items()))
    if handed:
        return SubmissionCheck(
            Submission.SUBMITTED,
            files,
            f"campaign {campaign_id} was submitted already: {listing}. Nothing is sent again; "
            "to send it anew, use a new campaign id",
        )
    return SubmissionCheck(
        Submission.STALE,
        files,
        f"campaign {campaign_id} has names planned by an earlier run that never reached the "
        f"provider ({listing}): they are dropped and the campaign is prepared anew",
    )


def slot_problem(
    send_at: datetime, countries: Iterable[str], window_end: str | None, now: datetime
) -> str | None:
    """Why the planned slot can no longer be uploaded, or None.

    A slot in the past is sent at once by the provider: fine while ``now`` is inside every
    destination's window. Otherwise the provider would queue it (hours later) or reject it
    (a Sunday, a holiday) — checked before every upload, since a run can wait or retry.
    """
    if send_at > now:
        return None
    for country in sorted(set(countries)):
        decision = windows.check(now, country, send_window(country, window_end or None))
        if not decision.allowed:
            return (
                f"the planned slot {send_at.isoformat()} has passed and now is outside the "
                f"{country} window ({decision.reason}): nothing is uploaded; trigger the "
                "campaign again to plan a new slot"
            )
    return None


def horizon_problem(send_at: datetime | None, now: datetime, max_days: int) -> str | None:
    """Why ``send_at`` is too far ahead, or None: the provider cannot cancel a scheduled
    file, so a slot weeks away would ignore every opt-out received until then."""
    if send_at is not None and send_at - now > timedelta(days=max_days):
        return (
            f"send_at {send_at.isoformat()} is more than {max_days} day(s) ahead "
            f"(max_days_ahead={max_days}): trigger the campaign closer to its date"
        )
    return None


def upload_time(send_at: datetime, lead_minutes: int) -> datetime:
    """When a file for ``send_at`` is uploaded: ``lead_minutes`` before, not earlier (the
    opt-outs published until then are honoured)."""
    return send_at - timedelta(minutes=lead_minutes)


# --- opt-outs published after the files were written -------------------------------------


def rows_path(send_file: Path) -> Path:
    return send_file.with_name(send_file.name + ROWS_SUFFIX)


def write_row_maps(staging: Path, summary: Summary, rejected: Any = None) -> None:
    """Record beside each SEND file the audience row of each of its records.

    ``prepare`` writes the records it keeps in audience order and cuts files in that order,
    so the kept rows are the audience's rows without the rejected ones, in order. A record
    removed later (an opt-out published before its upload) is then saved as a reject of its
    own audience row. ``rejected`` (sorted int64, see :class:`RejectedRows`) spares reading
    them back from ``rejects.csv``.
    """
    import numpy as np

    if rejected is None:
        rejected = _rejected_rows(staging / REJECTS_FILE)
    # A mask, not np.setdiff1d: that one hashes or sorts the whole audience (~6 s for
    # 2,000,000 rows with numpy 2.4), this is one pass.
    rejected = np.asarray(rejected, dtype=np.int64)
    if len(rejected) and not (1 <= rejected.min() and rejected.max() <= summary.recipients):
        raise AssertionError("a reject names a row outside the audience")
    keep = np.ones(summary.recipients + 1, dtype=bool)
    keep[0] = False  # rows count from 1
    keep[rejected] = False
    kept = np.flatnonzero(keep)
    if len(kept) != sum(int(f["rows"]) for f in summary.files):
        raise AssertionError("the SEND files do not hold the rows the rejects leave")
    start = 0
    for entry in summary.files:
        count = int(entry["rows"])
        with open_private(rows_path(staging / str(entry["name"]))) as out:
            np.save(out, kept[start : start + count])
        start += count


class RejectedRows:
    """A rejects sink that keeps only the rejected audience rows, for :func:`write_row_maps`
    (8 bytes a reject: with the numbers kept, 8 bytes a recipient)."""

    def __init__(self) -> None:
        self._rows: list[Any] = []

    def write(self, rejects: pa.Table) -> None:
        self._rows.append(rejects.column("row").to_numpy())

    def close(self) -> None:
        pass

    def rows(self) -> Any:
        """The rejected rows so far, sorted."""
        import numpy as np

        return np.sort(np.concatenate(self._rows)) if self._rows else np.empty(0, np.int64)


def _rejected_rows(path: Path) -> Any:
    import numpy as np
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            include_columns=["row"], column_types={"row": pa.int64()}
        ),
    )
    return np.sort(table.column("row").to_numpy())


@dataclass(frozen=True)
class LateOptOuts:
    """What :func:`late_optouts` would remove from a SEND file, and the file after it.

    Nothing is written until :meth:`write`: the caller saves :attr:`removed` as rejects
    first, so a crash in between leaves the file as it was (the retry finds the same rows,
    already saved, and writes the file then) — never a row in neither place.
    """

    removed: pd.DataFrame  # REJECT_COLUMNS: row, idremote, msisdn (E.164), reason, field, detail
    records: int
    bytes: int
    sha256: str
    body: bytes = field(repr=False)
    rows: Any = field(repr=False)  # the row map after the removal (int64 array)

    def write(self, send_file: Path) -> None:
        """Rewrite the file and its row map, each atomically, under the same names."""
        import numpy as np

        for path, write in (
            (rows_path(send_file), lambda out: np.save(out, self.rows)),
            (send_file, lambda out: out.write(self.body)),
        ):
            temp = path.with_name(path.name + ".rewrite")
            with open_private(temp) as out:
                write(out)
            temp.replace(path)


def late_optouts(send_file: Path, optouts: pd.Series) -> LateOptOuts | None:
    """The records of a staged, not yet uploaded SEND file whose number is in ``optouts``
    (E.164), as ``OPTED_OUT`` rejects of their audience rows, and the file without them;
    None when it holds none. Writes nothing (see :class:`LateOptOuts`)."""
    import hashlib

    import numpy as np
    import pyarrow.compute as pc

    from smsdrop.csvfile import SEND_FIELDS, encode_records, read_records

    data = send_file.read_bytes()
    table = read_records(data, send_file.name).table
    numbers = pa.array(optouts.dropna().unique(), pa.string())
    hit = pc.fill_null(pc.is_in(table.column("msisdn").cast(pa.string()), value_set=numbers), False)
    if not pc.any(hit).as_py():
        return None
    rows = np.load(rows_path(send_file))
    hits = hit.to_numpy(zero_copy_only=False)
    if len(rows) != table.num_rows:
        raise AssertionError(f"{send_file.name}: its row map does not match its records")
    kept = table.filter(pc.invert(hit)).select(list(SEND_FIELDS))
    body = encode_records(kept, "\r\n" if b"\r\n" in data else "\n")
    removed = table.filter(hit)
    frame = pd.DataFrame(
        {
            "row": rows[hits],
            "idremote": removed.column("idremote").to_pandas(),
            "msisdn": removed.column("msisdn").to_pandas(),
            "reason": "OPTED_OUT",
            "field": "MSISDN",
            "detail": "opted out after the file was written, before its upload",
        }
    )
    return LateOptOuts(
        frame, kept.num_rows, len(body), hashlib.sha256(body).hexdigest(), body, rows[~hits]
    )


# --- extract and prepare -----------------------------------------------------------------


def extract_audience(
    warehouse: Warehouse, spec: CampaignSpec, out: Path, *, batch_rows: int = 250_000
) -> int:
    """Stream the audience's needed columns into a Parquet file; the number of rows.

    Columns are read as text (a leading zero must survive); memory follows the batch. The
    audience is untrusted SQL: ``warehouse`` must be opened ``read_only``.
    """
    if not warehouse.read_only:
        raise ValueError("the audience is read through a read-only warehouse connection")
    query = audience_query(spec.audience, dialect=warehouse.dialect)
    columns = spec.columns()
    present = warehouse.query_columns(query)
    lacking = [c for c in columns if c not in present]
    if lacking:
        raise InputError(
            f"audience lacks column(s) {', '.join(lacking)} (has: {', '.join(present)})",
            field="audience",
        )
    quoted = {c: '"' + c.replace('"', '""') + '"' for c in columns}
    selected = ", ".join(f"CAST({q} AS VARCHAR) AS {q}" for q in quoted.values())
    schema = pa.schema([(c, pa.string()) for c in columns])
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open_private(out) as sink, pq.ParquetWriter(sink, schema, compression="lz4") as writer:
        for batch in warehouse.extract(
            f"SELECT {selected} FROM (\n{query}\n) AS audience", batch_rows
        ):
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))
            rows += batch.num_rows
    return rows


def prepare_staged(
    open_warehouse: Callable[[], Warehouse],
    spec: CampaignSpec,
    staging: Path,
    *,
    now: datetime | None = None,
    batch_rows: int = 250_000,
    max_records: int = MAX_RECORDS,
    timings: dict[str, float] | None = None,
    account: Account | None = None,
    prices: PriceList | None = None,
    contract: bool = False,
    contract_usage: dict[str, float] | None = None,
) -> Summary:
    """Prepare the staged audience: SEND files and rejects in ``staging``, rejects saved to
    the warehouse (masked), opt-outs taken from the warehouse as they are now, and, for a
    marketing campaign with a frequency cap (its own or the deployment's), the numbers
    other campaigns have brought to the cap.

    The cap is counted around the requested send time, or now when none is asked: the
    slot is only known once the audience is read, and the window moves it by hours at most,
    against a span of days.

    With ``contract``, the upload contract is checked on each SEND file as soon as it is
    written, in a process of its own (:mod:`smsdrop.contract_process`), with the opt-outs
    that arrived meanwhile checked at the end: ``summary.contract`` is its result
    (``contract_usage`` gets that process's CPU seconds and peak memory).

    A campaign prepared again (not a dry run) first drops the rejects an earlier attempt
    saved, so every row's reason is this attempt's.

    The warehouse is opened (``open_warehouse``) briefly: for the opt-outs, then to save
    the rejects (:class:`WarehouseRejects`) — never across the preparation, so that
    concurrent runs on an embedded DuckDB file wait seconds for each other, not minutes.
    """
    from datetime import UTC

    cap = spec.cap() if spec.marketing(account) else None
    with open_warehouse() as warehouse:
        if not spec.dry_run:  # an earlier attempt's rejects, saved as it streamed
            warehouse.forget_rejects(spec.campaign_id)
        optouts = warehouse.optout_numbers()
        slot = spec.send_time() or now or datetime.now(UTC)
        capped = warehouse.capped_numbers(cap, slot, spec.campaign_id) if cap else None
    rejected = RejectedRows()
    with ExitStack() as stack:
        check = None
        if contract:
            check = stack.enter_context(ContractProcess(spec.rules(), optouts, folder=staging))
        summary = prepare(
            staging / AUDIENCE_FILE,
            spec,
            staging,
            optouts=optouts,
            now=now,
            batch_size=batch_rows,
            timings=timings,
            max_records=max_records,
            rejects_to=[WarehouseRejects(open_warehouse, spec.campaign_id, batch_rows), rejected],
            account=account,
            prices=prices,
            capped=capped,
            check=check,
        )
        write_row_maps(staging, summary, rejected.rows())
        if check is not None:
            with open_warehouse() as warehouse:  # what arrived while it was prepared
                now_optouts = warehouse.optout_numbers()
            later = now_optouts[~now_optouts.isin(optouts)]
            names = [str(f["name"]) for f in summary.files]
            summary.contract = check.result(names, later).as_dict()
            if contract_usage is not None:
                contract_usage.update(check.usage)
    return summary


class WarehouseRejects:
    """A rejects sink that saves them to the warehouse (``save_rejects``), ``flush_rows`` at
    a time, opening it for each save only: a campaign with fewer rejects saves them once,
    when the preparation succeeded. An empty text is stored as NULL."""

    def __init__(
        self, open_warehouse: Callable[[], Warehouse], campaign_id: str, flush_rows: int
    ) -> None:
        self.open_warehouse = open_warehouse
        self.campaign_id = campaign_id
        self.flush_rows = flush_rows
        self._pending: list[pa.Table] = []
        self._rows = 0

    def write(self, rejects: pa.Table) -> None:
        if rejects.num_rows:
            self._pending.append(rejects)
            self._rows += rejects.num_rows
        if self._rows >= self.flush_rows:
            self._save()

    def close(self) -> None:
        self._save()

    def _save(self) -> None:
        if not self._pending:
            return
        table = _empty_as_null(pa.concat_tables(self._pending))
        with self.open_warehouse() as warehouse:
            warehouse.save_rejects(self.campaign_id, as_frame(table))
        self._pending, self._rows = [], 0


def _empty_as_null(table: pa.Table) -> pa.Table:
    """Empty texts as NULL, as the warehouse has always stored them."""
    import pyarrow.compute as pc

    for index, column in enumerate(table.columns):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            empty = pc.fill_null(pc.equal(column, ""), False)
            nulls = pc.if_else(empty, pa.scalar(None, column.type), column)
            table = table.set_column(index, table.field(index), nulls)
    return table


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary a user reads in the task log (counts only)."""
    lines = [
        f"campaign {summary['campaign_id']} (service {summary['service_id']})",
        (
            f"recipients {summary['recipients']:,}: {summary['valid']:,} to send, "
            f"{summary['rejected']:,} rejected ({summary['opted_out']:,} opted out)"
        ),
        f"send at {summary['send_at']}"
        + (" (moved into the send window)" if summary.get("send_at_moved") else ""),
        f"segments {summary['segments']:,}; encodings {json.dumps(summary['encodings'])}",
        f"destinations {json.dumps(summary['countries'])}",
    ]
    cost = summary.get("cost")
    if cost:
        lines.append(
            f"estimated cost {cost['total']} {cost['currency']}; by country "
            f"{json.dumps(cost['by_country'])}; by encoding {json.dumps(cost['by_encoding'])}"
        )
    if summary.get("frequency_capped"):
        lines.append(f"frequency capped {summary['frequency_capped']:,}")
    for reason, count in summary["rejects_by_reason"].items():
        lines.append(f"  rejected {reason}: {count:,}")
    for entry in summary["files"]:
        lines.append(f"  file {entry['name']}: {entry['rows']:,} records")
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    return lines
