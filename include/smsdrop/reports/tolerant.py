"""The provider's report files (ACK, STOP, SMSMO) as typed pandas frames.

The spec gives the columns and little else, and the example ACK line is itself untidy
(``2 `` as IDSTATUS, a space inside the operator id). So reading is tolerant where data
cannot be misread (BOM, CRLF or LF, quoted fields, spaces around non-text fields, blank
lines, a missing final newline) and strict where it could (field count, IDSTATUS,
DATE/HOUR): a bad report stops with the file, line (from 1) and field, never a guess.

Parsing is pyarrow's CSV reader (``;``, ``"``, RFC 4180 doubled quotes, newlines inside
quoted values, no header, everything read as text then typed by vectorised kernels). Good
files are never looped over in Python: only when something is wrong do we re-scan the
bytes record by record (:func:`_scan`) to say where. The scanner and the completeness regex
used for incremental reads follow pyarrow's tokenizer (a quote only opens a field at its
start; after the closing quote the field continues unquoted; CRLF, LF or a lone CR end a
record) so that reading a growing file in pieces gives the same rows as reading it whole.

What our sandbox writes (and the formats accepted) are in docs/PROTOCOL.md: DATE ``YYYYMMDD``, HOUR ``HHMMSS``, CRLF line ends, fields quoted only when
they must be.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from smsdrop.errors import InputError
from smsdrop.naming import PARIS, require_aware

__all__ = [
    "ACK_COLUMNS",
    "ACK_FIELDS",
    "DATE_FORMATS",
    "HOUR_FORMATS",
    "MAX_OPEN_LINES",
    "MAX_RECORD_BYTES",
    "REPLY_COLUMNS",
    "REPLY_DATE_FORMAT",
    "REPLY_FIELDS",
    "REPLY_HOUR_FORMAT",
    "SPLIT_BYTES",
    "Chunk",
    "Field",
    "Quarantined",
    "clean_bytes",
    "format_record",
    "format_reply_date",
    "format_reply_hour",
    "mask_raw",
    "parse_ack",
    "parse_ack_tolerant",
    "parse_replies",
    "parse_replies_from",
    "shown",
    "shown_number",
    "write_ack_line",
    "write_reply_line",
]

BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Field:
    """One column of a report: provider name, our column name, and how it is typed.

    ``kind`` selects the converter in :data:`_CONVERTERS`: ``id`` (text, stripped at the
    ends), ``text`` (free text, kept byte for byte: a message's spaces are the sender's),
    ``int``, ``date``, ``hour``.
    """

    provider: str
    name: str
    kind: str


ACK_FIELDS: Final = (
    Field("IDREMOTE", "idremote", "id"),
    Field("MSISDN", "msisdn", "id"),
    Field("OADC", "oadc", "id"),
    Field("MSG", "msg", "text"),
    Field("IDSTATUS", "idstatus", "int"),
    Field("STATUS", "status", "id"),
    Field("ACKOPERATOR", "ackoperator", "id"),
)
#: STOP and SMSMO files share this layout.
REPLY_FIELDS: Final = (
    Field("MSISDN", "msisdn", "id"),
    Field("DATE", "date", "date"),
    Field("HOUR", "hour", "hour"),
    Field("MESSAGE", "message", "text"),
    Field("IDREMOTE", "idremote", "id"),
)
ACK_COLUMNS: Final = tuple(f.name for f in ACK_FIELDS)
#: The reply columns plus ``received_at``: DATE + HOUR as an aware Europe/Paris timestamp.
REPLY_COLUMNS: Final = (*(f.name for f in REPLY_FIELDS), "received_at")

#: Accepted DATE spellings: (label, full-match regex, RE2 rewrite to YYYYMMDD).
DATE_FORMATS: Final = (
    ("YYYYMMDD", r"^([0-9]{4})([0-9]{2})([0-9]{2})$", r"\1\2\3"),
    ("YYYY-MM-DD", r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$", r"\1\2\3"),
    ("DD/MM/YYYY", r"^([0-9]{2})/([0-9]{2})/([0-9]{4})$", r"\3\2\1"),
)
#: Accepted HOUR spellings: (label, full-match regex, RE2 rewrite to HHMMSS; RE2 group
#: references are one digit, so ``\\200`` is group 2 then ``00``).
HOUR_FORMATS: Final = (
    ("HHMM", r"^([0-9]{2})([0-9]{2})$", r"\1\200"),
    ("HHMMSS", r"^([0-9]{2})([0-9]{2})([0-9]{2})$", r"\1\2\3"),
    ("HH:MM", r"^([0-9]{2}):([0-9]{2})$", r"\1\200"),
    ("HH:MM:SS", r"^([0-9]{2}):([0-9]{2}):([0-9]{2})$", r"\1\2\3"),
)
_HHMMSS_VALID: Final = r"^([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]$"
#: What our sandbox writes (strftime formats, Paris local time).
REPLY_DATE_FORMAT: Final = "%Y%m%d"
REPLY_HOUR_FORMAT: Final = "%H%M%S"
#: RFC 4180 line end for what we write; any of CRLF, LF, CR is read.
NEWLINE: Final = b"\r\n"


# --- typing: string arrays → typed arrays, plus the rows that failed -------------------


@dataclass(frozen=True)
class _Converted:
    values: pa.Array
    invalid: pa.Array | None  # boolean, True where the input was refused
    expected: str = ""


def _one_of(formats: tuple[tuple[str, str, str], ...]) -> str:
    labels = [label for label, _, _ in formats]
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def _as_id(raw: pa.Array) -> _Converted:
    return _Converted(pc.utf8_trim_whitespace(raw), None)


def _as_text(raw: pa.Array) -> _Converted:
    return _Converted(raw, None)


def _as_int(raw: pa.Array) -> _Converted:
    s = pc.utf8_trim_whitespace(raw)
    ok = pc.match_substring_regex(s, r"^[+-]?[0-9]{1,18}$")
    values = pc.cast(pc.if_else(ok, s, pa.scalar(None, pa.string())), pa.int64())
    return _Converted(values, pc.invert(ok), "an integer")


def _canonical(s: pa.Array, formats: tuple[tuple[str, str, str], ...]) -> pa.Array:
    """Rewrite every accepted spelling to one canonical string; null where none matches."""
    out = pa.nulls(len(s), pa.string())
    for _label, pattern, rewrite in formats:
        hit = pc.match_substring_regex(s, pattern)
        out = pc.if_else(hit, pc.replace_substring_regex(s, pattern, rewrite), out)
    return out


def _as_date(raw: pa.Array) -> _Converted:
    canon = _canonical(pc.utf8_trim_whitespace(raw), DATE_FORMATS)
    parsed = pc.strptime(canon, format="%Y%m%d", unit="s", error_is_null=True)
    # Arrow's strptime is lenient (20260230 → 2 March): keep only exact round trips.
    exact = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y%m%d"), canon), False)
    values = pc.cast(parsed, pa.date32())
    return _Converted(values, pc.invert(exact), f"a date {_one_of(DATE_FORMATS)}")


def _as_hour(raw: pa.Array) -> _Converted:
    canon = _canonical(pc.utf8_trim_whitespace(raw), HOUR_FORMATS)
    ok = pc.fill_null(pc.match_substring_regex(canon, _HHMMSS_VALID), False)
    canon = pc.if_else(ok, canon, pa.scalar(None, pa.string()))

    def part(i: int) -> pa.Array:
        return pc.cast(pc.utf8_slice_codeunits(canon, i, i + 2), pa.int32())

    seconds = pc.add(pc.add(pc.multiply(part(0), 3600), pc.multiply(part(2), 60)), part(4))
    values = pc.cast(pc.cast(seconds, pa.int32()), pa.time32("s"))
    return _Converted(values, pc.invert(ok), f"a time {_one_of(HOUR_FORMATS)}")


def _per_distinct(convert: Callable[[pa.Array], _Converted]) -> Callable[[pa.Array], _Converted]:
    """Run ``convert`` once per distinct value: dates, hours and statuses repeat, and the
    regex/strptime kernels cost per value (1M dates: ~4 s direct, ~0.1 s this way)."""

    def run(raw: pa.Array) -> _Converted:
        encoded = pc.dictionary_encode(raw)
        done = convert(encoded.dictionary)
        invalid = None if done.invalid is None else pc.take(done.invalid, encoded.indices)
        return _Converted(pc.take(done.values, encoded.indices), invalid, done.expected)

    return run


_CONVERTERS: Final[dict[str, Callable[[pa.Array], _Converted]]] = {
    "id": _as_id,
    "text": _as_text,
    "int": _per_distinct(_as_int),
    "date": _per_distinct(_as_date),
    "hour": _per_distinct(_as_hour),
}
_TYPES: Final[dict[str, pa.DataType]] = {
    "id": pa.string(),
    "text": pa.string(),
    "int": pa.int64(),
    "date": pa.date32(),
    "hour": pa.time32("s"),
}
_RECEIVED_AT: Final = pa.timestamp("s", tz="Europe/Paris")


def _received_at(date: pa.Array, hour: pa.Array) -> pa.Array:
    """DATE + HOUR, Paris wall time → instant, with the project's DST rule (as
    :func:`smsdrop.naming.to_instant`): a time in the spring gap is the first instant after
    it ("latest"), a repeated autumn time is its first occurrence ("earliest")."""
    local = pc.add(
        pc.cast(date, pa.timestamp("s")),
        pc.cast(pc.cast(pc.cast(hour, pa.int32()), pa.int64()), pa.duration("s")),
    )
    return pc.assume_timezone(
        local, timezone="Europe/Paris", ambiguous="earliest", nonexistent="latest"
    )


# --- record scanning (error path and incremental completeness) -------------------------

# One field, pyarrow's way: a quoted part (doubled quotes inside) then anything up to the
# delimiter, or an unquoted run. Atomic/possessive and run-based: linear, no backtracking.
_FIELD: Final = rb'(?>"(?:[^"]++|"")*+"[^;\r\n]*+|[^";\r\n][^;\r\n]*+)?'
_FIELD_RE: Final = re.compile(_FIELD)
_FIELDS: Final = _FIELD + rb"(?:;" + _FIELD + rb")*+"
#: One record and its line end (or the end of the data).
_RECORD: Final = re.compile(rb"(" + _FIELDS + rb")(?:\r\n|\n|\r|\Z)")
# Complete records only. A lone CR at the very end may be half of a CRLF: not complete yet.
_COMPLETE: Final = re.compile(rb"(?:" + _FIELDS + rb"(?:\r\n|\n|\r(?=[^\n])))*+")
_BLANK: Final = re.compile(rb"[\r\n]*\Z")
#: A whole file: records, the last one with or without its line end.
_WHOLE: Final = re.compile(rb"(?:" + _FIELDS + rb"(?:\r\n|\n|\r))*+(?:" + _FIELDS + rb")?")


def _count_lines(data: bytes, end: int | None = None) -> int:
    """Line breaks in ``data[:end]``: CRLF, LF and lone CR each count once (no copy)."""
    end = len(data) if end is None else end
    return data.count(b"\n", 0, end) + data.count(b"\r", 0, end) - data.count(b"\r\n", 0, end)


def _complete_prefix(data: bytes) -> int:
    """Bytes of ``data`` made of complete records (see :data:`_COMPLETE`)."""
    if b'"' not in data:  # no quotes: every CR/LF ends a record, no tokenising needed
        body = data[:-1] if data.endswith(b"\r") else data
        return max(body.rfind(b"\n"), body.rfind(b"\r")) + 1
    m = _COMPLETE.match(data)
    return m.end() if m else 0


def _split_fields(data: bytes, pos: int) -> list[tuple[int, bytes]]:
    """(offset, raw bytes) of each field of the record at ``pos``, as far as it tokenises."""
    fields: list[tuple[int, bytes]] = []
    while True:
        m = _FIELD_RE.match(data, pos)
        assert m is not None  # the field pattern can match empty
        fields.append((pos, m.group()))
        pos = m.end()
        if data[pos : pos + 1] != b";":
            return fields
        pos += 1


class _Record(NamedTuple):
    line: int  # physical line (from 1, relative to the buffer) where the record starts
    start: int
    body: bytes  # the record without its line end
    broken: bool = False  # an opening quote never closed: the record does not tokenise

    def count(self) -> int:
        """Number of fields (quick when there is no quote to honour)."""
        if b'"' not in self.body:
            return self.body.count(b";") + 1
        return len(self.fields())

    def fields(self) -> list[tuple[int, bytes]]:
        """(offset in body, raw bytes) of each field, as far as the record tokenises."""
        return _split_fields(self.body, 0)


def _scan(data: bytes, start: int) -> Iterator[_Record]:
    """Records of ``data`` from ``start`` as pyarrow sees them, blank lines skipped.

    Error path only: this is the per-record Python loop good files never pay for. Lines
    without a quote are records as they stand (``splitlines`` knows CRLF, LF and CR, like
    pyarrow); only a line with a quote needs the tokeniser, which may run over several lines.
    """
    pos, line = start, 1 + _count_lines(data, start)
    lines = data[start:].splitlines(keepends=True)
    i = 0
    while i < len(lines):
        raw = lines[i]
        if b'"' not in raw:
            body = raw.rstrip(b"\r\n")
            if body:  # pyarrow skips empty lines
                yield _Record(line, pos, body)
            pos, line, i = pos + len(raw), line + (len(body) < len(raw)), i + 1
            continue
        m = _RECORD.match(data, pos)
        if m is None:  # no record can start here: an opening quote never closed
            yield _Record(line, pos, data[pos:], broken=True)
            return
        if m.group(1):
            yield _Record(line, pos, m.group(1))
        while i < len(lines) and pos < m.end():  # a record ends where a line ends
            pos, line, i = pos + len(lines[i]), line + lines[i].endswith((b"\n", b"\r")), i + 1


# --- reading ---------------------------------------------------------------------------


class _Located:
    """Turns buffer positions into the caller's file, line and byte offset."""

    def __init__(self, source: str, first_line: int | None, offset: int, shift: int) -> None:
        self.source, self.first_line, self.offset, self.shift = source, first_line, offset, shift

    def error(self, message: str, rec_line: int, pos: int, field: str | None) -> InputError:
        line = None if self.first_line is None else self.first_line + rec_line - 1 - self.shift
        if line is None:
            message = f"{message} (byte offset {self.offset + pos - self.shift})"
        return InputError(message, file=self.source, line=line, field=field)


