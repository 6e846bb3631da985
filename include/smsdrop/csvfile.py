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

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from smsdrop.errors import InputError

#: Field order of a SEND record, as the spec gives it.
SEND_FIELDS: tuple[str, ...] = ("idremote", "msisdn", "oadc", "msg")
#: The provider's limit on records per file.
MAX_RECORDS = 1_000_000
LINE_ENDS: dict[str, str] = {"crlf": "\r\n", "lf": "\n"}
_NEEDS_QUOTES = r'[;"\r\n]'


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
    doubled = pc.replace_substring(values, '"', '""')
    quote, empty = pa.scalar('"', pa.large_string()), pa.scalar("", pa.large_string())
    quoted = pc.binary_join_element_wise(quote, doubled, quote, empty)
    return pc.if_else(needs, quoted, values)


def encode_records(table: pa.Table, line_end: str = "\r\n") -> bytes:
    """The bytes of the SEND records for ``table`` (columns idremote, msisdn, oadc, msg).

    Every record ends with ``line_end``, the last one included. When no value needs
    quoting (the usual case) pyarrow's CSV writer does the work; otherwise the fields that
    hold special characters are quoted and the records joined with compute kernels.
    Nulls are refused: a SEND record always has its four fields.
    """
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
            delimiter=";",
            quoting_style="none",
            eol=line_end,
            batch_size=1 << 16,
        )
        pacsv.write_csv(pa.table(dict(zip(SEND_FIELDS, columns, strict=True))), sink, options)
        return sink.getvalue().to_pybytes()
    columns = [quote_field(c) if s else c for c, s in zip(columns, special, strict=True)]
    empty = pa.scalar("", pa.large_string())
    columns[-1] = pc.binary_join_element_wise(
        columns[-1], pa.scalar(line_end, pa.large_string()), empty
    )
    records = pc.binary_join_element_wise(*columns, pa.scalar(";", pa.large_string()))
    return b"".join(_string_bytes(records))


def _string_bytes(values: pa.Array) -> list[bytes]:
    """The concatenated UTF-8 bytes of a large_string array's values, without a copy per value."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)
    start, stop = offsets[values.offset], offsets[values.offset + len(values)]
    return [values.buffers()[2].slice(int(start), int(stop - start)).to_pybytes()]


def _holds_special(values: pa.Array) -> bool:
    """Whether any value holds a character that needs quoting (a byte scan, no regex)."""
    data = memoryview(_string_bytes(values)[0]) if len(values) else memoryview(b"")
    raw = data.obj
    return any(raw.find(char) >= 0 for char in (b";", b'"', b"\r", b"\n"))


class SendFileWriter:
    """Streams validated rows into SEND files of at most ``cap`` records each.

    Rows arrive in batches in source order. Parts are written under temporary names in
    ``out_dir``; :meth:`finish` gives them their final names (which depend on how many
    files the campaign needs) and returns one manifest per file.
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
        self.out_dir, self.cap, self.encoding = Path(out_dir), cap, encoding
        self.line_end = LINE_ENDS[line_end]
        self._parts: list[_Part] = []

    def write(self, table: pa.Table) -> None:
        """Append the rows of ``table`` (columns idremote, msisdn, oadc, msg)."""
        start = 0
        while start < table.num_rows:
            if not self._parts or self._parts[-1].rows >= self.cap:
                self._open_part()
            part = self._parts[-1]
            take = min(self.cap - part.rows, table.num_rows - start)
            data = encode_records(table.slice(start, take), self.line_end)
            if not _is_utf8(self.encoding):
                data = _reencode(data, self.encoding)
            part.write(data, take)
            start += take

    def finish(self, name_for: Callable[[int, int], str]) -> list[FileManifest]:
        """Close the parts and move each into place as ``name_for(index, count)`` (index from 0)."""
        count = len(self._parts)
        manifests = []
        for index, part in enumerate(self._parts):
            part.close()
            final = self.out_dir / name_for(index, count)
            os.replace(part.path, final)
            manifests.append(FileManifest(final.name, part.rows, part.bytes, part.sha.hexdigest()))
        self._parts = []
        return manifests

    def abort(self) -> None:
        """Remove the parts written so far (they hold personal data)."""
        for part in self._parts:
            part.close()
            part.path.unlink(missing_ok=True)
        self._parts = []

    def _open_part(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f".part-{len(self._parts):05d}.partial"
        self._parts.append(_Part(path))


class _Part:
    """One file being written: its handle, running row/byte counts and checksum."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows, self.bytes = path, 0, 0
        self.sha = hashlib.sha256()
        self._handle = open(path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, data: bytes, rows: int) -> None:
        self._handle.write(data)
        self.sha.update(data)
        self.rows += rows
        self.bytes += len(data)

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()


def _reencode(data: bytes, encoding: str) -> bytes:
    """Re-encode UTF-8 record bytes; name the first record the target charset cannot hold."""
    text = data.decode("utf-8")
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as error:
        line = text.count("\n", 0, error.start) + 1
        raise InputError(
            f"character {text[error.start]!r} cannot be written in {encoding}",
            line=line,
            field="MSG",
        ) from None
    except LookupError:
        raise InputError(f"unknown file encoding {encoding!r}") from None


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


def read_records(data: bytes, source: str, *, encoding: str = "utf-8") -> ParsedRecords:
    """Parse SEND file bytes strictly: RFC 4180 with `;`, no header, four fields per record.

    Records with another number of fields are collected rather than raised, so a check
    reports every problem at once. A decoding error is raised with its line.
    """
    text = _decode(data, source, encoding)
    if not _is_utf8(encoding):
        data = text.encode("utf-8")
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
        read_options=pacsv.ReadOptions(
            column_names=list(SEND_FIELDS), use_threads=False, block_size=1 << 26
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=";",
            quote_char='"',
            double_quote=True,
            escape_char=False,
            newlines_in_values=True,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.large_string() for name in SEND_FIELDS},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
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
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(
            f"byte {data[error.start]:#04x} is not valid {encoding}", file=source, line=line
        ) from None
    except LookupError:
        raise InputError(f"unknown file encoding {encoding!r}", file=source) from None
