"""Parsed reports → the Arrow tables the warehouse loads (pure: no database here).

A report's rows arrive as the Arrow table its reader made (:attr:`smsdrop.reports.Chunk.table`)
and stay Arrow; a pandas frame (:func:`smsdrop.reports.parse_ack`, a caller's own) is
taken too, each column converted once as it is read.

Everything per row is vectorised: numbers through :func:`smsdrop.msisdn.classify` and
:func:`smsdrop.msisdn.network_names` (country and network stored at load time, never
computed in SQL), message facts through
:func:`smsdrop.gsm.check_messages` (once per distinct text), keywords through
:mod:`smsdrop.warehouse.optout`. Natural keys are deduplicated here so that one bulk
statement never meets the same key twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop.arrays import unique_first_index
from smsdrop.gsm import EncodingPolicy, check_messages
from smsdrop.msisdn import classify, mask, network_names
from smsdrop.warehouse.optout import OPTOUT_KEYWORDS, optout_keyword

__all__ = [
    "DELIVERY_COLUMNS",
    "OPTOUT_COLUMNS",
    "REJECT_TABLE_COLUMNS",
    "REPLY_COLUMNS",
    "deliveries_table",
    "optouts_table",
    "rejects_table",
    "replies_table",
]

_S: Final = pa.string()
_TS: Final = pa.timestamp("s", tz="UTC")
#: Report rows as a reader gives them (Arrow) or as a pandas user has them.
Rows: TypeAlias = pa.Table | pd.DataFrame

DELIVERY_SCHEMA: Final = pa.schema(
    [
        ("file", _S),
        ("send_file", _S),
        ("campaign_id", _S),
        ("msisdn", _S),
        ("idremote", _S),
        ("oadc", _S),
        ("idstatus", pa.int32()),
        ("status", _S),
        ("ackoperator", _S),
        ("country", _S),
        ("network", _S),
        ("encoding", _S),
        ("segments", pa.int32()),
    ]
)
REPLY_SCHEMA: Final = pa.schema(
    [
        ("msisdn", _S),
        ("received_at", _TS),
        ("idremote", _S),
        ("message", _S),
        ("file", _S),
        ("campaign_id", _S),
        ("country", _S),
        ("is_stop", pa.bool_()),
        ("keyword", _S),
    ]
)
OPTOUT_SCHEMA: Final = pa.schema(
    [("msisdn", _S), ("source", _S), ("received_at", _TS), ("keyword", _S), ("file", _S)]
)
REJECT_SCHEMA: Final = pa.schema(
    [
        ("campaign_id", _S),
        ("source_row", pa.int64()),
        ("idremote", _S),
        ("msisdn_masked", _S),
        ("reason", _S),
        ("field", _S),
        ("detail", _S),
    ]
)
DELIVERY_COLUMNS: Final = tuple(DELIVERY_SCHEMA.names)
REPLY_COLUMNS: Final = tuple(REPLY_SCHEMA.names)
OPTOUT_COLUMNS: Final = tuple(OPTOUT_SCHEMA.names)
REJECT_TABLE_COLUMNS: Final = tuple(REJECT_SCHEMA.names)

#: A rejects value we may store as it is: already masked by smsdrop.msisdn.mask.
_MASKED: Final = r"^(\+[0-9]{0,3}\*+[0-9]{0,2}|\*\*\*)$"


def _column(rows: Rows, name: str) -> pa.ChunkedArray | pd.Series:
    return rows.column(name) if isinstance(rows, pa.Table) else rows[name]


def _has(rows: Rows, name: str) -> bool:
    return name in (rows.column_names if isinstance(rows, pa.Table) else rows.columns)


def _strings(values: pa.Array | pa.ChunkedArray | pd.Series | Iterable[object]) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(_S)
    if isinstance(values, pa.Array):
        return values.cast(_S)
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    return pa.array(series.astype("string[pyarrow]")).cast(_S)


def _as_series(values: pa.ChunkedArray | pd.Series) -> pd.Series:
    """A text column for the number, message and keyword kernels, which take pandas: Arrow
    is wrapped as it is, a frame's column typed as string[pyarrow]."""
    if isinstance(values, pd.Series):
        return values.astype("string[pyarrow]")
    return pd.Series(pd.array(_strings(values), dtype="string[pyarrow]"))


