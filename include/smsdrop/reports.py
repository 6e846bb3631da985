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

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple

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
    "REPLY_COLUMNS",
    "REPLY_DATE_FORMAT",
    "REPLY_FIELDS",
    "REPLY_HOUR_FORMAT",
    "Chunk",
    "Field",
    "format_record",
    "format_reply_date",
    "format_reply_hour",
    "parse_ack",
    "parse_replies",
    "parse_replies_from",
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
    return InputError(f"unreadable CSV: {cause}", file=where.source)


def _read_strings(buf: bytes, start: int, fields: Sequence[Field], where: _Located) -> pa.Table:
    """pyarrow's parse of ``buf`` (not empty), every column as text."""
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
        raise _diagnose(buf, start, fields, where, exc) from None
    # pyarrow takes an unterminated quoted field at the very end as a value (line ends and
    # all); a truncated report is not one. Cheap signs (odd quote count, a last value ending
    # in a line end) send the file to the exact check.
    if _suspect_tail(buf, table) and _WHOLE.fullmatch(buf, start) is None:
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
    columns: dict[str, pa.Array] = {}
    for f in fields:
        converted = _CONVERTERS[f.kind](table.column(f.name).combine_chunks())
        if converted.invalid is not None and pc.any(converted.invalid).as_py():
            row = pc.index(converted.invalid, True).as_py()
            raw = table.column(f.name)[row].as_py()
            rec = next(itertools.islice(_scan(buf, start), row, None))
            message = f"expected {converted.expected}, found {raw!r}"
            raise where.error(message, rec.line, rec.start, f.provider)
        columns[f.name] = converted.values
    if with_received_at:
        columns["received_at"] = _received_at(columns["date"], columns["hour"])
    return pa.table(columns).to_pandas(types_mapper=pd.ArrowDtype)


def parse_ack(data: bytes, source: str) -> pd.DataFrame:
    """An ACK file (campaign stats) → frame with :data:`ACK_COLUMNS`; idstatus is int64."""
    return _parse(data, source, ACK_FIELDS, with_received_at=False)


def parse_replies(data: bytes, source: str) -> pd.DataFrame:
    """A whole STOP or SMSMO file → frame with :data:`REPLY_COLUMNS`.

    For a file the provider is still appending to, use :func:`parse_replies_from`: a whole
    read can catch the last record half written.
    """
    return _parse(data, source, REPLY_FIELDS, with_received_at=True)


@dataclass(frozen=True)
class Chunk:
    """Rows parsed from a growing reply file and where the next read starts.

    ``lines`` is the number of line breaks consumed, so a caller that tracks line numbers
    passes ``first_line + lines`` next time.
    """

    frame: pd.DataFrame
    next_offset: int
    lines: int = 0


def parse_replies_from(
    data: bytes, source: str, offset: int, *, first_line: int | None = None
) -> Chunk:
    """Parse the complete records of ``data``, the bytes of a reply file from ``offset`` on.

    A record is complete once its line end is read outside quotes (a lone CR waits for the
    next byte: it may be half of a CRLF). The partial tail — even inside a quoted message
    or a multi-byte character — is left for the next call: ``next_offset`` is ``offset``
    plus the bytes consumed. Errors carry ``first_line``-based line numbers when given
    (``1`` is assumed at offset 0), else the byte offset.
    """
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if first_line is None and offset == 0:
        first_line = 1
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
