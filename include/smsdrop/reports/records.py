"""Report bytes cut into records the way pyarrow's tokenizer does, for the error path and
for incremental reads.

A quote only opens a field at its start; after the closing quote the field continues
unquoted; CRLF, LF or a lone CR end a record. Following pyarrow exactly is what lets a
growing file read in pieces give the same rows as read whole, and an error name the
record pyarrow refused. Good files never come here record by record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final, NamedTuple

import numpy as np

BOM: Final = b"\xef\xbb\xbf"

# One field, pyarrow's way: a quoted part (doubled quotes inside) then anything up to the
# delimiter, or an unquoted run. Atomic/possessive and run-based: linear, no backtracking.
_FIELD: Final = rb'(?>"(?:[^"]++|"")*+"[^;\r\n]*+|[^";\r\n][^;\r\n]*+)?'
_FIELD_RE: Final = re.compile(_FIELD)
_FIELDS: Final = _FIELD + rb"(?:;" + _FIELD + rb")*+"
#: One record and its line end (or the end of the data).
_RECORD: Final = re.compile(rb"(" + _FIELDS + rb")(?:\r\n|\n|\r|\Z)")
# Complete records only. A lone CR at the very end may be half of a CRLF: not complete yet.
_COMPLETE: Final = re.compile(rb"(?:" + _FIELDS + rb"(?:\r\n|\n|\r(?=[^\n])))*+")
#: Nothing but line ends, to the end of the data.
BLANK: Final = re.compile(rb"[\r\n]*\Z")
#: A whole file: records, the last one with or without its line end.
WHOLE: Final = re.compile(rb"(?:" + _FIELDS + rb"(?:\r\n|\n|\r))*+(?:" + _FIELDS + rb")?")
# RFC 4180's field: a closing quote is followed by the delimiter, a line end or the end.
_STRICT_FIELD: Final = rb'(?>"(?:[^"]++|"")*+"(?=[;\r\n]|\Z)|[^";\r\n][^;\r\n]*+)?'
_STRICT_FIELDS: Final = _STRICT_FIELD + rb"(?:;" + _STRICT_FIELD + rb")*+"
#: A whole file of RFC 4180 records: no text glued after a closing quote.
STRICT_WHOLE: Final = re.compile(
    rb"(?:" + _STRICT_FIELDS + rb"(?:\r\n|\n|\r))*+(?:" + _STRICT_FIELDS + rb")?"
)
_QUOTED: Final = re.compile(rb'"(?:[^"]++|"")*+"')


def count_lines(data: bytes, end: int | None = None) -> int:
    """Line breaks in ``data[:end]``: CRLF, LF and lone CR each count once (no copy)."""
    end = len(data) if end is None else end
    return data.count(b"\n", 0, end) + data.count(b"\r", 0, end) - data.count(b"\r\n", 0, end)


def complete_prefix(data: bytes) -> int:
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


class Record(NamedTuple):
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

    def multiline(self) -> bool:
        return b"\n" in self.body or b"\r" in self.body

    def glued(self) -> int | None:
        """The index of the first field with text after its closing quote (``"ab"c``, which
        pyarrow reads as ``abc`` and RFC 4180 refuses), or None."""
        if b'"' not in self.body:
            return None
        for index, (_, raw) in enumerate(self.fields()):
            if raw.startswith(b'"') and (m := _QUOTED.match(raw)) and m.end() < len(raw):
                return index
        return None


def scan(data: bytes, start: int) -> Iterator[Record]:
    """Records of ``data`` from ``start`` as pyarrow sees them, blank lines skipped.

    Error path only: this is the per-record Python loop good files never pay for. Lines
    without a quote are records as they stand (``splitlines`` knows CRLF, LF and CR, like
    pyarrow); only a line with a quote needs the tokeniser, which may run over several lines.
    """
    pos, line = start, 1 + count_lines(data, start)
    lines = data[start:].splitlines(keepends=True)
    i = 0
    while i < len(lines):
        raw = lines[i]
        if b'"' not in raw:
            body = raw.rstrip(b"\r\n")
            if body:  # pyarrow skips empty lines
                yield Record(line, pos, body)
            pos, line, i = pos + len(raw), line + (len(body) < len(raw)), i + 1
            continue
        m = _RECORD.match(data, pos)
        if m is None:  # no record can start here: an opening quote never closed
            yield Record(line, pos, data[pos:], broken=True)
            return
        if m.group(1):
            yield Record(line, pos, m.group(1))
        while i < len(lines) and pos < m.end():  # a record ends where a line ends
            pos, line, i = pos + len(lines[i]), line + lines[i].endswith((b"\n", b"\r")), i + 1


def eol(buf: bytes, pos: int) -> int:
    """Position after the line end at ``pos`` (CRLF, LF, CR), or ``pos`` when none."""
    if buf.startswith(b"\r\n", pos):
        return pos + 2
    return pos + 1 if buf[pos : pos + 1] in (b"\n", b"\r") else pos


def first_line_end(buf: bytes, pos: int) -> int:
    """Position after the first line end at or after ``pos`` (the end of ``buf`` if none)."""
    cr, lf = buf.find(b"\r", pos), buf.find(b"\n", pos)
    ends = [i for i in (cr, lf) if i >= 0]
    return eol(buf, min(ends)) if ends else len(buf)


def plain_lines(buf: bytes, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
