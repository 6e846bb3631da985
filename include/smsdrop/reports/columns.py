"""The report layouts (ACK, STOP/SMSMO) and how each column is typed, on Arrow arrays.

Every column is read as text first; a converter types a whole column at once and says
which values it refused, so a caller can stop (strict reading) or set the record aside
(tolerant reading) without a per-row loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Field:
    """One column of a report: provider name, our column name, and how it is typed.

    ``kind`` selects the converter in :data:`CONVERTERS`: ``id`` (text, stripped at the
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


# --- typing: string arrays → typed arrays, plus the rows that failed -------------------


@dataclass(frozen=True)
class Converted:
    values: pa.Array
    invalid: pa.Array | None  # boolean, True where the input was refused
    expected: str = ""


def _one_of(formats: tuple[tuple[str, str, str], ...]) -> str:
    labels = [label for label, _, _ in formats]
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def _as_id(raw: pa.Array) -> Converted:
    return Converted(pc.utf8_trim_whitespace(raw), None)


def _as_text(raw: pa.Array) -> Converted:
    return Converted(raw, None)


def _as_int(raw: pa.Array) -> Converted:
    s = pc.utf8_trim_whitespace(raw)
    ok = pc.match_substring_regex(s, r"^[+-]?[0-9]{1,18}$")
    values = pc.cast(pc.if_else(ok, s, pa.scalar(None, pa.string())), pa.int64())
    return Converted(values, pc.invert(ok), "an integer")


def _canonical(s: pa.Array, formats: tuple[tuple[str, str, str], ...]) -> pa.Array:
    """Rewrite every accepted spelling to one canonical string; null where none matches."""
    out = pa.nulls(len(s), pa.string())
    for _label, pattern, rewrite in formats:
        hit = pc.match_substring_regex(s, pattern)
        out = pc.if_else(hit, pc.replace_substring_regex(s, pattern, rewrite), out)
    return out


def _as_date(raw: pa.Array) -> Converted:
    canon = _canonical(pc.utf8_trim_whitespace(raw), DATE_FORMATS)
    parsed = pc.strptime(canon, format="%Y%m%d", unit="s", error_is_null=True)
    # Arrow's strptime is lenient (20260230 → 2 March): keep only exact round trips.
    exact = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y%m%d"), canon), False)
    values = pc.cast(parsed, pa.date32())
    return Converted(values, pc.invert(exact), f"a date {_one_of(DATE_FORMATS)}")


def _as_hour(raw: pa.Array) -> Converted:
    canon = _canonical(pc.utf8_trim_whitespace(raw), HOUR_FORMATS)
    ok = pc.fill_null(pc.match_substring_regex(canon, _HHMMSS_VALID), False)
    canon = pc.if_else(ok, canon, pa.scalar(None, pa.string()))

    def part(i: int) -> pa.Array:
        return pc.cast(pc.utf8_slice_codeunits(canon, i, i + 2), pa.int32())

    seconds = pc.add(pc.add(pc.multiply(part(0), 3600), pc.multiply(part(2), 60)), part(4))
    values = pc.cast(pc.cast(seconds, pa.int32()), pa.time32("s"))
    return Converted(values, pc.invert(ok), f"a time {_one_of(HOUR_FORMATS)}")


def _per_distinct(convert: Callable[[pa.Array], Converted]) -> Callable[[pa.Array], Converted]:
    """Run ``convert`` once per distinct value: dates, hours and statuses repeat, and the
    regex/strptime kernels cost per value (1M dates: ~4 s direct, ~0.1 s this way)."""

    def run(raw: pa.Array) -> Converted:
        encoded = pc.dictionary_encode(raw)
        done = convert(encoded.dictionary)
        invalid = None if done.invalid is None else pc.take(done.invalid, encoded.indices)
        return Converted(pc.take(done.values, encoded.indices), invalid, done.expected)

    return run


CONVERTERS: Final[dict[str, Callable[[pa.Array], Converted]]] = {
    "id": _as_id,
    "text": _as_text,
    "int": _per_distinct(_as_int),
    "date": _per_distinct(_as_date),
    "hour": _per_distinct(_as_hour),
}
TYPES: Final[dict[str, pa.DataType]] = {
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


def convert(
    table: pa.Table, fields: Sequence[Field]
) -> tuple[dict[str, pa.Array], list[tuple[Field, Converted]]]:
    """Typed columns of a text table, and the fields (in order) with refused values."""
    columns: dict[str, pa.Array] = {}
    refused: list[tuple[Field, Converted]] = []
    for f in fields:
        converted = CONVERTERS[f.kind](table.column(f.name).combine_chunks())
        if converted.invalid is not None and pc.any(converted.invalid).as_py():
            refused.append((f, converted))
        columns[f.name] = converted.values
    return columns, refused


def typed_table(columns: dict[str, pa.Array], with_received_at: bool) -> pa.Table:
    """The typed columns as the readers return them (replies: plus ``received_at``)."""
    if with_received_at:
        columns = {**columns, "received_at": _received_at(columns["date"], columns["hour"])}
    return pa.table(columns)


def empty_table(fields: Sequence[Field], with_received_at: bool) -> pa.Table:
    arrays = {f.name: pa.array([], TYPES[f.kind]) for f in fields}
    if with_received_at:
        arrays["received_at"] = pa.array([], _RECEIVED_AT)
    return pa.table(arrays)


def as_frame(table: pa.Table) -> pd.DataFrame:
    """A reader's table for pandas users: the same Arrow arrays behind ``pd.ArrowDtype``."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)
