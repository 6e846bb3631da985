"""The provider's report files (ACK, STOP, SMSMO): read into typed Arrow tables.

The spec gives the columns and little else, and the example ACK line is itself untidy
(``2 `` as IDSTATUS, a space inside the operator id). So reading is tolerant where data
cannot be misread (BOM, CRLF or LF, quoted fields, spaces around non-text fields, blank
lines, a missing final newline) and strict where it could (field count, IDSTATUS,
DATE/HOUR): a bad report stops with the file, line (from 1) and field, never a guess —
or, for the loaders, the bad record is set aside and the rest loaded (``quarantine``).

Inside, rows are Arrow from the bytes to the warehouse; pandas appears only at the edge
(:func:`parse_ack`, :func:`parse_replies`, :attr:`Chunk.frame`). The pieces:

- :mod:`~smsdrop.reports.columns`: the layouts and the vectorised typing of each column;
- :mod:`~smsdrop.reports.records`: the bytes cut into records as pyarrow's tokenizer does
  (the error path, and the complete records of a growing file);
- :mod:`~smsdrop.reports.reading`: the strict read, its located errors, :class:`Chunk`;
- :mod:`~smsdrop.reports.tolerant`: the quarantine rules (:class:`Quarantined`);
- :mod:`~smsdrop.reports.masking`: what of a value or a record may be shown;
- :mod:`~smsdrop.reports.writing`: report lines as the sandbox writes them.

The CSV dialect itself (``;``, ``"``, CRLF) is :mod:`smsdrop.csvfile`'s, shared with SEND files.
"""

from __future__ import annotations

from smsdrop.csvfile import format_record
from smsdrop.reports.columns import (
    ACK_COLUMNS,
    ACK_FIELDS,
    DATE_FORMATS,
    HOUR_FORMATS,
    REPLY_COLUMNS,
    REPLY_DATE_FORMAT,
    REPLY_FIELDS,
    REPLY_HOUR_FORMAT,
    Field,
)
from smsdrop.reports.masking import (
    CLEAN_BYTE,
    MAX_RAW_CHARS,
    clean_bytes,
    mask_raw,
    shown,
    shown_number,
)
from smsdrop.reports.reading import Chunk, Quarantined, parse_ack, parse_replies, read_typed
from smsdrop.reports.records import BOM, complete_prefix, count_lines
from smsdrop.reports.tolerant import (
    MAX_OPEN_LINES,
    MAX_RECORD_BYTES,
    SPLIT_BYTES,
    parse_ack_tolerant,
    read_tolerant,
)
from smsdrop.reports.writing import (
    format_reply_date,
    format_reply_hour,
    write_ack_line,
    write_reply_line,
)

__all__ = [
    "ACK_COLUMNS",
    "ACK_FIELDS",
    "BOM",
    "CLEAN_BYTE",
    "DATE_FORMATS",
    "HOUR_FORMATS",
    "MAX_OPEN_LINES",
    "MAX_RAW_CHARS",
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
    stops the rest (:mod:`smsdrop.reports.tolerant` has the rules); ``require_msisdn`` also
    sets aside a record whose MSISDN cannot be normalised (a STOP line nobody could be
    suppressed with); ``final`` says ``data`` is the whole rest of the file, so an
    unterminated last record is set aside instead of waited for.
    """
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if first_line is None and offset == 0:
        first_line = 1
    if quarantine:
        return read_tolerant(data, source, offset, first_line, require_msisdn, final)
    consumed = complete_prefix(data)
    table = read_typed(
        data[:consumed],
        source,
        REPLY_FIELDS,
        with_received_at=True,
        first_line=first_line,
        offset=offset,
    )
    return Chunk(table, offset + consumed, count_lines(data, consumed))
