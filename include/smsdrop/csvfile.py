"""SEND files: the provider's RFC 4180 CSV, written fast and read back strictly.

A SEND file is header-less, `;`-separated, four fields per record (IDREMOTE;MSISDN;OADC;MSG),
UTF-8 by default, CRLF line ends (RFC 4180). A field is quoted only when it holds `;`, `"`,
CR or LF, quotes doubled inside. pyarrow's CSV writer cannot do "quote only when needed"
(its default quotes every string, and ``quoting_style="none"`` raises on such values), so
records are assembled with pyarrow compute kernels and the bytes taken straight from the
resulting string buffer: byte-exact RFC 4180 at the speed of the CSV writer.

Files are written under a temporary name and moved into place once complete, so a reader
(or an uploader) never sees half a file.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from smsdrop.dropbox import MAX_RECORDS
from smsdrop.errors import InputError
from smsdrop.naming import MAX_CHUNKS

#: Field order of a SEND record, as the spec gives it.
SEND_FIELDS: tuple[str, ...] = ("idremote", "msisdn", "oadc", "msg")
#: Files one campaign may be split into: the chunked campaign ids' limit.
MAX_FILES = MAX_CHUNKS
LINE_ENDS: dict[str, str] = {"crlf": "\r\n", "lf": "\n"}

# --- the provider's CSV dialect: SEND files and reports alike --------------------------

#: RFC 4180 with ``;``: fields split by DELIMITER, a field quoted with QUOTE (doubled
#: inside) only when it holds the delimiter, a quote, CR or LF; records written with CRLF
#: ends (CRLF, LF or a lone CR are read).
DELIMITER: Final = ";"
QUOTE: Final = '"'
CRLF: Final = LINE_ENDS["crlf"]
_NEEDS_QUOTES: Final = r'[;"\r\n]'
_NEEDS_QUOTES_RE: Final = re.compile(_NEEDS_QUOTES)


def parse_options(
    *,
    ignore_empty_lines: bool,
    invalid_row_handler: Callable[[pacsv.InvalidRow], str] | None = None,
) -> pacsv.ParseOptions:
    """The dialect as pyarrow's reader takes it: doubled quotes, no escape character,
    line ends inside quoted values. Reports skip blank lines; a SEND file counts them."""
    return pacsv.ParseOptions(
        delimiter=DELIMITER,
        quote_char=QUOTE,
        double_quote=True,
        escape_char=False,
        newlines_in_values=True,
        ignore_empty_lines=ignore_empty_lines,
        invalid_row_handler=invalid_row_handler,
    )


def read_options(
    column_names: Sequence[str], *, use_threads: bool, block_size: int | None = None
) -> pacsv.ReadOptions:
    """No header: the columns are named by the caller, in the spec's order."""
    options = pacsv.ReadOptions(column_names=list(column_names), use_threads=use_threads)
    if block_size is not None:
        options.block_size = block_size
    return options


