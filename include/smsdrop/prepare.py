"""Campaign preparation without Airflow: audience in, SEND files, rejects and a summary out.

The audience streams through in batches (memory follows the batch, not the audience):
render the message template, validate and normalise (:mod:`smsdrop.validation`), drop
opted-out and duplicate numbers campaign-wide, and write ≤1,000,000-record SEND files.
Every audience row ends in a SEND file or in ``rejects.csv`` with a reason code.
"""

from __future__ import annotations

import csv
import json
import string
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from smsdrop import naming, windows
from smsdrop.csvfile import MAX_RECORDS, SEND_FIELDS, FileManifest, SendFileWriter
from smsdrop.errors import InputError
from smsdrop.gsm import EncodingPolicy
from smsdrop.msisdn import classify
from smsdrop.validation import REJECT_COLUMNS, Dedupe, Rules, validate

AUDIENCE_REQUIRED = ("idremote", "msisdn")
REJECTS_FILE = "rejects.csv"
SUMMARY_FILE = "summary.json"
DEFAULT_BATCH = 250_000


@dataclass(frozen=True)
class Campaign:
    """What a user says about a campaign; everything else is derived."""

    service_id: str
    campaign_id: str
    sender: str
    template: str
    send_at: datetime | None = None  # aware; None means as soon as allowed
    default_region: str = "FR"
    long_sms: bool = False
    encoding_policy: EncodingPolicy = EncodingPolicy.REJECT
    file_encoding: str = "utf-8"
    line_end: str = "crlf"
    max_records: int = MAX_RECORDS
    window_end: str | None = None  # "HH:MM" to narrow the French window (e.g. "20:00")

    def rules(self) -> Rules:
        return Rules(self.encoding_policy, self.long_sms, self.default_region)


@dataclass
class Summary:
    """A campaign's preparation in figures: what a user checks before sending."""

    campaign_id: str
    service_id: str
    send_at: str
    requested_send_at: str
    send_at_moved: bool = False  # the requested time was outside a destination's window
    recipients: int = 0
    valid: int = 0
    rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    opted_out: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    countries: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# --- message template -------------------------------------------------------------------


def template_fields(template: str) -> list[str]:
    """The ``{column}`` placeholders of a template; ``{{`` and ``}}`` stand for braces."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise InputError(f"message template: {error}", field="MSG") from None
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise InputError(
                f"message template placeholder {{{name}}} must be a plain column name",
                field="MSG",
            )
        names.append(name)
    return names


def render(template: str, batch: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The message per row, and which rows lack a placeholder value (vectorised)."""
    empty = pa.scalar("", pa.large_string())
    pieces: list[pa.Array | pa.Scalar] = []
    missing = np.zeros(len(batch), dtype=bool)
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(pa.scalar(literal, pa.large_string()))
        if name is not None:
            values = pa.array(batch[name], pa.large_string())
            blank = pc.equal(pc.utf8_trim_whitespace(values), empty)
            missing |= pc.fill_null(blank, True).to_numpy(zero_copy_only=False)
            pieces.append(pc.fill_null(values, empty))
    if not any(isinstance(piece, pa.Array) for piece in pieces):
        pieces.append(pa.array([""] * len(batch), pa.large_string()))
    message = pc.binary_join_element_wise(*pieces, empty)
    return (
        pd.Series(message, index=batch.index, dtype="string[pyarrow]"),
        pd.Series(missing, index=batch.index),
    )


# --- audience ---------------------------------------------------------------------------


def read_audience(path: Path, columns: list[str], batch_size: int) -> Iterator[pd.DataFrame]:
    """Batches of the needed audience columns, all as strings (a leading 0 must survive)."""
    if not path.exists():
        raise InputError("no such audience file", file=str(path))
    if path.suffix.lower() in (".parquet", ".pq"):
        yield from _read_parquet(path, columns, batch_size)
    else:
        yield from _read_csv(path, columns, batch_size)


def _check_columns(path: Path, present: list[str], needed: list[str]) -> None:
    lacking = [name for name in needed if name not in present]
    if lacking:
        raise InputError(
            f"audience lacks column(s) {', '.join(lacking)} (has: {', '.join(present)})",
            file=str(path),
        )


def _read_parquet(path: Path, columns: list[str], batch_size: int) -> Iterator[pd.DataFrame]:
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"not a readable Parquet file ({error})", file=str(path)) from None
    _check_columns(path, source.schema_arrow.names, columns)
    schema = pa.schema([(name, pa.string()) for name in columns])
    for batch in source.iter_batches(batch_size=batch_size, columns=columns):
        yield _frame(pa.Table.from_batches([batch]).cast(schema))