def _const(value: object, n: int, type_: pa.DataType = _S) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n) if value is not None else pa.nulls(n, type_)


def _empty_to_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _first_by_key(table: pa.Table, keys: list[str]) -> pa.Table:
    """Keep the first row of each key (in table order): one bulk statement, one row per key.

    One key is hashed once (dictionary codes follow first appearance), and a table whose
    keys are all distinct, the usual report, is returned as it is.
    """
    if table.num_rows == 0:
        return table
    if len(keys) == 1:
        column = table.column(keys[0]).combine_chunks()
        codes = pc.dictionary_encode(column, null_encoding="encode")
        if len(codes.dictionary) == table.num_rows:
            return table
        _, firsts = unique_first_index(codes.indices.to_numpy())
        return table.take(np.sort(firsts))
    indexed = table.append_column("__i", pa.array(range(table.num_rows), pa.int64()))
    firsts = indexed.group_by(keys, use_threads=False).aggregate([("__i", "min")])
    take = pc.sort_indices(firsts["__i_min"])
    return table.take(pc.take(firsts["__i_min"], take))


def deliveries_table(
    rows: Rows, file: str, send_file: str | None, campaign_id: str | None
) -> pa.Table:
    """A parsed ACK (:func:`smsdrop.reports.parse_ack_tolerant`) → ``sms_deliveries`` rows.

    The message body is not kept: its encoding and segment count are (docs/WAREHOUSE.md).
    ``network`` is the mobile network of the number's range (``ackoperator`` is a
    per-message acknowledgement id, not a network).
    """
    n = len(rows)
    msisdn = _strings(_column(rows, "msisdn"))
    numbers = classify(_as_series(_column(rows, "msisdn")), default_region="FR")
    facts = check_messages(_as_series(_column(rows, "msg")), EncodingPolicy.UCS2, True)
    table = pa.table(
        {
            "file": _const(file, n),
            "send_file": _const(send_file, n),
            "campaign_id": _const(campaign_id, n),
            "msisdn": msisdn,
            "idremote": _strings(_column(rows, "idremote")),
            "oadc": _strings(_column(rows, "oadc")),
            "idstatus": _int32(_column(rows, "idstatus")),
            "status": _strings(_column(rows, "status")),
            "ackoperator": _empty_to_null(_strings(_column(rows, "ackoperator"))),
            "country": _strings(numbers["country"]),
            "network": _strings(network_names(numbers["e164"], numbers["status"])),
            "encoding": _strings(facts["encoding"]),
            "segments": pa.array(facts["segments"].to_numpy(), pa.int64()).cast(pa.int32()),
        },
        schema=DELIVERY_SCHEMA,
    )
    return _first_by_key(table, ["msisdn"])  # the key is (file, msisdn): one file here


def _int32(values: pa.ChunkedArray | pd.Series) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(pa.int32())
    return pa.array(values.astype("int64[pyarrow]")).cast(pa.int32())


def _received_at(rows: Rows) -> pa.Array:
    if not _has(rows, "received_at"):
        return pa.nulls(len(rows), _TS)
    values = _column(rows, "received_at")
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(_TS)
    return pa.array(values).cast(_TS)


