"""Strict reading: pyarrow's parse of a report, typed, or an error that says where.

Parsing is pyarrow's CSV reader in the provider's dialect (:mod:`smsdrop.csvfile`: ``;``,
``"``, doubled quotes, newlines inside quoted values), with no header and every column
read as text, then typed by vectorised kernels (:mod:`smsdrop.reports.columns`). Only
when pyarrow refuses the bytes, or a value is refused, are they scanned record by record
(:func:`smsdrop.reports.records.scan`) to name the file, line (from 1) and field.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from smsdrop.csvfile import parse_options, read_options, text_options
from smsdrop.errors import InputError
from smsdrop.reports.columns import (
    ACK_FIELDS,
    REPLY_FIELDS,
    Field,
    as_frame,
    convert,
    empty_table,
    typed_table,
)
from smsdrop.reports.masking import shown
from smsdrop.reports.records import BLANK, BOM, WHOLE, Record, scan

_PARSE_OPTIONS = parse_options(ignore_empty_lines=True)


@dataclass(frozen=True)
class Quarantined:
    """A report record set aside instead of loaded: where it is and why.

    ``offset`` and ``length`` are the record's bytes in the file (its line end included);
    ``line`` is its physical line (from 1) when the caller tracks lines, else None;
    ``field`` the provider's field name (``record`` for the record as a whole); ``reason``
    says what is wrong with values masked (:func:`smsdrop.reports.shown`); ``raw`` is the
    record's text with phone numbers masked (:func:`smsdrop.reports.mask_raw`): never log it.
    """

    offset: int
    length: int
    line: int | None
    field: str
    reason: str
    raw: str

    def describe(self, source: str) -> str:
        """``file:line field F: reason`` (or ``byte N``): safe to log."""
        where = f"{source}:{self.line}" if self.line is not None else f"{source} byte {self.offset}"
        return f"{where} field {self.field}: {self.reason}"


@dataclass(frozen=True)
class Chunk:
    """Rows parsed from a report (a growing reply file read in pieces, or a whole file
    read tolerantly) and where the next read starts.

    ``table`` holds the typed rows (Arrow: what the warehouse loads); ``frame`` is the same
    rows for pandas users. ``lines`` is the number of line breaks consumed, so a caller
    that tracks line numbers passes ``first_line + lines`` next time. With
    ``quarantine=True``, ``quarantined`` holds the records set aside (in file order) and
    ``cleaned`` the NUL and invalid UTF-8 bytes replaced by ``?``; the records of ``table``
    and of ``quarantined`` together are every record of the bytes consumed.
    """

    table: pa.Table
    next_offset: int
    lines: int = 0
    quarantined: tuple[Quarantined, ...] = ()
    cleaned: int = 0

    @cached_property
    def frame(self) -> pd.DataFrame:
        return as_frame(self.table)


class Located:
    """Turns buffer positions into the caller's file, line and byte offset."""

    def __init__(self, source: str, first_line: int | None, offset: int, shift: int) -> None:
        self.source, self.first_line, self.offset, self.shift = source, first_line, offset, shift

    def error(self, message: str, rec_line: int, pos: int, field: str | None) -> InputError:
        line = None if self.first_line is None else self.first_line + rec_line - 1 - self.shift
        if line is None:
            message = f"{message} (byte offset {self.offset + pos - self.shift})"
        return InputError(message, file=self.source, line=line, field=field)


def field_name(fields: Sequence[Field], rec: Record, pos: int) -> str:
    """The provider name of the field of ``rec`` holding byte ``pos`` (in ``rec.body``)."""
    index = sum(1 for start, _ in rec.fields()[1:] if start <= pos)
    return fields[min(index, len(fields) - 1)].provider


