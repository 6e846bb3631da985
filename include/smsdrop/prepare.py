"""Campaign preparation without Airflow: audience in, SEND files, rejects and a summary out.

The audience streams through in batches (memory follows the batch, not the audience):
render the message template, validate and normalise (:mod:`smsdrop.validation`), drop
opted-out and duplicate numbers campaign-wide, and write ≤1,000,000-record SEND files.
Every audience row ends in a SEND file or in ``rejects.csv`` with a reason code.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import string
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from smsdrop import naming, windows
from smsdrop.csvfile import (
    MAX_RECORDS,
    SEND_FIELDS,
    FileManifest,
    SendFileWriter,
    StructureScan,
    line_at,
    line_chunks,
    open_private,
    undecodable,
)
from smsdrop.errors import InputError, printable
from smsdrop.gsm import EncodingPolicy
from smsdrop.msisdn import SUPPORTED_REGIONS, classify
from smsdrop.validation import REJECT_COLUMNS, Dedupe, Rules, validate

AUDIENCE_REQUIRED = ("idremote", "msisdn")
REJECTS_FILE = "rejects.csv"
SUMMARY_FILE = "summary.json"
DEFAULT_BATCH = 250_000
#: Larger batches only cost memory; this bounds it.
MAX_BATCH = 10_000_000
#: How far ahead a send may be planned: a STOP received until then could not stop it.
MAX_AHEAD = timedelta(days=366)


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
    #: With an opt-out file: its entries, numbers and entries that are not numbers.
    optout_file: dict[str, object] | None = None

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

#: How much of a CSV's start may be its header line.
HEADER_LIMIT = 1 << 20
#: Only an empty field is missing: ``NA``, ``NULL``, ``nan``, ``None`` are values.
NULL_VALUES = [""]
#: Arrow types read as text by their own formatting (``1`` → "1", a date → ISO 8601).
_TEXT_LIKE = (
    pa.types.is_integer,
    pa.types.is_decimal,
    pa.types.is_boolean,
    pa.types.is_date,
    pa.types.is_time,
    pa.types.is_timestamp,
    pa.types.is_null,
)
_STRING = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
_BINARY = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary)


def read_audience(path: Path, columns: list[str], batch_size: int) -> Iterator[pd.DataFrame]:
    """Batches of the needed audience columns, all as strings (a leading 0 must survive).

    Column names are matched trimmed and case-insensitively; the frames carry ``columns``'
    own spelling. Every fault of the file is an :class:`InputError` naming file and line.
    """
    if not path.exists():
        raise InputError("no such audience file", file=str(path))
    if not path.is_file():  # a FIFO or a device would hang or never end
        raise InputError("not a regular file", file=str(path))
    if batch_size < 1:
        raise InputError(f"the batch size must be at least 1, not {batch_size}")
    if path.suffix.lower() in (".parquet", ".pq"):
        yield from _read_parquet(path, columns, batch_size, "audience")
    else:
        layout = csv_layout(path)
        yield from _read_csv(path, layout, _resolve(path, layout.names, columns), batch_size)


def column_key(name: str) -> str:
    """How column names are compared: trimmed, case-folded."""
    return name.strip().casefold()


def _resolve(path: Path, present: list[str], needed: list[str]) -> dict[str, int]:
    """Position of each needed column among ``present``; refuse missing or doubled ones."""
    where: dict[str, list[int]] = {}
    for index, name in enumerate(present):
        where.setdefault(column_key(name), []).append(index)
    lacking = [name for name in needed if column_key(name) not in where]
    if lacking:
        hint = " (the delimiter must be ',' or ';')" if len(present) == 1 else ""
        raise InputError(
            f"lacks column(s) {', '.join(lacking)} (has: {shown_names(present)}){hint}",
            file=str(path),
        )
    for name in needed:
        if len(where[column_key(name)]) > 1:
            found = [str(i + 1) for i in where[column_key(name)]]
            places = ", ".join(found[:-1]) + " and " + found[-1]
            raise InputError(
                f"columns {places} are all named {printable(name)} (names compared trimmed, "
                "ignoring case): which one is meant?",
                file=str(path),
                field=name,
            )
    return {name: where[column_key(name)][0] for name in needed}


def shown_names(names: list[str], limit: int = 20) -> str:
    """Column names for a message: printable, cut short, and masked when they look like a
    phone number (a header-less file's first line is data, and numbers are never shown)."""
    shown = [printable(_masked(name), 40) for name in names[:limit]]
    return ", ".join(shown) + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _masked(name: str) -> str:
    if len(re.sub(r"\D", "", name)) < 6:
        return name
    return name[:3] + "*" * max(len(name) - 5, 1) + name[-2:]


def _read_parquet(
    path: Path,
    columns: list[str],
    batch_size: int,
    what: str,
    numbers: tuple[str, ...] = AUDIENCE_REQUIRED,
) -> Iterator[pd.DataFrame]:
    """Batches of ``columns`` as text; ``numbers`` are the columns a float cannot hold."""
    try:
        source = pq.ParquetFile(path)
        schema = source.schema_arrow
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"not a readable Parquet file ({_kind(error)})", file=str(path)) from None
    positions = _resolve(path, schema.names, columns)
    actual = {name: schema.names[index] for name, index in positions.items()}
    for name, index in positions.items():
        _text_rule(path, schema.field(index), name, name in numbers)
    try:
        start = 0
        wanted = list(dict.fromkeys(actual.values()))
        for batch in source.iter_batches(batch_size=batch_size, columns=wanted):
            arrays = {
                name: _as_text(path, batch.column(actual[name]), name, start) for name in positions
            }
            start += batch.num_rows
            yield _frame(pa.table(arrays))
    except pa.ArrowException as error:
        raise InputError(
            f"cannot read the {what} Parquet file ({_kind(error)})", file=str(path)
        ) from None