def _field_name(fields: Sequence[Field], rec: _Record, pos: int) -> str:
    """The provider name of the field of ``rec`` holding byte ``pos`` (in ``rec.body``)."""
    index = sum(1 for start, _ in rec.fields()[1:] if start <= pos)
    return fields[min(index, len(fields) - 1)].provider


def _diagnose(
    buf: bytes, start: int, fields: Sequence[Field], where: _Located, cause: Exception
) -> InputError:
    """Find the first bad record after pyarrow refused ``buf``; say where and why."""
    bad_utf8: int | None = None
    try:
        buf[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_utf8 = start + exc.start
    for rec in _scan(buf, start):
        if bad_utf8 is not None and bad_utf8 < rec.start:
            break
        if rec.broken:
            field = _field_name(fields, rec, len(rec.body))
            return where.error("unterminated quoted field", rec.line, rec.start, field)
        if bad_utf8 is not None and bad_utf8 < rec.start + len(rec.body):
            field = _field_name(fields, rec, bad_utf8 - rec.start)
            return where.error("invalid UTF-8", rec.line, rec.start, field)
        if (found := rec.count()) != len(fields):
            names = ";".join(f.provider for f in fields)
            field = fields[found].provider if found < len(fields) else "record"
            message = f"expected {len(fields)} fields {names}, found {found}"
            return where.error(message, rec.line, rec.start, field)
    # pyarrow's own message quotes the row: not repeated here (it may hold a number).
    return InputError(f"unreadable CSV ({type(cause).__name__})", file=where.source)


def _read_strings(
    buf: bytes, start: int, fields: Sequence[Field], where: _Located, *, diagnose: bool = True
) -> pa.Table:
    """pyarrow's parse of ``buf`` (not empty), every column as text. A refused ``buf`` raises
    the located :class:`InputError` (``diagnose``: a scan) or a bare ValueError (faster)."""
    names = [f.name for f in fields]
    try:
        table = pcsv.read_csv(
            pa.py_buffer(buf),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=True),
            parse_options=pcsv.ParseOptions(
                delimiter=";",
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=True,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if not diagnose:
            raise ValueError("not readable as a whole") from None
        raise _diagnose(buf, start, fields, where, exc) from None
    # pyarrow takes an unterminated quoted field at the very end as a value (line ends and
    # all); a truncated report is not one. Cheap signs (odd quote count, a last value ending
    # in a line end) send the file to the exact check.
    if _suspect_tail(buf, table) and _WHOLE.fullmatch(buf, start) is None:
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


def _empty(fields: Sequence[Field], with_received_at: bool) -> pd.DataFrame:
    arrays = {f.name: pa.array([], _TYPES[f.kind]) for f in fields}
    if with_received_at:
        arrays["received_at"] = pa.array([], _RECEIVED_AT)
    return pa.table(arrays).to_pandas(types_mapper=pd.ArrowDtype)


def _parse(
    data: bytes,
    source: str,
    fields: Sequence[Field],
    *,
    with_received_at: bool,
    first_line: int | None = 1,
    offset: int = 0,
) -> pd.DataFrame:
    at_file_start = offset == 0
    shift = 0
    buf = data
    if not at_file_start and data.startswith(BOM):
        # pyarrow drops a BOM at the start of any buffer; mid-file it is data (U+FEFF):
        # a leading blank line (ignored) keeps it where it belongs.
        buf, shift = b"\n" + data, 1
    start = len(BOM) if at_file_start and buf.startswith(BOM) else 0
    if _BLANK.match(buf, start):  # nothing, or blank lines only: no record
        return _empty(fields, with_received_at)
    where = _Located(source, first_line, offset, shift)
    table = _read_strings(buf, start, fields, where)
    columns, refused = _convert(table, fields)
    for f, converted in refused:
        assert converted.invalid is not None
        row = pc.index(converted.invalid, True).as_py()
        raw = table.column(f.name)[row].as_py()
        rec = next(itertools.islice(_scan(buf, start), row, None))
        message = f"expected {converted.expected}, found {shown(raw)}"
        raise where.error(message, rec.line, rec.start, f.provider)
    return _frame(columns, with_received_at)


def _convert(
    table: pa.Table, fields: Sequence[Field]
) -> tuple[dict[str, pa.Array], list[tuple[Field, _Converted]]]:
    """Typed columns of a text table, and the fields (in order) with refused values."""
    columns: dict[str, pa.Array] = {}
    refused: list[tuple[Field, _Converted]] = []
    for f in fields:
        converted = _CONVERTERS[f.kind](table.column(f.name).combine_chunks())
        if converted.invalid is not None and pc.any(converted.invalid).as_py():
            refused.append((f, converted))
        columns[f.name] = converted.values
    return columns, refused


def _frame(columns: dict[str, pa.Array], with_received_at: bool) -> pd.DataFrame:
    if with_received_at:
        columns = {**columns, "received_at": _received_at(columns["date"], columns["hour"])}
    return pa.table(columns).to_pandas(types_mapper=pd.ArrowDtype)


def parse_ack(data: bytes, source: str) -> pd.DataFrame:
    """An ACK file (campaign stats) → frame with :data:`ACK_COLUMNS`; idstatus is int64."""
    return _parse(data, source, ACK_FIELDS, with_received_at=False)


def parse_ack_tolerant(data: bytes, source: str) -> Chunk:
    """A whole ACK file, every record loaded or set aside (``Chunk.quarantined``), never an
    error on the content: the rules of ``parse_replies_from(..., quarantine=True)``."""
    return _tolerant(data, source, 0, 1, False, True, ACK_FIELDS)


def parse_replies(data: bytes, source: str) -> pd.DataFrame:
    """A whole STOP or SMSMO file → frame with :data:`REPLY_COLUMNS`.

    For a file the provider is still appending to, use :func:`parse_replies_from`: a whole
    read can catch the last record half written.
    """
    return _parse(data, source, REPLY_FIELDS, with_received_at=True)


@dataclass(frozen=True)
class Quarantined:
    """A report record set aside instead of loaded: where it is and why.

    ``offset`` and ``length`` are the record's bytes in the file (its line end included);
    ``line`` is its physical line (from 1) when the caller tracks lines, else None;
    ``field`` the provider's field name (``record`` for the record as a whole); ``reason``
    says what is wrong with values masked (:func:`shown`); ``raw`` is the record's text with
    phone numbers masked (:func:`mask_raw`): never log it.
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
    """Rows parsed from a growing reply file and where the next read starts.

    ``lines`` is the number of line breaks consumed, so a caller that tracks line numbers
    passes ``first_line + lines`` next time. With ``quarantine=True``, ``quarantined`` holds
    the records set aside (in file order) and ``cleaned`` the NUL and invalid UTF-8 bytes
    replaced by ``?``; the records of ``frame`` and of ``quarantined`` together are every
    record of the bytes consumed.
    """

    frame: pd.DataFrame
    next_offset: int
    lines: int = 0
    quarantined: tuple[Quarantined, ...] = ()
    cleaned: int = 0


def parse_replies_from(
    data: bytes,
    source: str,
    offset: int,
    *,
    first_line: int | None = None,
    quarantine: bool = False,
    require_msisdn: bool = False,
    final: bool = False,
) -> Chunk:
    """Parse the complete records of ``data``, the bytes of a reply file from ``offset`` on.

    A record is complete once its line end is read outside quotes (a lone CR waits for the
    next byte: it may be half of a CRLF). The partial tail — even inside a quoted message
    or a multi-byte character — is left for the next call: ``next_offset`` is ``offset``
    plus the bytes consumed. Errors carry ``first_line``-based line numbers when given
    (``1`` is assumed at offset 0), else the byte offset.

    ``quarantine=True`` (what the loader uses: the provider's files are not ours to fix)
    never raises on the content: records that do not parse are returned in
    :attr:`Chunk.quarantined` and the offset moves past them, so one bad record never
    stops the rest (see :func:`_tolerant` for the rules); ``require_msisdn`` also sets
    aside a record whose MSISDN cannot be normalised (a STOP line nobody could be
    suppressed with); ``final`` says ``data`` is the whole rest of the file, so an
    unterminated last record is set aside instead of waited for.
    """
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if first_line is None and offset == 0:
        first_line = 1
    if quarantine:
        return _tolerant(data, source, offset, first_line, require_msisdn, final)
    consumed = _complete_prefix(data)
    frame = _parse(
        data[:consumed],
        source,
        REPLY_FIELDS,
        with_received_at=True,
        first_line=first_line,
        offset=offset,
    )
    return Chunk(frame, offset + consumed, _count_lines(data, consumed))


# --- tolerant reading: quarantine instead of raising ------------------------------------

#: A record longer than this is set aside (an SMS of 255 UCS-2 segments is ~51 KB of UTF-8).
MAX_RECORD_BYTES: Final = 64 * 1024
#: An open quote that has not closed after this many line breaks (or MAX_RECORD_BYTES) is
#: a stray quote, not a message the provider is still writing: its first line is set aside.
MAX_OPEN_LINES: Final = 100
#: A region that is not good as a whole is halved down to this size before it is read
#: record by record (the Python path), so one bad record costs little in a big file.
SPLIT_BYTES: Final = 8 * 1024
#: Characters of a record kept in :attr:`Quarantined.raw`.
MAX_RAW_CHARS: Final = 1000
#: What replaces each NUL or invalid UTF-8 byte (one byte for one: offsets do not move).
CLEAN_BYTE: Final = "?"
#: Values shown as they are in messages: short, date/time-like, not a phone number.
_SAFE_VALUE: Final = re.compile(r"[0-9 :/.+\-]{0,12}")
#: Digit runs that may be a phone number (separators allowed inside).
_NUMBER_RUN: Final = re.compile(r"\+?[0-9](?:[ .\-]?[0-9]){5,}")
_NUMBERISH: Final = re.compile(r"[0-9 .()+/\-]{0,40}")
_DATE_OR_HOUR: Final = re.compile(
    r"[0-9]{6}|[0-9]{8}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}/[0-9]{2}/[0-9]{4}"
)


def _clean_handler(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    return CLEAN_BYTE * (error.end - error.start), error.end


codecs.register_error("smsdrop-clean", _clean_handler)


def clean_bytes(data: bytes) -> tuple[bytes, int]:
    """``data`` with each NUL and each byte of an invalid UTF-8 sequence replaced by ``?``
    (PostgreSQL refuses both in text, DuckDB the latter), and how many were replaced.

    One byte for one, so offsets and line structure stay as they are (none of these bytes
    is ``;``, ``"``, CR or LF).
    """
    if b"\0" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return data, 0
    cleaned = data.decode("utf-8", errors="smsdrop-clean").replace("\0", CLEAN_BYTE).encode()
    assert len(cleaned) == len(data)
    before, after = np.frombuffer(data, np.uint8), np.frombuffer(cleaned, np.uint8)
    return cleaned, int(np.count_nonzero(before != after))


def shown(value: object) -> str:
    """A field value for an error message: as it is when short and date/time-like, else
    only its length (it may be a phone number or a message)."""
    text = "" if value is None else str(value)
    if _SAFE_VALUE.fullmatch(text) and sum(c.isdigit() for c in text) <= 8:
        return repr(text)
    plural = "" if len(text) == 1 else "s"
    return f"a value of {len(text)} character{plural} (not shown)"


def shown_number(value: object) -> str:
    """An MSISDN value for an error message: digits and separators only (a number, badly
    written) are shown masked like the quarantine's raw text (``'+*** * ** ** ** 02'``),
    anything else as :func:`shown` does."""
    text = "" if value is None else str(value)
    if _NUMBERISH.fullmatch(text) and sum(c.isdigit() for c in text) >= 6:
        return repr(_NUMBER_RUN.sub(_mask_run, text))
    return shown(text)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    if _DATE_OR_HOUR.fullmatch(run):
        return run
    digits = sum(c.isdigit() for c in run)
    seen, out = 0, []
    for c in run:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - 2 else "*")
        else:
            out.append(c)
    return "".join(out)


def mask_raw(raw: bytes) -> str:
    """A record's text for the quarantine: every run of 6 or more digits (a phone number,
    written any way) keeps its last two digits only, except a lone DATE or HOUR value;
    cut at :data:`MAX_RAW_CHARS`. ``raw`` must be clean (:func:`clean_bytes`)."""
    text = raw.decode("utf-8", errors="replace")
    if len(text) > MAX_RAW_CHARS:
        text = text[:MAX_RAW_CHARS] + f"… ({len(raw)} bytes)"
    return _NUMBER_RUN.sub(_mask_run, text)


def _eol(buf: bytes, pos: int) -> int:
    """Position after the line end at ``pos`` (CRLF, LF, CR), or ``pos`` when none."""
    if buf.startswith(b"\r\n", pos):
        return pos + 2
    return pos + 1 if buf[pos : pos + 1] in (b"\n", b"\r") else pos


def _first_line_end(buf: bytes, pos: int) -> int:
    """Position after the first line end at or after ``pos`` (the end of ``buf`` if none)."""
    cr, lf = buf.find(b"\r", pos), buf.find(b"\n", pos)
    ends = [i for i in (cr, lf) if i >= 0]
    return _eol(buf, min(ends)) if ends else len(buf)


def _stuck(tail: bytes) -> bool:
    """An incomplete tail that can no longer be a record being written (see MAX_OPEN_LINES)."""
    breaks = _count_lines(tail)
    return breaks > 0 and (breaks > MAX_OPEN_LINES or len(tail) > MAX_RECORD_BYTES)


def _plain_lines(buf: bytes, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(body start, body end, next line start) of each line of ``buf[start:]``, which holds
    no quote: CRLF, LF and a lone CR end a line, as in pyarrow; the last line may have none."""
    a = np.frombuffer(buf, np.uint8)
    lf, cr = a == ord("\n"), a == ord("\r")
    cr_lf = np.zeros(len(a), bool)
    cr_lf[:-1] = cr[:-1] & lf[1:]
    ends = np.flatnonzero(lf | (cr & ~cr_lf))  # the last byte of each line end
    ends = ends[ends >= start]
    after_cr = np.concatenate(([False], cr[:-1]))
    body_ends = ends - (lf[ends] & after_cr[ends])
    nexts = ends + 1
    if not len(nexts) or nexts[-1] < len(a):  # a last line without its line end
        nexts = np.append(nexts, len(a))
        body_ends = np.append(body_ends, len(a))
    starts = np.concatenate(([start], nexts[:-1]))
    return starts, body_ends, nexts


class _Tolerant:
    """One tolerant read: records typed in bulk, the bad ones set aside (error path only)."""

    def __init__(
        self,
        source: str,
        offset: int,
        first_line: int | None,
        require_msisdn: bool,
        fields: Sequence[Field] = REPLY_FIELDS,
        with_received_at: bool = True,
        *,
        buf: bytes = b"",
    ) -> None:
        self.buf = buf  # the whole (clean) data; regions are slices of it
        self._base = 0  # where the region being read starts in buf
        self.source, self.offset, self.first_line = source, offset, first_line
        self.require_msisdn = require_msisdn
        self.fields, self.with_received_at = tuple(fields), with_received_at
        self.tables: list[pa.Table] = []  # typed columns, in file order
        self.quarantined: list[Quarantined] = []
        self._line_mark = (0, 0)  # (position, line breaks before it): see _line
        self._unchecked: list[tuple[int, int, int, int]] = []  # (table, begin, stop, skip)

    # where things are
    def _line(self, pos: int) -> int | None:
        """The physical line of ``pos`` (a line start), counted on from the last one asked
        (set-asides come in file order: one pass over the buffer, not one per record)."""
        if self.first_line is None:
            return None
        at, breaks = self._line_mark if self._line_mark[0] <= pos else (0, 0)
        buf = self.buf
        breaks += (
            buf.count(b"\n", at, pos) + buf.count(b"\r", at, pos) - buf.count(b"\r\n", at, pos)
        )
        self._line_mark = (pos, breaks)
        return self.first_line + breaks

    def set_aside(
        self, buf: bytes, start: int, end: int, field: str, reason: str, base: int | None = None
    ) -> None:
        """Keep ``buf[start:end]`` aside; ``buf`` is the region being read (at ``base``)."""
        body = buf[start:end].rstrip(b"\r\n") if end > start else b""
        at = (self._base if base is None else base) + start
        self.quarantined.append(
            Quarantined(
                self.offset + at,
                end - start,
                self._line(at),
                field,
                reason,
                mask_raw(body),
            )
        )

    def region(self, begin: int, stop: int) -> None:
        """Every record of ``self.buf[begin:stop]`` (whole records) loaded or set aside."""
        view = self.buf[begin:stop]  # a copy of the region only
        self._base, start, at_file_start = begin, 0, self.offset + begin == 0
        if _BLANK.match(view):
            return
        skip = len(BOM) if at_file_start and view.startswith(BOM) else 0
        try:  # the fast path: the whole region is good (pyarrow, vectorised checks)
            table = self._fast(view, start, skip)
        except Exception:  # noqa: BLE001 - anything wrong: the record-by-record path says what
            table = None
        if table is not None:
            if self.require_msisdn:  # checked in finish(): one classify for all such regions
                self._unchecked.append((len(self.tables), begin, stop, skip))
            self.tables.append(table)
            return
        if b'"' not in view:  # no quote: one record per line, vectorised
            mark = len(self.quarantined)
            try:
                self._plain(view, start, skip)
                return
            except Exception:  # noqa: BLE001 - not expected: record by record instead
                del self.quarantined[mark:]
        if len(view) > SPLIT_BYTES:  # a big region: halve it, so good halves stay fast
            cut = _complete_prefix(view[: len(view) // 2])
            if 0 < cut < len(view):
                self.region(begin, begin + cut)
                self.region(begin + cut, stop)
                return
        self._salvage(view, start + skip)

    def _plain(self, view: bytes, start: int, skip: int) -> None:
        """A region without a quote: every line is a record. Field counts and lengths are
        checked per line with numpy, the good lines typed in one pyarrow read; Python only
        touches the lines set aside."""
        starts, ends, nexts = _plain_lines(view, start + skip)
        semis = np.concatenate(([0], np.cumsum(np.frombuffer(view, np.uint8) == ord(";"))))
        counts = semis[ends] - semis[starts] + 1
        present = ends > starts  # pyarrow skips empty lines
        long = (ends - starts) > MAX_RECORD_BYTES
        bad = present & ((counts != len(self.fields)) | long)
        names = ";".join(f.provider for f in self.fields)
        for i in np.flatnonzero(bad).tolist():
            found = int(counts[i])
            if long[i]:
                size = int(ends[i] - starts[i])
                field, reason = "record", f"record of {size} bytes, longer than {MAX_RECORD_BYTES}"
            else:
                field = self.fields[found].provider if found < len(self.fields) else "record"
                reason = f"expected {len(self.fields)} fields {names}, found {found}"
            self.set_aside(view, int(starts[i]), int(nexts[i]), field, reason)
        rows = np.flatnonzero(present & ~bad)
        if not len(rows):
            return
        pieces, at = [], int(starts[0])
        for i in np.flatnonzero(bad).tolist():  # the good stretches between bad lines
            pieces.append(view[at : int(starts[i])])
            at = int(nexts[i])
        pieces.append(view[at:])
        joined = b"\n" + b"".join(pieces)  # a leading blank line: a mid-file BOM is data
        where = _Located(self.source, None, self.offset + start, 0)
        table = _read_strings(joined, 0, self.fields, where, diagnose=False)
        if table.num_rows != len(rows):  # not expected: the caller reads record by record
            raise ValueError(f"{len(rows)} lines read as {table.num_rows} records")
        columns, problems = self._problems(table)
        for j, (field, reason) in problems.items():
            i = int(rows[j])
            self.set_aside(view, int(starts[i]), int(nexts[i]), field, reason)
        keep = np.ones(len(rows), bool)
        keep[list(problems)] = False
        if keep.any():
            self.tables.append(pa.table(columns).filter(pa.array(keep)))

    def _fast(self, view: bytes, start: int, skip: int) -> pa.Table | None:
        piece = view[start:]
        buf = piece if skip or not piece.startswith(BOM) else b"\n" + piece  # mid-file BOM
        where = _Located(self.source, None, self.offset + start, 0)
        table = _read_strings(buf, skip, self.fields, where, diagnose=False)
        if table.num_rows and self._too_long(table):
            return None
        columns, refused = _convert(table, self.fields)
        return None if refused else pa.table(columns)

    def _too_long(self, table: pa.Table) -> bool:
        total = pc.add(pc.binary_length(table.column(0)), len(self.fields) - 1)
        for column in table.columns[1:]:
            total = pc.add(total, pc.binary_length(column))
        return bool(pc.max(total).as_py() > MAX_RECORD_BYTES)

    @staticmethod
    def _numbers_ok(table: pa.Table) -> pa.Array:
        from smsdrop.msisdn import classify

        raw = pc.utf8_trim_whitespace(table.column("msisdn").combine_chunks())
        e164 = classify(pd.Series(pd.array(raw, dtype="string[pyarrow]")))["e164"]
        return pa.array(e164.notna().to_numpy())

    def _structure(self, rec: _Record) -> tuple[str, str] | None:
        """(field, reason) when the record cannot be a reply line at all."""
        if rec.broken:
            return _field_name(self.fields, rec, len(rec.body)), "unterminated quoted field"
        if len(rec.body) > MAX_RECORD_BYTES:
            return "record", f"record of {len(rec.body)} bytes, longer than {MAX_RECORD_BYTES}"
        if (found := rec.count()) != len(self.fields):
            names = ";".join(f.provider for f in self.fields)
            field = self.fields[found].provider if found < len(self.fields) else "record"
            return field, f"expected {len(self.fields)} fields {names}, found {found}"
        return None

    def _salvage(self, buf: bytes, pos: int) -> None:
        """Record by record: structure in Python, values in bulk. A bad record spanning
        several lines (an opening quote that swallowed what follows) is set aside by its
        first line only, and the lines after it are read again: a stray quote costs one
        line, never the records it would have swallowed."""
        while True:
            events: list[tuple[_Record, tuple[str, str] | None]] = []
            for rec in _scan(buf, pos):
                problem = self._structure(rec)
                events.append((rec, problem))
                if problem is not None and _multiline(rec):
                    break
            good = [i for i, (_, problem) in enumerate(events) if problem is None]
            table, problems = self._type([events[i][0].body for i in good])
            for i, problem in problems.items():
                events[good[i]] = (events[good[i]][0], problem)
            cut = next(
                (k for k, (rec, p) in enumerate(events) if p is not None and _multiline(rec)),
                len(events),
            )
            keep = [j for j, i in enumerate(good) if i < cut and j not in problems]
            if keep:
                self.tables.append(table.take(pa.array(keep, pa.int64())))
            for rec, problem in events[:cut]:
                if problem is not None:
                    end = _eol(buf, rec.start + len(rec.body))
                    self.set_aside(buf, rec.start, end, *problem)
            if cut == len(events):
                return
            rec, (field, reason) = events[cut]
            pos = _first_line_end(buf, rec.start)
            lines = _count_lines(rec.body) + 1
            self.set_aside(
                buf,
                rec.start,
                pos,
                field,
                f"{reason} (a record over {lines} lines: its first line is set aside,"
                " the lines after it are read again)",
            )

    def _type(self, bodies: list[bytes]) -> tuple[pa.Table, dict[int, tuple[str, str]]]:
        """Typed columns of structurally good records, and (field, reason) of those whose
        values are refused, by index."""
        if not bodies:
            return pa.table({f.name: pa.array([], _TYPES[f.kind]) for f in self.fields}), {}
        # A leading blank line keeps a BOM at the start of the first record as data.
        joined = b"\n" + b"\n".join(bodies) + b"\n"
        where = _Located(self.source, None, self.offset, 0)
        try:
            table = _read_strings(joined, 0, self.fields, where, diagnose=False)
            if table.num_rows != len(bodies):  # not expected: each body is one record
                raise ValueError(f"{len(bodies)} records re-read as {table.num_rows}")
            columns, problems = self._problems(table)
        except Exception:  # noqa: BLE001 - never raise on content: one record at a time
            if len(bodies) == 1:
                return self._type([])[0], {0: ("record", "unreadable record")}
            return self._one_by_one(bodies)
        return pa.table(columns), problems

    def _problems(self, table: pa.Table) -> tuple[dict[str, pa.Array], dict[int, tuple[str, str]]]:
        """Typed columns of a text table and, by row, the first refused field and why."""
        columns, refused = _convert(table, self.fields)
        problems: dict[int, tuple[str, str]] = {}
        checks: list[tuple[Field, pa.Array, Callable[[object], str]]] = []
        if self.require_msisdn:
            checks.append(
                (
                    next(f for f in self.fields if f.name == "msisdn"),
                    pc.invert(self._numbers_ok(table)),
                    lambda raw: (
                        "not a phone number that can be normalised, found " + shown_number(raw)
                    ),
                )
            )
        for f, converted in refused:
            expected = converted.expected
            checks.append(
                (f, converted.invalid, lambda raw, e=expected: f"expected {e}, found {shown(raw)}")
            )
        order = {f.name: i for i, f in enumerate(self.fields)}
        for f, invalid, describe in sorted(checks, key=lambda c: order[c[0].name]):
            for row in np.flatnonzero(np.asarray(invalid.to_numpy(zero_copy_only=False))):
                if int(row) not in problems:
                    raw = table.column(f.name)[int(row)].as_py()
                    problems[int(row)] = (f.provider, describe(raw))
        return columns, problems

    def _one_by_one(self, bodies: list[bytes]) -> tuple[pa.Table, dict[int, tuple[str, str]]]:
        tables, problems = [], {}
        for i, body in enumerate(bodies):
            table, found = self._type([body])
            if found:
                problems[i] = found[0]
                table = pa.table(
                    {f.name: pa.nulls(1, _TYPES[f.kind]) for f in self.fields}
                )  # a placeholder row: its index is in problems, never taken
            tables.append(table)
        return pa.concat_tables(tables), problems

    def finish(self) -> None:
        """The MSISDN check (``require_msisdn``) of the regions read by the fast path, in
        one classify call; the records it refuses are located by scanning their region."""
        if not self._unchecked:
            return
        field = next(f for f in self.fields if f.name == "msisdn")
        parts = [self.tables[i].column("msisdn") for i, *_ in self._unchecked]
        ok = self._numbers_ok(pa.table({"msisdn": pa.chunked_array(parts)}))
        ok_rows = np.asarray(ok.to_numpy(zero_copy_only=False))
        at = 0
        for index, begin, stop, skip in self._unchecked:
            table = self.tables[index]
            bad = np.flatnonzero(~ok_rows[at : at + table.num_rows])
            at += table.num_rows
            if not len(bad):
                continue
            view, self._base = self.buf[begin:stop], begin
            records = list(_scan(view, skip))  # pyarrow's records, in the same order
            numbers = table.column("msisdn")
            for row in bad.tolist():
                rec = records[row]
                reason = "not a phone number that can be normalised, found " + shown_number(
                    numbers[row].as_py()
                )
                end = _eol(view, rec.start + len(rec.body))
                self.set_aside(view, rec.start, end, field.provider, reason)
            keep = np.ones(table.num_rows, bool)
            keep[bad] = False
            self.tables[index] = table.filter(pa.array(keep))
        self._unchecked.clear()

    def frame(self) -> pd.DataFrame:
        if not self.tables:
            return _empty(self.fields, self.with_received_at)
        table = pa.concat_tables(self.tables)
        columns = {name: table.column(name).combine_chunks() for name in table.column_names}
        return _frame(columns, self.with_received_at)


def _multiline(rec: _Record) -> bool:
    return b"\n" in rec.body or b"\r" in rec.body


def _tolerant(
    data: bytes,
    source: str,
    offset: int,
    first_line: int | None,
    require_msisdn: bool,
    final: bool,
    fields: Sequence[Field] = REPLY_FIELDS,
) -> Chunk:
    """:func:`parse_replies_from` with ``quarantine=True``.

    The rules: NUL and invalid UTF-8 bytes are replaced by ``?`` first (:func:`clean_bytes`:
    a warehouse refuses them; a STOP with a stray byte is still a STOP); a record that
    does not tokenise (an unterminated quote), has the wrong number of fields, is longer
    than :data:`MAX_RECORD_BYTES` or has a refused value (DATE, HOUR; MSISDN with
    ``require_msisdn``) is set aside; a bad record spanning several lines is set aside by
    its first line and the rest read again; an incomplete tail that has run over
    :data:`MAX_OPEN_LINES` line breaks or :data:`MAX_RECORD_BYTES` is a stray quote: its
    first line is set aside and the reading goes on after it. Good files take the
    vectorised path only.
    """
    clean, _ = clean_bytes(data)
    reader = _Tolerant(
        source,
        offset,
        first_line,
        require_msisdn,
        fields,
        with_received_at=fields is REPLY_FIELDS,
        buf=clean,
    )
    pos = 0
    while True:
        end = len(clean) if final else pos + _complete_prefix(clean[pos:])
        reader.region(pos, end)
        if final or not _stuck(clean[end:]):
            break
        pos = _first_line_end(clean, end)
        first = _Record(0, end, clean[end:pos].rstrip(b"\r\n"))
        reader.set_aside(
            clean,
            end,
            pos,
            _field_name(fields, first, len(first.body)),
            f"unterminated quoted field (still open after {MAX_OPEN_LINES} lines or"
            f" {MAX_RECORD_BYTES} bytes: its first line is set aside)",
            base=0,
        )
    cleaned = (
        int(
            np.count_nonzero(
                np.frombuffer(data[:end], np.uint8) != np.frombuffer(clean[:end], np.uint8)
            )
        )
        if clean is not data
        else 0
    )
    reader.finish()
    frame = reader.frame()
    quarantined = tuple(sorted(reader.quarantined, key=lambda q: q.offset))
    return Chunk(frame, offset + end, _count_lines(clean, end), quarantined, cleaned)


# --- writing (for the sandbox that plays the provider) ---------------------------------

_NEEDS_QUOTES: Final = re.compile(r'[;"\r\n]')


def format_record(values: Sequence[str]) -> bytes:
    """One report record, RFC 4180: fields joined by ``;``, quoted (quotes doubled) only
    when they hold ``;``, ``"``, CR or LF, ended by CRLF; UTF-8."""
    out = []
    for v in values:
        out.append('"' + v.replace('"', '""') + '"' if _NEEDS_QUOTES.search(v) else v)
    return ";".join(out).encode("utf-8") + NEWLINE


def format_reply_date(dt: datetime) -> str:
    """DATE as our sandbox writes it: Paris local date, ``YYYYMMDD`` (like file names)."""
    return require_aware(dt, "dt").astimezone(PARIS).strftime(REPLY_DATE_FORMAT)


def format_reply_hour(dt: datetime) -> str:
    """HOUR as our sandbox writes it: Paris local time, ``HHMMSS`` (file names' HHMM plus
    seconds, so a STOP can be ordered against a send in the same minute)."""
    return require_aware(dt, "dt").astimezone(PARIS).strftime(REPLY_HOUR_FORMAT)


def write_ack_line(
    idremote: str,
    msisdn: str,
    oadc: str,
    msg: str,
    idstatus: int,
    status: str,
    ackoperator: str,
) -> bytes:
    """One ACK record, as :func:`parse_ack` reads it back."""
    return format_record([idremote, msisdn, oadc, msg, str(idstatus), status, ackoperator])


def write_reply_line(msisdn: str, at: datetime, message: str, idremote: str) -> bytes:
    """One STOP/SMSMO record received at ``at`` (aware), as :func:`parse_replies` reads it."""
    return format_record([msisdn, format_reply_date(at), format_reply_hour(at), message, idremote])