def replies_table(
    rows: Rows,
    file: str,
    campaign_id: str | None,
    keywords: Iterable[str] = OPTOUT_KEYWORDS,
) -> pa.Table:
    """A parsed SMSMO (or STOP) file (:func:`smsdrop.reports.parse_replies`) → ``sms_replies``.

    The number is normalised to E.164 (as typed when it cannot be); ``is_stop`` and
    ``keyword`` come from the first word of the message.
    """
    n = len(rows)
    numbers = classify(_as_series(_column(rows, "msisdn")), default_region="FR")
    e164 = pc.coalesce(_strings(numbers["e164"]), _strings(_column(rows, "msisdn")))
    keyword = _strings(optout_keyword(_as_series(_column(rows, "message")), keywords))
    table = pa.table(
        {
            "msisdn": e164,
            "received_at": _received_at(rows),
            "idremote": pc.fill_null(_strings(_column(rows, "idremote")), ""),
            "message": _strings(_column(rows, "message")),
            "file": _const(file, n),
            "campaign_id": _const(campaign_id, n),
            "country": _strings(numbers["country"]),
            "is_stop": pc.is_valid(keyword),
            "keyword": keyword,
        },
        schema=REPLY_SCHEMA,
    )
    return _first_by_key(table, ["msisdn", "received_at", "idremote"])


def optouts_table(
    rows: Rows,
    source: str,
    file: str | None = None,
    keywords: Iterable[str] = OPTOUT_KEYWORDS,
) -> pa.Table:
    """Opt-out rows from any frame with an ``msisdn`` column (a STOP report, an import...).

    ``received_at`` and ``message`` are used when present (the keyword is the message's
    opt-out keyword, null when it has none). Numbers that are not even parseable are
    dropped (nothing could be suppressed with them); each number is kept once, at its
    earliest ``received_at``.
    """
    n = len(rows)
    numbers = classify(_as_series(_column(rows, "msisdn")), default_region="FR")
    if _has(rows, "message"):
        keyword = _strings(optout_keyword(_as_series(_column(rows, "message")), keywords))
    else:
        keyword = pa.nulls(n, _S)
    table = pa.table(
        {
            "msisdn": _strings(numbers["e164"]),
            "source": _const(source, n),
            "received_at": _received_at(rows),
            "keyword": keyword,
            "file": _const(file, n),
        },
        schema=OPTOUT_SCHEMA,
    )
    table = table.filter(pc.is_valid(table["msisdn"]))
    # earliest first (nulls last: the default), so the first row per number wins
    order = pc.sort_indices(table, [("msisdn", "ascending"), ("received_at", "ascending")])
    return _first_by_key(table.take(order), ["msisdn"])


def rejects_table(campaign_id: str, rejects: pd.DataFrame) -> pa.Table:
    """A rejects frame (:data:`smsdrop.record_rules.REJECT_COLUMNS`) → ``sms_rejected_rows``.

    The MSISDN must be masked already; a value that still looks like a whole number is
    masked here, anything else unrecognised becomes ``***``: no full number is ever stored.
    """
    n = len(rejects)
    shown = _strings(rejects["msisdn"])
    masked_ok = pc.fill_null(pc.match_substring_regex(shown, _MASKED), False)
    remasked = _strings(mask(pd.Series(pd.array(shown, dtype="string[pyarrow]"))))
    safe = pc.if_else(masked_ok, shown, remasked)  # mask(): E.164 masked, anything else ***

    def column(name: str) -> pa.Array:
        return _strings(rejects[name]) if name in rejects else pa.nulls(n, _S)

    table = pa.table(
        {
            "campaign_id": _const(campaign_id, n),
            "source_row": pa.array(rejects["row"].astype("int64").to_numpy(), pa.int64()),
            "idremote": column("idremote"),
            "msisdn_masked": safe,
            "reason": column("reason"),
            "field": column("field"),
            "detail": column("detail"),
        },
        schema=REJECT_SCHEMA,
    )
    return _first_by_key(table, ["campaign_id", "source_row"])


def as_mapping(summary: object) -> Mapping[str, object]:
    """A :class:`smsdrop.prepare.Summary` (or a mapping) as a plain mapping."""
    if summary is None:
        return {}
    if isinstance(summary, Mapping):
        return summary
    as_dict = getattr(summary, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    raise TypeError(f"expected a Summary or a mapping, got {type(summary).__name__}")