def _frame(table: pa.Table) -> pd.DataFrame:
    """A table of strings as a frame of pyarrow-backed strings (no copy)."""
    return table.to_pandas(types_mapper=_STRINGS.get)


_STRINGS = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


def _read_csv(path: Path, columns: list[str], batch_size: int) -> Iterator[pd.DataFrame]:
    delimiter, present = _csv_header(path)
    _check_columns(path, present, columns)
    ragged: list[tuple[int | None, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # Keep the position only: the row's text holds personal data.
        ragged.append((row.number, row.actual_columns))
        return "skip"

    def refuse() -> None:
        line, found = ragged[0]
        if line is None:  # the streaming reader does not number rows: find it (error path)
            line, found = _first_ragged_line(path, delimiter, len(present))
        raise InputError(
            f"{found} fields where the header has {len(present)}"
            + (f" ({len(ragged)} such rows in this block)" if len(ragged) > 1 else ""),
            file=str(path),
            line=line,
        )

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in present},
                include_columns=columns,
                strings_can_be_null=True,
            ),
        )
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            if ragged:
                refuse()
            pending.append(batch)
            rows += batch.num_rows
            while rows >= batch_size:
                table = pa.Table.from_batches(pending)
                yield _frame(table.slice(0, batch_size))
                rest = table.slice(batch_size)
                pending, rows = rest.to_batches(), rest.num_rows
        if ragged:
            refuse()
        if rows:
            yield _frame(pa.Table.from_batches(pending))
    except pa.ArrowInvalid as error:
        reason = str(error).splitlines()[0].split(":")[0]  # the kind, not the data
        raise InputError(f"cannot read the audience as CSV ({reason})", file=str(path)) from None


def _first_ragged_line(path: Path, delimiter: str, expected: int) -> tuple[int | None, int]:
    """The line (from 1) and field count of the first record without ``expected`` fields."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        for record in reader:
            if record and len(record) != expected:
                return reader.line_num, len(record)
    return None, expected


def read_optouts(path: Path, default_region: str = "FR") -> pd.Series:
    """Opted-out numbers as E.164: a CSV/Parquet with an ``msisdn`` column (or one column)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        table = pq.read_table(path)
    else:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=_csv_header(path)[0]),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        )
    names = table.column_names
    if "msisdn" not in names and len(names) != 1:
        raise InputError("opt-out file needs an msisdn column", file=str(path))
    column = table.column("msisdn" if "msisdn" in names else names[0]).cast(pa.string())
    numbers = classify(_frame(pa.table({"msisdn": column}))["msisdn"], default_region)
    return numbers["e164"].dropna()


def _csv_header(path: Path) -> tuple[str, list[str]]:
    """The delimiter (`,` or `;`, whichever the header uses more) and the column names."""
    with open(path, "rb") as handle:
        head = handle.readline().decode("utf-8-sig", errors="replace")
    delimiter = ";" if head.count(";") > head.count(",") else ","
    names = next(csv.reader([head], delimiter=delimiter), [])
    return delimiter, [name.strip() for name in names]


# --- the send slot ----------------------------------------------------------------------


def plan_slot(requested: datetime, countries: list[str], window_end: str | None) -> datetime:
    """The first minute at or after ``requested`` allowed in every destination's window.

    The provider queues (outside hours) or rejects (Sundays, holidays) a marketing SMS due
    outside its window, so the name must carry a time it would send at once.
    """
    slot = requested.replace(second=0, microsecond=0)
    rules = {c: send_window(c, window_end) for c in sorted(set(countries))}
    for _ in range(100):  # each pass can only move forward; windows agree within a few
        moved = slot
        for country, window in rules.items():
            moved = windows.next_allowed(moved, country, window)
        if moved == slot:
            return slot.astimezone(naming.PARIS)
        slot = moved
    raise InputError("no send slot fits every destination country's window")


def send_window(country: str, window_end: str | None) -> windows.SendWindow | None:
    """The country's window narrowed to ``window_end`` ("HH:MM"); None: its own rules."""
    if window_end is None:
        return None
    return windows.window_for(country, end=clock_time.fromisoformat(window_end))


# --- the whole preparation --------------------------------------------------------------