def _text_rule(path: Path, column: pa.Field, name: str, number: bool) -> None:
    """Refuse a Parquet column that has no faithful text form for a SEND field."""
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if any(test(kind) for test in (*_STRING, *_BINARY, *_TEXT_LIKE)):
        return
    if pa.types.is_floating(kind):
        if number:
            raise InputError(
                f"column {printable(column.name)} is {kind}: a number stored as a float loses "
                "its + and leading 0; store it as text",
                file=str(path),
                field=name,
            )
        return
    raise InputError(
        f"column {printable(column.name)} is {kind}: only text, numbers, dates and booleans "
        "can go into a message",
        file=str(path),
        field=name,
    )


def _as_text(path: Path, values: pa.Array, name: str, start: int) -> pa.Array:
    """A column as strings; NaN and infinities are missing values, never "nan"."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if any(test(values.type) for test in _STRING):
        return values.cast(pa.string())
    if pa.types.is_floating(values.type):
        finite = pc.is_finite(values)
        values = pc.if_else(finite, values, pa.scalar(None, values.type))
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:  # binary that is not UTF-8: find the row (error path)
        for offset, value in enumerate(values.to_pylist()):
            try:
                if value is not None:
                    value.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(
                    f"row {start + offset + 1}: bytes that are not UTF-8",
                    file=str(path),
                    field=name,
                ) from None
        raise


def _frame(table: pa.Table) -> pd.DataFrame:
    """A table of strings as a frame of pyarrow-backed strings (no copy)."""
    return table.to_pandas(types_mapper=_STRINGS.get)


_STRINGS = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


@dataclass(frozen=True)
class CsvLayout:
    """A CSV's first line: its delimiter, the column names, and whether it is a header."""

    delimiter: str
    names: list[str]
    header: bool = True


def csv_layout(path: Path) -> CsvLayout:
    """The delimiter (`,` or `;`, whichever the first line uses more) and the column names.

    The first line must be UTF-8 text (a UTF-8 BOM is skipped) and a whole CSV record.
    """
    with open(path, "rb") as handle:
        start = handle.read(HEADER_LIMIT)
    if start.startswith(b"\xef\xbb\xbf"):
        start = start[3:]
    end = min((i for i in (start.find(b"\n"), start.find(b"\r")) if i >= 0), default=-1)
    if end < 0 and len(start) == HEADER_LIMIT:
        raise InputError(
            f"no line end in the first {HEADER_LIMIT:,} bytes: not a CSV with a header",
            file=str(path),
            line=1,
        )
    head = start[: end if end >= 0 else len(start)]
    if not head.strip():
        raise InputError("the first line is empty: a header is expected", file=str(path), line=1)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(undecodable(start, error.start, "UTF-8"), file=str(path), line=1) from None
    if "\x00" in text:
        raise InputError(undecodable(start, text.index("\x00"), "UTF-8"), file=str(path), line=1)
    if text.count('"') % 2:
        raise InputError("the header's quotes do not close on its line", file=str(path), line=1)
    delimiter = ";" if text.count(";") > text.count(",") else ","
    names = next(csv.reader([text], delimiter=delimiter), [])
    return CsvLayout(delimiter, [name.strip() for name in names])