def _diagnose(
    buf: bytes, start: int, fields: Sequence[Field], where: Located, cause: Exception
) -> InputError:
    """Find the first bad record after pyarrow refused ``buf``; say where and why."""
    bad_utf8: int | None = None
    try:
        buf[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_utf8 = start + exc.start
    for rec in scan(buf, start):
        if bad_utf8 is not None and bad_utf8 < rec.start:
            break
        if rec.broken:
            field = field_name(fields, rec, len(rec.body))
            return where.error("unterminated quoted field", rec.line, rec.start, field)
        if bad_utf8 is not None and bad_utf8 < rec.start + len(rec.body):
            field = field_name(fields, rec, bad_utf8 - rec.start)
            return where.error("invalid UTF-8", rec.line, rec.start, field)
        if (found := rec.count()) != len(fields):
            names = ";".join(f.provider for f in fields)
            field = fields[found].provider if found < len(fields) else "record"
            message = f"expected {len(fields)} fields {names}, found {found}"
            return where.error(message, rec.line, rec.start, field)
    # pyarrow's own message quotes the row: not repeated here (it may hold a number).
    return InputError(f"unreadable CSV ({type(cause).__name__})", file=where.source)


def read_strings(
    buf: bytes, start: int, fields: Sequence[Field], where: Located, *, diagnose: bool = True
) -> pa.Table:
    """pyarrow's parse of ``buf`` (not empty), every column as text. A refused ``buf`` raises
    the located :class:`InputError` (``diagnose``: a scan) or a bare ValueError (faster)."""
    names = [f.name for f in fields]
    try:
        table = pcsv.read_csv(
            pa.py_buffer(buf),
            read_options=read_options(names, use_threads=True),
            parse_options=_PARSE_OPTIONS,
            convert_options=text_options(names, pa.string()),
        )
    except pa.ArrowInvalid as exc:
        if not diagnose:
            raise ValueError("not readable as a whole") from None
        raise _diagnose(buf, start, fields, where, exc) from None
    # pyarrow takes an unterminated quoted field at the very end as a value (line ends and
    # all); a truncated report is not one. Cheap signs (odd quote count, a last value ending
    # in a line end) send the file to the exact check.
    if _suspect_tail(buf, table) and WHOLE.fullmatch(buf, start) is None:
        if not diagnose:
            raise ValueError("unterminated quote")
        raise _diagnose(buf, start, fields, where, ValueError("unterminated quote")) from None
    return table


def _suspect_tail(buf: bytes, table: pa.Table) -> bool:
    if b'"' not in buf:
        return False
    if buf.count(b'"') % 2:
        return True
    last = table.slice(table.num_rows - 1).to_pylist() if table.num_rows else []
    return any(v.endswith(("\n", "\r")) for row in last for v in row.values())


def read_typed(
    data: bytes,
    source: str,
    fields: Sequence[Field],
    *,
    with_received_at: bool,
    first_line: int | None = 1,
    offset: int = 0,
) -> pa.Table:
    """``data`` (whole records) as a typed table, or the located error of its first bad
    record; ``offset`` is where ``data`` starts in the file."""
    at_file_start = offset == 0
    shift = 0
    buf = data
    if not at_file_start and data.startswith(BOM):
        # pyarrow drops a BOM at the start of any buffer; mid-file it is data (U+FEFF):
        # a leading blank line (ignored) keeps it where it belongs.
        buf, shift = b"\n" + data, 1
    start = len(BOM) if at_file_start and buf.startswith(BOM) else 0
    if BLANK.match(buf, start):  # nothing, or blank lines only: no record
        return empty_table(fields, with_received_at)
    where = Located(source, first_line, offset, shift)
    table = read_strings(buf, start, fields, where)
    columns, refused = convert(table, fields)
    for f, converted in refused:
        assert converted.invalid is not None
        row = pc.index(converted.invalid, True).as_py()
        raw = table.column(f.name)[row].as_py()
        rec = next(itertools.islice(scan(buf, start), row, None))
        message = f"expected {converted.expected}, found {shown(raw)}"
        raise where.error(message, rec.line, rec.start, f.provider)
    return typed_table(columns, with_received_at)


def parse_ack(data: bytes, source: str) -> pd.DataFrame:
    """An ACK file (campaign stats) → frame with :data:`ACK_COLUMNS`; idstatus is int64."""
    return as_frame(read_typed(data, source, ACK_FIELDS, with_received_at=False))


def parse_replies(data: bytes, source: str) -> pd.DataFrame:
    """A whole STOP or SMSMO file → frame with :data:`REPLY_COLUMNS`.

    For a file the provider is still appending to, use :func:`parse_replies_from`: a whole
    read can catch the last record half written.
    """
    return as_frame(read_typed(data, source, REPLY_FIELDS, with_received_at=True))
