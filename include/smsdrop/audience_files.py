"""Audience files (CSV or Parquet) read as batches of text columns, faults named by line.

Every value is read as text (a leading 0 or a + must survive), only an empty field is
missing, and a file that is not what it claims is refused with its file and line rather
than half read. Batches are pyarrow Tables: the preparation pipeline stays in Arrow.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from smsdrop.csvfile import StructureScan, line_at, line_chunks, undecodable
from smsdrop.errors import InputError, printable

AUDIENCE_REQUIRED = ("idremote", "msisdn")
#: Rows a batch holds: memory follows the batch, not the audience.
DEFAULT_BATCH = 250_000
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
    """:func:`read_audience_tables` as pandas frames of pyarrow-backed strings (no copy)."""
    for table in read_audience_tables(path, columns, batch_size):
        yield as_frame(table)


def read_audience_tables(path: Path, columns: list[str], batch_size: int) -> Iterator[pa.Table]:
    """Batches of the needed audience columns, all as strings (a leading 0 must survive).

    Column names are matched trimmed and case-insensitively; the tables carry ``columns``'
    own spelling. Every fault of the file is an :class:`InputError` naming file and line.
    """
    if not path.exists():
        raise InputError("no such audience file", file=str(path))
    if not path.is_file():  # a FIFO or a device would hang or never end
        raise InputError("not a regular file", file=str(path))
    if batch_size < 1:
        raise InputError(f"the batch size must be at least 1, not {batch_size}")
    if path.suffix.lower() in (".parquet", ".pq"):
        yield from read_parquet(path, columns, batch_size, "audience")
    else:
        layout = csv_layout(path)
        yield from read_csv(path, layout, resolve_columns(path, layout.names, columns), batch_size)


def column_key(name: str) -> str:
    """How column names are compared: trimmed, case-folded."""
    return name.strip().casefold()


def resolve_columns(path: Path, present: list[str], needed: list[str]) -> dict[str, int]:
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


def read_parquet(
    path: Path,
    columns: list[str],
    batch_size: int,
    what: str,
    numbers: tuple[str, ...] = AUDIENCE_REQUIRED,
) -> Iterator[pa.Table]:
    """Batches of ``columns`` as text; ``numbers`` are the columns a float cannot hold."""
    try:
        source = pq.ParquetFile(path)
        schema = source.schema_arrow
    except (pa.ArrowException, OSError) as error:
        raise InputError(
            f"not a readable Parquet file ({fault_kind(error)})", file=str(path)
        ) from None
    positions = resolve_columns(path, schema.names, columns)
    actual = {name: schema.names[index] for name, index in positions.items()}
    for name, index in positions.items():
        _text_rule(path, schema.field(index), name, name in numbers)
    try:
        start = 0
        wanted = list(dict.fromkeys(actual.values()))
        batches = (
            batch
            for groups in _row_group_runs(source.metadata, batch_size)
            for batch in source.iter_batches(batch_size, groups, columns=wanted)
        )
        for batch in batches:
            arrays = {
                name: _as_text(path, batch.column(actual[name]), name, start) for name in positions
            }
            start += batch.num_rows
            yield pa.table(arrays)
    except pa.ArrowException as error:
        raise InputError(
            f"cannot read the {what} Parquet file ({fault_kind(error)})", file=str(path)
        ) from None


def _row_group_runs(metadata: pq.FileMetaData, batch_size: int) -> Iterator[list[int]]:
    """Consecutive row groups of ``batch_size`` rows or more together (the last run may
    hold fewer). ``iter_batches`` over a whole file keeps what it has read: ~180 MB more
    by the end of a 10,000,000-row audience, where over a run at a time it holds a run."""
    run: list[int] = []
    rows = 0
    for index in range(metadata.num_row_groups):
        run.append(index)
        rows += metadata.row_group(index).num_rows
        if rows >= batch_size:
            yield run
            run, rows = [], 0
    if run:
        yield run


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


def as_frame(table: pa.Table) -> pd.DataFrame:
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


def read_csv(
    path: Path, layout: CsvLayout, positions: dict[str, int], batch_size: int
) -> Iterator[pa.Table]:
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

    def named(table: pa.Table) -> pa.Table:
        return pa.table({n: table.column(internal[i]) for n, i in positions.items()})

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
        raise InputError(
            f"cannot read the file as CSV ({fault_kind(error)})", file=str(path)
        ) from None


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


def fault_kind(error: Exception) -> str:
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
