"""Tolerant reading: every record of a report loaded or set aside, never an error on
the content (the provider's files are not ours to fix).

The rules: NUL and invalid UTF-8 bytes are replaced by ``?`` first
(:func:`smsdrop.reports.clean_bytes`: a warehouse refuses them; a STOP with a stray byte is
still a STOP); a record that does not tokenise (an unterminated quote), has the wrong number
of fields, is longer than :data:`MAX_RECORD_BYTES` or has a refused value (DATE, HOUR;
MSISDN with ``require_msisdn``) is set aside, and so is a record over several lines with
text after a closing quote (``"…"0``: a stray quote closed by another one, not RFC 4180);
a bad record spanning several lines is set aside by its first line and the rest read
again; an incomplete tail that has run over :data:`MAX_OPEN_LINES` line breaks or
:data:`MAX_RECORD_BYTES` is a stray quote: its first line is set aside and the reading
goes on after it.

Good files take the vectorised path only (one pyarrow read, Arrow kernels); a region that
is not good as a whole is halved until the bad records are found, so one bad record costs
little in a big file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop.reports.columns import (
    ACK_FIELDS,
    REPLY_FIELDS,
    TYPES,
    Field,
    convert,
    empty_table,
    typed_table,
)
from smsdrop.reports.masking import clean_bytes, mask_raw, shown, shown_number
from smsdrop.reports.reading import Chunk, Located, Quarantined, field_name, read_strings
from smsdrop.reports.records import (
    BLANK,
    BOM,
    STRICT_WHOLE,
    Record,
    complete_prefix,
    count_lines,
    eol,
    first_line_end,
    plain_lines,
    scan,
)

#: A record longer than this is set aside (an SMS of 255 UCS-2 segments is ~51 KB of UTF-8).
MAX_RECORD_BYTES: Final = 64 * 1024
#: An open quote that has not closed after this many line breaks (or MAX_RECORD_BYTES) is
#: a stray quote, not a message the provider is still writing: its first line is set aside.
MAX_OPEN_LINES: Final = 100
#: A region that is not good as a whole is halved down to this size before it is read
#: record by record (the Python path), so one bad record costs little in a big file.
SPLIT_BYTES: Final = 8 * 1024


def _stuck(tail: bytes) -> bool:
    """An incomplete tail that can no longer be a record being written (see MAX_OPEN_LINES)."""
    breaks = count_lines(tail)
    return breaks > 0 and (breaks > MAX_OPEN_LINES or len(tail) > MAX_RECORD_BYTES)


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
        if BLANK.match(view):
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
            cut = complete_prefix(view[: len(view) // 2])
            if 0 < cut < len(view):
                self.region(begin, begin + cut)
                self.region(begin + cut, stop)
                return
        self._salvage(view, start + skip)

    def _plain(self, view: bytes, start: int, skip: int) -> None:
        """A region without a quote: every line is a record. Field counts and lengths are
        checked per line with numpy, the good lines typed in one pyarrow read; Python only
        touches the lines set aside."""
        starts, ends, nexts = plain_lines(view, start + skip)
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
        where = Located(self.source, None, self.offset + start, 0)
        table = read_strings(joined, 0, self.fields, where, diagnose=False)
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
        where = Located(self.source, None, self.offset + start, 0)
        table = read_strings(buf, skip, self.fields, where, diagnose=False)
        if table.num_rows and self._too_long(table):
            return None
        if b'"' in piece and self._glued_over_lines(table, buf, skip):
            return None
        columns, refused = convert(table, self.fields)
        return None if refused else pa.table(columns)

    def _too_long(self, table: pa.Table) -> bool:
        total = pc.add(pc.binary_length(table.column(0)), len(self.fields) - 1)
        for column in table.columns[1:]:
            total = pc.add(total, pc.binary_length(column))
        return bool(pc.max(total).as_py() > MAX_RECORD_BYTES)

    @staticmethod
    def _glued_over_lines(table: pa.Table, buf: bytes, skip: int) -> bool:
        """Whether a record over several lines may have text after a closing quote (then the
        record-by-record path sets it aside); pyarrow reads ``"…"0`` as ``…0``."""
        spans = any(
            pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py() for column in table.columns
        )
        return spans and STRICT_WHOLE.fullmatch(buf, skip) is None

    @staticmethod
    def _numbers_ok(table: pa.Table) -> pa.Array:
        from smsdrop.msisdn import classify

        raw = pc.utf8_trim_whitespace(table.column("msisdn").combine_chunks())
        e164 = classify(pd.Series(pd.array(raw, dtype="string[pyarrow]")))["e164"]
        return pc.is_valid(pa.array(e164.array))

    def _structure(self, rec: Record) -> tuple[str, str] | None:
        """(field, reason) when the record cannot be a reply line at all."""
        if rec.broken:
            return field_name(self.fields, rec, len(rec.body)), "unterminated quoted field"
        if len(rec.body) > MAX_RECORD_BYTES:
            return "record", f"record of {len(rec.body)} bytes, longer than {MAX_RECORD_BYTES}"
        if (found := rec.count()) != len(self.fields):
            names = ";".join(f.provider for f in self.fields)
            field = self.fields[found].provider if found < len(self.fields) else "record"
            return field, f"expected {len(self.fields)} fields {names}, found {found}"
        if rec.multiline() and (index := rec.glued()) is not None:
            return self.fields[index].provider, "text after a closing quote"
        return None

    def _salvage(self, buf: bytes, pos: int) -> None:
        """Record by record: structure in Python, values in bulk. A bad record spanning
        several lines (an opening quote that swallowed what follows) is set aside by its
        first line only, and the lines after it are read again: a stray quote costs one
        line, never the records it would have swallowed."""
        while True:
            events: list[tuple[Record, tuple[str, str] | None]] = []
            for rec in scan(buf, pos):
                problem = self._structure(rec)
                events.append((rec, problem))
                if problem is not None and rec.multiline():
                    break
            good = [i for i, (_, problem) in enumerate(events) if problem is None]
            table, problems = self._type([events[i][0].body for i in good])
            for i, problem in problems.items():
                events[good[i]] = (events[good[i]][0], problem)
            cut = next(
                (k for k, (rec, p) in enumerate(events) if p is not None and rec.multiline()),
                len(events),
            )
            keep = [j for j, i in enumerate(good) if i < cut and j not in problems]
            if keep:
                self.tables.append(table.take(pa.array(keep, pa.int64())))
            for rec, problem in events[:cut]:
                if problem is not None:
                    end = eol(buf, rec.start + len(rec.body))
                    self.set_aside(buf, rec.start, end, *problem)
            if cut == len(events):
                return
            rec, (field, reason) = events[cut]
            pos = first_line_end(buf, rec.start)
            lines = count_lines(rec.body) + 1
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
            return pa.table({f.name: pa.array([], TYPES[f.kind]) for f in self.fields}), {}
        # A leading blank line keeps a BOM at the start of the first record as data.
        joined = b"\n" + b"\n".join(bodies) + b"\n"
        where = Located(self.source, None, self.offset, 0)
        try:
            table = read_strings(joined, 0, self.fields, where, diagnose=False)
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
        columns, refused = convert(table, self.fields)
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
                    {f.name: pa.nulls(1, TYPES[f.kind]) for f in self.fields}
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
            records = list(scan(view, skip))  # pyarrow's records, in the same order
            numbers = table.column("msisdn")
            for row in bad.tolist():
                rec = records[row]
                reason = "not a phone number that can be normalised, found " + shown_number(
                    numbers[row].as_py()
                )
                end = eol(view, rec.start + len(rec.body))
                self.set_aside(view, rec.start, end, field.provider, reason)
            keep = np.ones(table.num_rows, bool)
            keep[bad] = False
            self.tables[index] = table.filter(pa.array(keep))
        self._unchecked.clear()

    def table(self) -> pa.Table:
        """Every record loaded, in file order, one chunk a column."""
        if not self.tables:
            return empty_table(self.fields, self.with_received_at)
        table = pa.concat_tables(self.tables)
        columns = {name: table.column(name).combine_chunks() for name in table.column_names}
        return typed_table(columns, self.with_received_at)


def read_tolerant(
    data: bytes,
    source: str,
    offset: int,
    first_line: int | None,
    require_msisdn: bool,
    final: bool,
    fields: Sequence[Field] = REPLY_FIELDS,
) -> Chunk:
    """``data`` (from ``offset`` in the file) loaded or set aside by the module's rules;
    ``final`` says it is the rest of the file (an unterminated last record is set aside,
    not waited for)."""
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
        end = len(clean) if final else pos + complete_prefix(clean[pos:])
        reader.region(pos, end)
        if final or not _stuck(clean[end:]):
            break
        pos = first_line_end(clean, end)
        first = Record(0, end, clean[end:pos].rstrip(b"\r\n"))
        reader.set_aside(
            clean,
            end,
            pos,
            field_name(fields, first, len(first.body)),
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
    quarantined = tuple(sorted(reader.quarantined, key=lambda q: q.offset))
    return Chunk(reader.table(), offset + end, count_lines(clean, end), quarantined, cleaned)


def parse_ack_tolerant(data: bytes, source: str) -> Chunk:
    """A whole ACK file, every record loaded or set aside (``Chunk.quarantined``), never an
    error on the content: the rules of ``parse_replies_from(..., quarantine=True)``."""
    return read_tolerant(data, source, 0, 1, False, True, ACK_FIELDS)