def prepare(
    audience: Path,
    campaign: Campaign,
    out_dir: Path,
    *,
    optouts: pd.Series | None = None,
    batch_size: int = DEFAULT_BATCH,
    now: datetime | None = None,
    timings: dict[str, float] | None = None,
) -> Summary:
    """Prepare a campaign into ``out_dir``: SEND files, ``rejects.csv`` and ``summary.json``.

    ``timings``, when given, receives the seconds spent per stage (for the benchmarks).
    """
    clock = Stopwatch(timings if timings is not None else {})
    # Refuse a bad SERVICEID or CAMPAIGNID before reading a single audience row.
    naming.build_name(naming.FileKind.SEND, campaign.service_id, _utcnow(), campaign.campaign_id)
    placeholders = template_fields(campaign.template)
    columns = list(dict.fromkeys([*AUDIENCE_REQUIRED, *placeholders]))
    requested = campaign.send_at or now or _utcnow()
    if requested.tzinfo is None:
        raise InputError("the send time needs a time zone (e.g. 2026-12-01T10:00+01:00)")

    out_dir.mkdir(parents=True, exist_ok=True)
    writer = SendFileWriter(
        out_dir,
        cap=campaign.max_records,
        encoding=campaign.file_encoding,
        line_end=campaign.line_end,
    )
    dedupe = Dedupe(optouts)
    rules = campaign.rules()
    reasons: Counter[str] = Counter()
    encodings: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    totals = {"recipients": 0, "segments": 0}
    warnings: set[str] = set()
    rejects_path = out_dir / REJECTS_FILE
    try:
        with open(rejects_path, "wb") as rejects_out:
            rejects_out.write((",".join(REJECT_COLUMNS) + "\n").encode())
            batches = read_audience(audience, columns, batch_size)
            while True:
                with clock("read"):
                    batch = next(batches, None)
                if batch is None:
                    break
                start = totals["recipients"]
                totals["recipients"] += len(batch)
                with clock("render"):
                    message, missing = render(campaign.template, batch)
                frame = pd.DataFrame(
                    {
                        "idremote": batch["idremote"],
                        "msisdn": batch["msisdn"],
                        "oadc": campaign.sender,
                        "msg": message,
                        "row": range(start + 1, start + len(batch) + 1),
                        "template_missing": missing,
                    }
                )
                with clock("validate"):
                    checked = validate(frame, rules)
                warnings.update(checked.warnings)
                with clock("dedupe"):
                    keep, dropped = dedupe.select(checked.checked, checked.ok)
                with clock("rejects"):
                    for rejects in (checked.rejects, dropped):
                        reasons.update(rejects["reason"].value_counts().to_dict())
                        _append_csv(rejects, rejects_out)
                with clock("write"):
                    kept = pa.Table.from_pandas(
                        checked.checked[[*SEND_FIELDS, "encoding", "country", "segments"]],
                        preserve_index=False,
                    ).filter(pa.array(keep))
                    writer.write(kept.select(list(SEND_FIELDS)))
                with clock("rejects"):
                    for name, counter in (("encoding", encodings), ("country", countries)):
                        counts = pc.value_counts(kept.column(name)).to_pylist()
                        counter.update({c["values"]: c["counts"] for c in counts})
                    totals["segments"] += pc.sum(kept.column("segments")).as_py() or 0
        slot = plan_slot(requested, list(countries), campaign.window_end)
        ids = {}

        def name_for(index: int, count: int) -> str:
            if count not in ids:
                ids[count] = naming.chunk_campaign_ids(campaign.campaign_id, count)
            return naming.build_name(
                naming.FileKind.SEND, campaign.service_id, slot, ids[count][index]
            ).name

        with clock("write"):
            manifests: list[FileManifest] = writer.finish(name_for)
    except BaseException:
        writer.abort()
        raise

    summary = Summary(
        campaign_id=campaign.campaign_id,
        service_id=campaign.service_id,
        send_at=slot.isoformat(),
        requested_send_at=requested.isoformat(),
        send_at_moved=slot != requested.replace(second=0, microsecond=0),
        recipients=totals["recipients"],
        valid=dedupe.kept,
        rejected=sum(reasons.values()),
        rejects_by_reason=dict(sorted(reasons.items())),
        opted_out=reasons.get("OPTED_OUT", 0),
        encodings=dict(sorted(encodings.items())),
        segments=totals["segments"],
        countries=dict(sorted(countries.items())),
        files=[m.as_dict() for m in manifests],
        warnings=sorted(warnings),
    )
    if summary.recipients != summary.valid + summary.rejected:  # the promise, checked
        raise AssertionError("rows lost in preparation")
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


def _append_csv(frame: pd.DataFrame, handle) -> None:
    if len(frame):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(
            pa.Table.from_pandas(frame, preserve_index=False),
            sink,
            pacsv.WriteOptions(include_header=False),
        )
        handle.write(sink.getvalue().to_pybytes())


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Stopwatch:
    """Adds the seconds spent in each ``with clock(stage):`` block to a dict."""

    def __init__(self, totals: dict[str, float]) -> None:
        self.totals = totals

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[stage] = self.totals.get(stage, 0.0) + time.perf_counter() - start


__all__ = [
    "Campaign",
    "Summary",
    "plan_slot",
    "prepare",
    "read_audience",
    "read_optouts",
    "render",
    "send_window",
    "template_fields",
]