def _read_csv(
    path: Path, layout: CsvLayout, positions: dict[str, int], batch_size: int
) -> Iterator[pd.DataFrame]:
    """Batches of the columns at ``positions``, named by its keys, all strings.

    The file's structure is checked first (:class:`~smsdrop.csvfile.StructureScan`: an
    unterminated quote would swallow the rest of the file into one field), then pyarrow
    reads it with every column as text and only empty fields as missing.
    """
    _check_structure(path, layout.delimiter)
    internal = [f"column{index + 1}" for index in range(len(layout.names))]
    ragged: list[tuple[int | None, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # Keep the position only: the row's text holds personal data.
        ragged.append((row.number, row.actual_columns))
        return "skip"

    def refuse() -> None:
        line, found = ragged[0]
        if line is None:  # the streaming reader does not number rows: find it (error path)
            line, found = _first_ragged_line(path, layout, len(internal))
        raise InputError(
            f"{found} fields where the {'header' if layout.header else 'first line'} has "
            f"{len(internal)}"
            + (f" ({len(ragged)} such rows in this block)" if len(ragged) > 1 else ""),
            file=str(path),
            line=line,
        )

    chosen = list(dict.fromkeys(internal[index] for index in positions.values()))

    def named(table: pa.Table) -> pd.DataFrame:
        return _frame(pa.table({n: table.column(internal[i]) for n, i in positions.items()}))

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                block_size=1 << 24, column_names=internal, skip_rows=1 if layout.header else 0
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=layout.delimiter,
                newlines_in_values=True,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in chosen},
                include_columns=chosen,
                null_values=NULL_VALUES,
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
                yield named(table.slice(0, batch_size))
                rest = table.slice(batch_size)
                pending, rows = rest.to_batches(), rest.num_rows
        if ragged:
            refuse()
        if rows:
            yield named(pa.Table.from_batches(pending))
    except pa.ArrowException as error:
        if "UTF8" in str(error):
            _refuse_undecodable(path)
        raise InputError(f"cannot read the file as CSV ({_kind(error)})", file=str(path)) from None


def _check_structure(path: Path, delimiter: str) -> None:
    """Refuse what is not UTF-8 or not RFC 4180 (unterminated quote, stray quote), by line.

    One pass over the bytes before pyarrow reads them: pyarrow would glue what RFC 4180
    refuses, and cannot say on which line bytes are not UTF-8. Chunks end after a line
    end, so no UTF-8 sequence is cut; an ASCII chunk is not decoded at all.
    """
    scan = StructureScan(delimiter)
    with open(path, "rb") as handle:
        for chunk in line_chunks(handle.read):
            if not chunk.isascii():
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise InputError(
                        undecodable(chunk, error.start, "UTF-8"),
                        file=str(path),
                        line=scan.lines + line_at(chunk, error.start),
                    ) from None
            scan.feed(chunk)
            if scan.fault:
                break
    fault = scan.finish()
    if fault is not None:
        raise InputError(fault.kind, file=str(path), line=fault.line)


def _refuse_undecodable(path: Path) -> None:
    """Find the first byte that is not UTF-8 and raise with its line (error path)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    with open(path, "rb") as handle:
        for chunk in line_chunks(handle.read):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise InputError(
                    undecodable(chunk, error.start, "UTF-8"),
                    file=str(path),
                    line=lines - 1 + line_at(chunk, error.start),
                ) from None
            lines += line_at(chunk, len(chunk)) - 1


def _kind(error: Exception) -> str:
    """The kind of a reader's fault, without the data it may quote."""
    return str(error).splitlines()[0].split(":")[0][:80] if str(error) else type(error).__name__


def _first_ragged_line(path: Path, layout: CsvLayout, expected: int) -> tuple[int | None, int]:
    """The line (from 1) and field count of the first record without ``expected`` fields."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=layout.delimiter)
        for record in reader:
            if record and len(record) != expected:
                return reader.line_num, len(record)
    return None, expected


# --- opt-out files ----------------------------------------------------------------------

#: Names an opt-out file's number column goes by (compared by :func:`column_key`, accents
#: removed), in order of preference.
OPTOUT_COLUMNS = ("msisdn", "e164", "phone", "mobile", "numero", "telephone", "tel", "number")
#: A first field that reads as a phone number (8+ digits): the file has no header.
_LOOKS_LIKE_NUMBER = re.compile(r"\+?(?:[0-9][ ().\-/]*){8,}")
#: How many unreadable entries a report lists by record number.
SHOWN_UNREADABLE = 10


@dataclass
class OptOutList:
    """An opt-out file read: its numbers (E.164) and what could not be read as one."""

    source: str
    numbers: pd.Series
    entries: int = 0
    unreadable: int = 0
    unreadable_records: list[int] = field(default_factory=list)  # the first few, from 1

    def report(self) -> dict[str, object]:
        return {
            "file": self.source,
            "entries": self.entries,
            "numbers": int(self.numbers.nunique()),
            "unreadable": self.unreadable,
            "unreadable_records": self.unreadable_records,
        }

    def warning(self) -> str | None:
        if not self.unreadable:
            return None
        shown = ", ".join(map(str, self.unreadable_records))
        more = ", …" if self.unreadable > len(self.unreadable_records) else ""
        return (
            f"opt-out file {Path(self.source).name}: {self.unreadable} of {self.entries} "
            f"entries are not phone numbers (records {shown}{more}; header not counted): "
            "they opt nobody out"
        )


def read_optouts(path: Path, default_region: str = "FR") -> pd.Series:
    """Opted-out numbers as E.164 (see :func:`load_optouts`)."""
    return load_optouts(path, default_region).numbers


def load_optouts(
    path: Path, default_region: str = "FR", batch_size: int = DEFAULT_BATCH
) -> OptOutList:
    """An opt-out file (CSV or Parquet) as E.164 numbers, read as text (never type-guessed).

    The number column is the one named like :data:`OPTOUT_COLUMNS` (``MSISDN``, ``phone``,
    ``numéro``, …) or the only column; a CSV whose first line is a phone number has no
    header. ``,`` or ``;``, a UTF-8 BOM, CR/LF/CRLF line ends are read. An entry that is not
    a phone number (an empty one included) is counted and reported, never dropped silently.
    """
    if not path.exists():
        raise InputError("no such opt-out file", file=str(path))
    if not path.is_file():
        raise InputError("not a regular file", file=str(path))
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"not a readable Parquet file ({_kind(error)})", file=str(path)
            ) from None
        column = _optout_column(path, names)
        batches = _read_parquet(path, [column], batch_size, "opt-out", (column,))
    else:
        layout = csv_layout(path)
        first = layout.names[0] if layout.names else ""
        if _LOOKS_LIKE_NUMBER.fullmatch(first):  # no header: the numbers are the first column
            others = [f"column{i + 1}" for i in range(1, len(layout.names))]
            layout = CsvLayout(layout.delimiter, ["msisdn", *others], header=False)
        column = _optout_column(path, layout.names)
        positions = {column: _resolve(path, layout.names, [column])[column]}
        batches = _read_csv(path, layout, positions, batch_size)
    result = OptOutList(str(path), pd.Series([], dtype="string[pyarrow]", name="e164"))
    kept = []
    for batch in batches:
        numbers = classify(batch[column], default_region)["e164"]
        bad = np.flatnonzero(numbers.isna().to_numpy())
        room = SHOWN_UNREADABLE - len(result.unreadable_records)
        result.unreadable_records += (bad[:room] + result.entries + 1).tolist()
        result.unreadable += len(bad)
        result.entries += len(batch)
        kept.append(numbers.dropna())
    if kept:
        result.numbers = pd.concat(kept, ignore_index=True)
    return result


def _optout_column(path: Path, names: list[str]) -> str:
    keys = [_unaccented(column_key(name)) for name in names]
    known = [names[keys.index(key)] for key in OPTOUT_COLUMNS if key in keys]
    if len(known) > 1:
        raise InputError(
            f"opt-out file has several number columns ({', '.join(map(printable, known))}): "
            "keep one",
            file=str(path),
        )
    if known:
        return known[0]
    if len(names) == 1:
        return names[0]
    raise InputError(
        f"opt-out file needs a number column named one of {', '.join(OPTOUT_COLUMNS)} "
        f"(has: {shown_names(names)})",
        file=str(path),
    )


def _unaccented(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# --- the send slot ----------------------------------------------------------------------


def first_allowed_slot(
    requested: datetime, countries: list[str], window_end: str | None
) -> datetime:
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
    """The country's window narrowed to ``window_end`` ("HH:MM"); None: its own rules.

    An end can only narrow the legal window, never widen it (23:00 is refused for France).
    """
    if window_end is None:
        return None
    try:
        return windows.narrowed(country, clock_time.fromisoformat(window_end))
    except ValueError as error:
        raise InputError(str(error), field="window_end") from None


# --- the whole preparation --------------------------------------------------------------


def prepare(
    audience: Path,
    campaign: Campaign,
    out_dir: Path,
    *,
    optouts: pd.Series | OptOutList | None = None,
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
    if str(campaign.default_region).upper() not in SUPPORTED_REGIONS:
        raise InputError(
            f"unknown region {printable(campaign.default_region)} (an ISO 3166 code, e.g. FR)",
            field="default_region",
        )
    if not 1 <= batch_size <= MAX_BATCH:
        raise InputError(f"the batch size must be 1..{MAX_BATCH:,}, not {batch_size}")
    start_at = now or _utcnow()
    requested = campaign.send_at or start_at
    if requested.tzinfo is None or start_at.tzinfo is None:
        raise InputError("the send time needs a time zone (e.g. 2026-12-01T10:00+01:00)")
    try:
        ahead = requested - start_at
    except OverflowError:  # year 9999 at a negative offset is after year 9999 in UTC
        raise InputError(f"the send time {requested.isoformat()} is out of range") from None
    if ahead > MAX_AHEAD:
        raise InputError(
            f"the send time {requested.isoformat()} is more than {MAX_AHEAD.days} days ahead: "
            "opt-outs received until then could not stop it",
            field="send_at",
        )
    plan_from = max(requested, start_at)  # a past time plans from now, never in the past
    if campaign.window_end is not None:
        send_window("FR", campaign.window_end)  # refuse a widening end before any work
    if isinstance(optouts, OptOutList):
        optout_list, optouts = optouts, optouts.numbers
    else:
        optout_list = None

    if _would_replace(audience, out_dir):
        raise InputError(
            "the audience is a file prepare writes or clears in the output folder: "
            "move it or choose another folder",
            file=str(audience),
        )
    prepare_folder(out_dir)
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
        with open_private(rejects_path) as rejects_out:
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
        slot = first_allowed_slot(plan_from, list(countries), campaign.window_end)
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
        optout_file=optout_list.report() if optout_list is not None else None,
    )
    if optout_list is not None and optout_list.warning():
        summary.warnings.append(optout_list.warning() or "")
    if summary.recipients != summary.valid + summary.rejected:  # the promise, checked
        raise AssertionError("rows lost in preparation")
    with open_private(out_dir / SUMMARY_FILE) as handle:
        handle.write((json.dumps(summary.as_dict(), indent=2) + "\n").encode())
    return summary


#: Names ``prepare`` writes in its output folder (and so may remove there).
OUR_FILES = (REJECTS_FILE, SUMMARY_FILE)


def prepare_folder(out_dir: Path) -> None:
    """Create ``out_dir`` (0700: personal data) or clear what an earlier preparation left.

    SEND files of an earlier run must never sit next to the new ones (an uploader would
    send both). A folder holding ``rejects.csv``, ``summary.json`` or unfinished parts is
    ours: its SEND files are removed. SEND files in a folder without those were not
    written by ``prepare``: refused rather than deleted.
    """
    if not out_dir.exists():
        missing = [p for p in (out_dir, *out_dir.parents) if not p.exists()]
        out_dir.mkdir(parents=True, mode=0o700)
        for created in missing:
            created.chmod(0o700)
        return
    if not out_dir.is_dir():
        raise InputError("the output folder is a file", file=str(out_dir))
    sends = [p for p in out_dir.iterdir() if _is_send_file(p.name)]
    parts = list(out_dir.glob(".part-*.partial"))
    ours = parts or any((out_dir / name).exists() for name in OUR_FILES)
    if sends and not ours:
        raise InputError(
            f"the output folder holds {len(sends)} SEND file(s) that smsdrop prepare did not "
            "write: choose an empty folder or remove them",
            file=str(out_dir),
        )
    for path in (*sends, *parts, *(out_dir / name for name in OUR_FILES)):
        path.unlink(missing_ok=True)


def _would_replace(path: Path, out_dir: Path) -> bool:
    """Whether ``path`` is one of the names :func:`prepare_folder` clears in ``out_dir``."""
    try:
        same = path.resolve().parent == out_dir.resolve()
    except OSError:
        return False
    name = path.name
    return same and (name in OUR_FILES or _is_send_file(name) or name.endswith(".partial"))


def _is_send_file(name: str) -> bool:
    try:
        return naming.parse_name(name).kind is naming.FileKind.SEND
    except InputError:
        return False


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
    "first_allowed_slot",
    "prepare",
    "read_audience",
    "read_optouts",
    "render",
    "send_window",
    "template_fields",
]