def text_options(column_names: Sequence[str], type_: pa.DataType) -> pacsv.ConvertOptions:
    """Every column read as text and never null: typing is the caller's (an empty field is
    an empty string, quoted or not)."""
    return pacsv.ConvertOptions(
        column_types=dict.fromkeys(column_names, type_),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


def format_record(values: Sequence[str], line_end: str = CRLF) -> bytes:
    """One record in the dialect, UTF-8, one value at a time (the sandbox's report lines;
    whole columns go through :func:`encode_records`)."""
    out = []
    for v in values:
        out.append(QUOTE + v.replace(QUOTE, QUOTE * 2) + QUOTE if _NEEDS_QUOTES_RE.search(v) else v)
    return (DELIMITER.join(out) + line_end).encode("utf-8")


@dataclass(frozen=True)
class FileManifest:
    """What was written: enough to verify an upload and to record the file in the warehouse."""

    name: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def quote_field(values: pa.Array) -> pa.Array:
    """Quote, RFC 4180 style, only the values that hold `;`, `"`, CR or LF."""
    values = values.cast(pa.large_string())
    needs = pc.match_substring_regex(values, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return values
    doubled = pc.replace_substring(values, QUOTE, QUOTE * 2)
    quote, empty = pa.scalar(QUOTE, pa.large_string()), pa.scalar("", pa.large_string())
    quoted = pc.binary_join_element_wise(quote, doubled, quote, empty)
    return pc.if_else(needs, quoted, values)


def encode_records(table: pa.Table, line_end: str = "\r\n") -> bytes:
    """The bytes of the SEND records for ``table`` (columns idremote, msisdn, oadc, msg).

    Every record ends with ``line_end``, the last one included. When no value needs
    quoting (the usual case) pyarrow's CSV writer does the work; otherwise the fields that
    hold special characters are quoted and the records joined with compute kernels.
    Nulls are refused: a SEND record always has its four fields.
    """
    return bytes(_record_buffer(table, line_end))


def _record_buffer(table: pa.Table, line_end: str) -> pa.Buffer | bytes:
    """:func:`encode_records` without the final copy: the writer hands the buffer as it is
    to the file and the checksum (both take any bytes-like object)."""
    if table.num_rows == 0:
        return b""
    columns = [table.column(name).combine_chunks().cast(pa.large_string()) for name in SEND_FIELDS]
    for name, column in zip(SEND_FIELDS, columns, strict=True):
        if column.null_count:
            raise ValueError(f"SEND field {name} has {column.null_count} null values")
    special = [_holds_special(column) for column in columns]
    if not any(special):
        sink = pa.BufferOutputStream()
        options = pacsv.WriteOptions(
            include_header=False,
            delimiter=DELIMITER,
            quoting_style="none",
            eol=line_end,
            batch_size=1 << 16,
        )
        pacsv.write_csv(pa.table(dict(zip(SEND_FIELDS, columns, strict=True))), sink, options)
        return sink.getvalue()
    columns = [quote_field(c) if s else c for c, s in zip(columns, special, strict=True)]
    empty = pa.scalar("", pa.large_string())
    columns[-1] = pc.binary_join_element_wise(
        columns[-1], pa.scalar(line_end, pa.large_string()), empty
    )
    records = pc.binary_join_element_wise(*columns, pa.scalar(DELIMITER, pa.large_string()))
    return _string_bytes(records)


def _string_bytes(values: pa.Array) -> pa.Buffer:
    """The concatenated UTF-8 bytes of a large_string array's values (a view, no copy)."""
    offsets, data = values.buffers()[1:3]
    if data is None:  # no value holds a byte
        return pa.py_buffer(b"")
    ends = np.frombuffer(offsets, dtype=np.int64)
    start, stop = ends[values.offset], ends[values.offset + len(values)]
    return data.slice(int(start), int(stop - start))


#: The bytes that make a field need quoting (RFC 4180).
_SPECIAL_BYTES = tuple(b';"\r\n')


def _holds_special(values: pa.Array) -> bool:
    """Whether any value holds a character that needs quoting: one vectorised byte
    comparison per character over the column's UTF-8 buffer (no copy, no regex)."""
    if not len(values):
        return False
    data = np.frombuffer(_string_bytes(values), dtype=np.uint8)
    return any(bool((data == char).any()) for char in _SPECIAL_BYTES)


class SendFileWriter:
    """Streams validated rows into SEND files of at most ``cap`` records each.

    Rows arrive in batches in source order. Parts are written under temporary names in
    ``out_dir``; :meth:`finish` gives them their final names (which depend on how many
    files the campaign needs) and returns one manifest per file.

    A batch is encoded, written and hashed on one background thread while the caller
    prepares the next one (pyarrow's CSV writer, file writes and sha256 release the GIL:
    on two cores ~0.3 s of a million-row ``prepare``). One batch at most is in flight, in
    order; its error is raised by the next :meth:`write` or by :meth:`finish`.
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        cap: int = MAX_RECORDS,
        encoding: str = "utf-8",
        line_end: str = "crlf",
    ) -> None:
        if not 1 <= cap <= MAX_RECORDS:
            raise InputError(f"records per file must be 1..{MAX_RECORDS}, not {cap}")
        if line_end not in LINE_ENDS:
            raise InputError(f"line end must be one of {sorted(LINE_ENDS)}, not {line_end!r}")
        check_encoding(encoding)
        self.out_dir, self.cap, self.encoding = Path(out_dir), cap, encoding
        self.line_end = LINE_ENDS[line_end]
        self._parts: list[_Part] = []
        self._reported = 0  # parts already given by completed() or close_parts()
        self._worker: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def write(self, table: pa.Table) -> None:
        """Append the rows of ``table`` (columns idremote, msisdn, oadc, msg)."""
        start = 0
        while start < table.num_rows:
            if not self._parts or self._parts[-1].rows >= self.cap:
                self._open_part()
            part = self._parts[-1]
            take = min(self.cap - part.rows, table.num_rows - start)
            part.rows += take  # counted now: the next slice's part depends on it
            self._wait()
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="send-file-writer")
            self._pending = self._worker.submit(self._write, part, table.slice(start, take))
            start += take

    def completed(self) -> list[Path]:
        """The parts filled since the last call, closed: whole, as they will be sent (the
        last part is not given: its rows may still be in flight). Their names are temporary
        until :meth:`finish`."""
        return self._report(self._parts[self._reported : len(self._parts) - 1])

    def close_parts(self) -> list[Path]:
        """Let the rows in flight land and close every part; the parts not given yet."""
        self._wait()
        return self._report(self._parts[self._reported :])

    def _report(self, parts: list[_Part]) -> list[Path]:
        for part in parts:
            part.close()
        self._reported += len(parts)
        return [part.path for part in parts]

    def _write(self, part: _Part, table: pa.Table) -> None:
        data = _record_buffer(table, self.line_end)
        if not _is_utf8(self.encoding):
            data = _reencode(bytes(data), self.encoding, part.encoder(self.encoding))
        part.write(data)

    def _wait(self) -> None:
        """Let the batch in flight finish; raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _stop(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    def finish(self, name_for: Callable[[int, int], str]) -> list[FileManifest]:
        """Close the parts and move each into place as ``name_for(index, count)`` (index from 0)."""
        try:
            self._wait()
        finally:
            self._stop()
        count = len(self._parts)
        manifests = []
        for index, part in enumerate(self._parts):
            part.close()
            final = self.out_dir / name_for(index, count)
            os.replace(part.path, final)
            manifests.append(FileManifest(final.name, part.rows, part.bytes, part.sha.hexdigest()))
        self._parts, self._reported = [], 0
        return manifests

    def abort(self) -> None:
        """Remove the parts written so far (they hold personal data)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            wait([pending])  # its error, if any, is moot: the caller has its own to raise
        self._stop()
        for part in self._parts:
            part.close()
            part.path.unlink(missing_ok=True)
        self._parts, self._reported = [], 0

    def _open_part(self) -> None:
        if len(self._parts) >= MAX_FILES:  # the names could not tell them apart
            raise InputError(
                f"more than {MAX_FILES:,} SEND files at {self.cap:,} records per file: "
                "raise the records per file (--max-records)"
            )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f".part-{len(self._parts):05d}.partial"
        self._parts.append(_Part(path))


class _Part:
    """One file being written: its handle, running row/byte counts and checksum."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows, self.bytes = path, 0, 0
        self.sha = hashlib.sha256()
        self._handle = open_private(path)
        self._encoder: codecs.IncrementalEncoder | None = None

    def encoder(self, encoding: str) -> codecs.IncrementalEncoder:
        """One encoder for the whole file: a BOM (``utf-8-sig``, ``utf-16``) is written once."""
        if self._encoder is None:
            self._encoder = codecs.getincrementalencoder(encoding)()
        return self._encoder

    def write(self, data: bytes | pa.Buffer) -> None:
        """Append ``data`` (its rows are counted by the writer, when it takes them)."""
        self._handle.write(data)
        self.sha.update(data)
        self.bytes += len(data)

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for writing, mode 0600 whatever the umask: the files hold personal data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def check_encoding(encoding: str) -> None:
    """Refuse a file encoding Python does not know or that is not a text encoding (rot13)."""
    try:
        ";\r\n".encode(encoding)
    except LookupError:
        raise InputError(
            f"unknown file encoding {encoding!r} (a text encoding, e.g. utf-8, iso-8859-15)"
        ) from None
    except UnicodeError:
        raise InputError(f"{encoding!r} cannot write a SEND file's ';' and line ends") from None


def _reencode(data: bytes, encoding: str, encoder: codecs.IncrementalEncoder) -> bytes:
    """Re-encode UTF-8 record bytes; name the first record the target charset cannot hold."""
    text = data.decode("utf-8")
    try:
        return encoder.encode(text)
    except UnicodeEncodeError as error:
        line = text.count("\n", 0, error.start) + 1
        raise InputError(
            f"character {text[error.start]!r} cannot be written in {encoding}",
            line=line,
            field="MSG",
        ) from None
    except UnicodeError as error:  # codecs such as idna refuse whole texts
        raise InputError(f"the text cannot be written in {encoding} ({error})") from None


@dataclass(frozen=True)
class Malformed:
    """A record without exactly four fields."""

    record: int
    line: int
    fields: int


@dataclass(frozen=True)
class ParsedRecords:
    """A SEND file read back: its well-formed records and the malformed ones."""

    table: pa.Table  # idremote, msisdn, oadc, msg, record (from 1), line (from 1)
    malformed: list[Malformed]


def read_records(
    data: bytes, source: str, *, encoding: str = "utf-8", strict: bool = False
) -> ParsedRecords:
    """Parse SEND file bytes strictly: RFC 4180 with `;`, no header, four fields per record.

    Records with another number of fields are collected rather than raised, so a check
    reports every problem at once. A decoding error is raised with its line. ``strict``
    (``smsdrop check``, the sandbox's intake) also refuses, as :class:`CsvStructureError`
    with the line, what pyarrow would read leniently: a byte order mark, an unterminated
    quote, a quote inside an unquoted field, text after a closing quote, a CR alone or
    mixed line ends (:class:`StructureScan`).
    """
    text = _decode(data, source, encoding)
    if not _is_utf8(encoding):
        data = text.encode("utf-8")
    if strict:
        if text.startswith("\ufeff"):
            raise CsvStructureError(
                "starts with a byte order mark (BOM): SEND files have none", file=source, line=1
            )
        fault = structure_fault(data, DELIMITER, strict_line_ends=True)
        if fault is not None:
            raise CsvStructureError(fault.kind, file=source, line=fault.line)
    bad: list[tuple[int, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number or 0, row.actual_columns))
        return "skip"

    if not data:  # pyarrow refuses an empty buffer
        columns = {name: pa.array([], pa.large_string()) for name in SEND_FIELDS}
        empty = pa.array([], pa.int64())
        return ParsedRecords(pa.table({**columns, "record": empty, "line": empty}), [])
    try:
        table = _parse(data, on_invalid)
    except pa.ArrowInvalid as error:
        kind = str(error).splitlines()[0].split(":")[0]  # the kind of fault, not the data
        raise CsvStructureError(f"not a readable RFC 4180 file ({kind})", file=source) from None
    records, lines, bad_lines = _number_records(table, [number for number, _ in bad])
    table = table.append_column("record", pa.array(records)).append_column("line", pa.array(lines))
    malformed = [
        Malformed(number, line, fields)
        for (number, fields), line in zip(bad, bad_lines, strict=True)
    ]
    return ParsedRecords(table, malformed)


class CsvStructureError(InputError):
    """Bytes that are not a CSV at all (an unterminated quote, say), as opposed to bad records."""


def _parse(data: bytes, on_invalid: Callable[[pacsv.InvalidRow], str]) -> pa.Table:
    return pacsv.read_csv(
        pa.py_buffer(data),
        read_options=read_options(SEND_FIELDS, use_threads=False, block_size=1 << 26),
        parse_options=parse_options(ignore_empty_lines=False, invalid_row_handler=on_invalid),
        convert_options=text_options(SEND_FIELDS, pa.large_string()),
    )


def _number_records(
    table: pa.Table, bad_records: list[int]
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Record numbers and first lines (from 1) of the good records, and lines of the bad.

    pyarrow numbers skipped records but not lines; a record's line is 1 plus the line
    breaks of every record before it (a bad record is taken as one physical line).
    """
    n, bad = table.num_rows, np.array(sorted(bad_records), dtype=np.int64)
    good = np.arange(1, n + 1, dtype=np.int64)
    good += np.searchsorted(bad - np.arange(len(bad)), good, side="right")
    breaks = np.zeros(n + len(bad), dtype=np.int64)
    for name in SEND_FIELDS:
        breaks[good - 1] += pc.count_substring(table.column(name), "\n").to_numpy(
            zero_copy_only=False
        )
    lines = 1 + np.arange(len(breaks)) + np.concatenate(([0], np.cumsum(breaks)[:-1]))
    return good, lines[good - 1], [int(lines[b - 1]) for b in bad_records]


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def _decode(data: bytes, source: str, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputError(
            undecodable(data, error.start, encoding), file=source, line=line_at(data, error.start)
        ) from None
    except LookupError:
        raise InputError(f"unknown file encoding {encoding!r}", file=source) from None
    except UnicodeError as error:
        raise InputError(f"cannot be read as {encoding} ({error})", file=source) from None


def line_at(data: bytes, offset: int) -> int:
    """The line (from 1) of byte ``offset``: LF, CRLF and a CR alone each end a line."""
    return (
        1
        + data.count(b"\n", 0, offset)
        + data.count(b"\r", 0, offset)
        - data.count(b"\r\n", 0, offset)
    )


def undecodable(data: bytes, offset: int, encoding: str) -> str:
    """What a user needs to fix bytes that are not ``encoding``: the byte, and a likely cause."""
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        guess = "it looks like UTF-16"
    elif data[offset] >= 0x80:
        guess = "it may be Latin-1 or Windows-1252"
    else:
        guess = "it is not text"
    return f"byte {data[offset]:#04x} is not valid {encoding}: {encoding} expected ({guess})"


# --- RFC 4180 structure ----------------------------------------------------------------

#: How many bytes the structure scan looks at in one go (it cuts after a line end).
SCAN_CHUNK = 1 << 24
_QUOTE, _CR, _LF = 0x22, 0x0D, 0x0A
_LONE_CR = "a line ends with CR alone (only CRLF or LF line ends are read)"


@dataclass(frozen=True)
class StructureFault:
    """The first place where bytes stop being RFC 4180: what, at which byte and line (from 1)."""

    kind: str
    offset: int
    line: int


class StructureScan:
    """The first RFC 4180 fault of a byte stream fed in chunks, with numpy (no per-byte Python).

    pyarrow's reader is lenient where RFC 4180 is not: a quote inside an unquoted field is
    kept, text after a closing quote is glued on, and an unterminated quote swallows the
    rest of the file into one field (rows that would be neither sent nor rejected). The
    rules, on the positions of the quotes: the i-th quote of the file (from 0) opens a
    field when i is even and must then follow a delimiter, a line end, the start of the file
    or a quote (the second half of a doubled ``""``); an odd one closes and must be followed
    by a delimiter, a line end, the end of the file or a quote. An odd count at the end is
    an unterminated quote. With ``strict_line_ends`` (SEND files) a CR outside quotes must
    be followed by LF, and the lines end in CRLF throughout or in LF throughout.

    Chunks must end just after a line end (but the last): :func:`line_chunks` cuts them.
    A chunk without a quote costs a few ``memchr`` and counts.
    """

    def __init__(self, delimiter: str = DELIMITER, *, strict_line_ends: bool = False) -> None:
        self.delimiter = ord(delimiter)
        self.strict = strict_line_ends
        #: Bytes that may touch a quote from outside: the delimiter, CR, LF, a quote.
        self._bounds = np.zeros(256, dtype=bool)
        self._bounds[[self.delimiter, _CR, _LF, _QUOTE]] = True
        self.fault: StructureFault | None = None
        self._offset = 0  # bytes before the current chunk
        self._lines = 0  # line ends before the current chunk
        self._quotes = 0  # quotes before the current chunk
        #: The last opening quote: its chunk, position there, and the chunk's offset and lines.
        self._open: tuple[bytes, int, int, int] = (b"", 0, 0, 0)
        self._style: str | None = None  # "crlf" or "lf": the first line end's

    def feed(self, chunk: bytes) -> None:
        """Scan the next chunk (scanning stops at the first fault)."""
        if self.fault is not None or not chunk:
            return
        quotes, faults = np.empty(0, dtype=np.int64), []
        if b'"' in chunk:
            quotes, fault = self._quote_rules(chunk)
            faults.append(fault)
        if self.strict:  # right up to a quote fault, which is all that matters: the first wins
            faults.append(self._line_end_rules(chunk, quotes))
        found = [fault for fault in faults if fault is not None]
        if found:
            self.fault = min(found, key=lambda fault: fault.offset)
        else:
            self._quotes += len(quotes)
            self._lines += _line_ends(chunk, len(chunk))
            self._offset += len(chunk)

    @property
    def lines(self) -> int:
        """Line ends in the chunks scanned so far."""
        return self._lines

    def finish(self) -> StructureFault | None:
        """The first fault, once the whole stream has been fed."""
        if self.fault is None and self._quotes % 2:
            chunk, position, offset, lines = self._open
            line = lines + _line_ends(chunk, position) + 1
            self.fault = StructureFault("a quoted field is never closed", offset + position, line)
        return self.fault

    def _quote_rules(self, chunk: bytes) -> tuple[np.ndarray, StructureFault | None]:
        raw = np.frombuffer(chunk, dtype=np.uint8)
        at = np.flatnonzero(raw == _QUOTE)
        first = self._quotes % 2  # 0: this chunk's first quote opens a field
        opens, closes = at[first::2], at[1 - first :: 2]
        # A byte before an opening quote, after a closing one: table lookups, no isin.
        before = self._bounds[raw[opens - 1]] | (opens == 0)  # -1 wraps: masked by == 0
        after = self._bounds[raw[np.minimum(closes + 1, len(raw) - 1)]] | (closes == len(raw) - 1)
        bad_open = opens[~before][:1]
        bad_close = closes[~after][:1]
        if len(bad_open) or len(bad_close):
            if len(bad_open) and (not len(bad_close) or bad_open[0] < bad_close[0]):
                kind = "a quote inside an unquoted field (quote the field and double the quote)"
                return at, self._fault(kind, chunk, int(bad_open[0]))
            return at, self._fault("text after a closing quote", chunk, int(bad_close[0]))
        if len(opens):  # its line is counted only if it is never closed (see finish)
            self._open = (chunk, int(opens[-1]), self._offset, self._lines)
        return at, None

    def _line_end_rules(self, chunk: bytes, quotes: np.ndarray) -> StructureFault | None:
        crs, crlfs, lfs = chunk.count(b"\r"), chunk.count(b"\r\n"), chunk.count(b"\n")
        if not len(quotes) and self._quotes % 2 == 0:  # no quoted data: all are line ends
            style = "crlf" if lfs == crlfs else ("lf" if crlfs == 0 else None)
            if crs == crlfs and style is not None and self._style in (None, style):
                if lfs:
                    self._style = style
                return None
        raw = np.frombuffer(chunk, dtype=np.uint8)
        ends = np.flatnonzero((raw == _CR) | (raw == _LF))
        before = self._quotes + np.searchsorted(quotes, ends)
        ends = ends[before % 2 == 0]  # outside quoted fields
        is_cr = raw[ends] == _CR
        after = np.where(ends + 1 < len(raw), raw[np.minimum(ends + 1, len(raw) - 1)], 0)
        lone = ends[is_cr & (after != _LF)]
        lf_ends = ends[~is_cr]
        crlf = (lf_ends > 0) & (raw[np.maximum(lf_ends - 1, 0)] == _CR)
        style = self._style or (None if not len(lf_ends) else ("crlf" if crlf[0] else "lf"))
        off_style = lf_ends[crlf != (style == "crlf")] if len(lf_ends) else lf_ends
        first = min([int(p[0]) for p in (lone, off_style) if len(p)], default=None)
        if first is None:
            self._style = style
            return None
        if len(lone) and first == lone[0]:
            return self._fault(_LONE_CR, chunk, first)
        found = "LF" if style == "crlf" else "CRLF"
        start = first - 1 if found == "CRLF" else first  # the line end starts at its CR
        return self._fault(f"mixes line ends: {found} here, {style.upper()} before", chunk, start)

    def _fault(self, kind: str, chunk: bytes, position: int) -> StructureFault:
        line = self._lines + _line_ends(chunk, position) + 1
        return StructureFault(kind, self._offset + position, line)


def _line_ends(chunk: bytes, stop: int) -> int:
    """Line ends (LF, CRLF, or a CR alone) in ``chunk[:stop]``."""
    lfs = chunk.count(b"\n", 0, stop)
    if b"\r" not in chunk:  # one memchr saves two counts on LF files
        return lfs
    return lfs + chunk.count(b"\r", 0, stop) - chunk.count(b"\r\n", 0, stop)


def line_chunks(read: Callable[[int], bytes], size: int = SCAN_CHUNK) -> Iterator[bytes]:
    """Chunks of about ``size`` bytes from ``read``, each cut just after a line end.

    A cut is after the last LF, else after the last CR that is not the block's last byte
    (so a CRLF is never split). Pieces without a line end wait in a list, joined once: a
    file of one endless line costs its size, not its size squared.
    """
    pending: list[bytes] = []
    while True:
        block = read(size)
        if not block:
            if pending:
                yield b"".join(pending)
            return
        cut = block.rfind(b"\n") + 1 or block.rfind(b"\r", 0, len(block) - 1) + 1
        if cut == 0:
            pending.append(block)
            continue
        pending.append(block[:cut])
        yield b"".join(pending)
        pending = [block[cut:]] if cut < len(block) else []


def structure_fault(
    data: bytes,
    delimiter: str = DELIMITER,
    *,
    strict_line_ends: bool = False,
    chunk_size: int = SCAN_CHUNK,
) -> StructureFault | None:
    """The first RFC 4180 fault of ``data`` (UTF-8 or ASCII-compatible bytes), or None."""
    scan = StructureScan(delimiter, strict_line_ends=strict_line_ends)
    stream = io.BytesIO(data)
    for chunk in line_chunks(stream.read, chunk_size):
        scan.feed(chunk)
        if scan.fault:
            break
    return scan.finish()
