"""GSM 03.38 facts of whole columns of texts: the bulk path of :mod:`smsdrop.gsm`.

:func:`check_messages` factorizes a column (a million rows from one template cost one text),
then computes the facts of the distinct texts with numpy over the Arrow UTF-8 buffer, with no
Python work per text. The rules and tables are :mod:`smsdrop.gsm`'s; that module re-exports
this one's names on first use (``from smsdrop.gsm import check_messages`` works), so that
the one-text path (``smsdrop segments``) never imports numpy, pandas or pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop.gsm import (
    _SEPTETS,
    _WHITESPACE,
    GSM7_PART,
    GSM7_SINGLE,
    GSM_EXTENSION,
    MAX_LONG_SEGMENTS,
    TRANSLITERATION,
    UCS2_PART,
    UCS2_SINGLE,
    EncodingPolicy,
)
from smsdrop.reasons import Reason

# --------------------------------------------------------------------------------------------
# Vectorised implementation: numpy over the UTF-8 bytes of the distinct texts.
#
# Only a few characters matter for the counts: non-ASCII ones (lead byte >= 0xC0) and the
# ASCII ones that are not plain 1-septet GSM (controls, [ \ ] ^ ` { | } ~ DEL). Those are the
# "events": found with a few byte comparisons, decoded to code points, classified through a
# lookup table built from the tables above, then summed per text with prefix sums at the text
# offsets. Everything else in a text is 1 character = 1 septet = 1 UTF-16 unit.
# --------------------------------------------------------------------------------------------

_BASIC, _EXT, _NON_GSM, _ASTRAL = 0, 1, 2, 3  # event classes

# Class of every BMP code point (64 KiB), from the tables.
_BMP_CLASS = np.full(0x10000, _NON_GSM, dtype=np.uint8)
_BMP_CLASS[[ord(c) for c, s in _SEPTETS.items() if s == 1]] = _BASIC
_BMP_CLASS[[ord(c) for c in GSM_EXTENSION]] = _EXT

# Transliteration as arrays: key code point -> row of the replacement table. The last row
# (index -1) is "no replacement", so per-row lookups need no mask.
_TL_KEYS = list(TRANSLITERATION)
_TL_ROW = np.full(0x10000, -1, dtype=np.int16)
_TL_ROW[[ord(k) for k in _TL_KEYS]] = np.arange(len(_TL_KEYS), dtype=np.int16)
_TL_VALUE_LEN = np.array([len(TRANSLITERATION[k].encode()) for k in _TL_KEYS] + [1])
_TL_KEY_LEN = np.array([len(k.encode()) for k in _TL_KEYS] + [1])
_TL_DROPPED = (_TL_KEY_LEN - _TL_VALUE_LEN).astype(np.int8)  # UTF-8 bytes saved
_TL_ADDED = (_TL_VALUE_LEN - 1).astype(np.int8)  # characters added (values are ASCII)
_TL_WIDTH = int(_TL_VALUE_LEN.max())
_TL_COLUMNS = tuple(  # byte j of each row's value (0 past its end)
    np.array([(TRANSLITERATION[k].encode() + bytes(_TL_WIDTH))[j] for k in _TL_KEYS] + [0],
             dtype=np.uint8)
    for j in range(_TL_WIDTH)
)  # fmt: skip

# A text can only be whitespace-only if its first byte starts a whitespace character.
_WS_FIRST_BYTE = np.zeros(256, dtype=bool)
_WS_FIRST_BYTE[[c.encode()[0] for c in _WHITESPACE]] = True
_WS_ONLY_RE = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in _WHITESPACE) + "]*$"

_CHUNK = 1 << 18  # bytes per block of the event scan: keeps the temporaries in cache


def _utf8_views(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (rebased to 0, n + 1 of them) and UTF-8 bytes of a null-free large_string array."""
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(
        offsets_buf, dtype=np.int64, count=len(values) + 1, offset=values.offset * 8
    )
    lo, hi = int(offsets[0]), int(offsets[-1])
    if data_buf is None or hi == lo:
        return offsets - lo, np.zeros(0, dtype=np.uint8)
    return offsets - lo, np.frombuffer(data_buf, dtype=np.uint8)[lo:hi]


def _event_positions(data: np.ndarray) -> np.ndarray:
    """Byte positions of the characters that may not be plain 1-septet GSM.

    Those are lead bytes (>= 0xC0) and the ASCII ranges 0x00-0x1F, 0x5B-0x60, 0x7B-0x7F, a
    superset of the ASCII characters that are not basic GSM (a test checks it). Done in
    blocks so the boolean temporaries stay in cache: ~3x faster than whole-buffer numpy.
    """
    found = []
    mask = np.empty(_CHUNK, dtype=bool)
    other = np.empty(_CHUNK, dtype=bool)
    shifted = np.empty(_CHUNK, dtype=np.uint8)
    for start in range(0, len(data), _CHUNK):
        block = data[start : start + _CHUNK]
        size = len(block)
        m, o, s = mask[:size], other[:size], shifted[:size]
        np.greater_equal(block, 0xC0, out=m)
        np.less(block, 0x20, out=o)
        m |= o
        np.subtract(block, np.uint8(0x5B), out=s)
        np.less_equal(s, 0x60 - 0x5B, out=o)
        m |= o
        np.subtract(block, np.uint8(0x7B), out=s)
        np.less_equal(s, 0x7F - 0x7B, out=o)
        m |= o
        hits = np.flatnonzero(m)
        if hits.size:
            found.append(hits + start)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _pair_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables indexed by the first two bytes of a character (b0 << 8 | b1).

    ``code`` packs the event class (2 bits) and the UTF-8 continuation byte count (2 bits);
    ``row`` is the transliteration row or -1. Two bytes decide every 1- and 2-byte character;
    3-byte characters (``€``, ``’``, ``…``) are decoded apart, 4-byte ones are astral.
    """
    key = np.arange(0x10000)
    b0, b1 = key >> 8, key & 0xFF
    extra = np.select([b0 < 0xC0, b0 < 0xE0, b0 < 0xF0], [0, 1, 2], 3)
    cp = np.where(extra == 0, b0 & 0x7F, ((b0 & 0x1F) << 6) | (b1 & 0x3F))
    two_bytes_or_less = extra <= 1
    cls = np.where(two_bytes_or_less, _BMP_CLASS[cp], np.where(extra == 3, _ASTRAL, _NON_GSM))
    row = np.where(two_bytes_or_less, _TL_ROW[cp], -1)
    return (cls | (extra << 2)).astype(np.uint8), row.astype(np.int16)


_PAIR_CODE, _PAIR_ROW = _pair_tables()

# Three per-text counts in one prefix sum: 21-bit lanes of an int64 (extension characters,
# astral characters, non-GSM characters). Exact while no text has 2**21 bytes; the wrap-around
# of the running sum cancels in the differences.
_LANE_BITS = 21
_LANE_MASK = (1 << _LANE_BITS) - 1
_LANE_SHIFTS = (0, _LANE_BITS, 2 * _LANE_BITS)
_LANES = np.zeros(4, dtype=np.int64)
_LANES[_EXT] = 1
_LANES[_ASTRAL] = (1 << _LANE_SHIFTS[1]) | (1 << _LANE_SHIFTS[2])  # astral is also non-GSM
_LANES[_NON_GSM] = 1 << _LANE_SHIFTS[2]


@dataclass
class _Events:
    """The event characters of a null-free large_string array, classified."""

    offsets: np.ndarray  # n + 1 byte offsets of the texts, rebased to 0
    data: np.ndarray  # UTF-8 bytes
    pos: np.ndarray  # byte position of each event character (sorted)
    extra: np.ndarray  # its UTF-8 length - 1
    cls: np.ndarray  # its class: _BASIC, _EXT, _NON_GSM or _ASTRAL
    row: np.ndarray | None  # its transliteration row (-1: none), when asked for
    cut: np.ndarray  # index of the first event at or after each text offset

    def before(self, weights: np.ndarray) -> np.ndarray:
        """Sum of a weight (or count of a mask) over the events before each text offset."""
        sums = np.zeros(len(weights) + 1, dtype=np.int64)
        np.cumsum(weights, out=sums[1:])
        return sums[self.cut]

    def per_text(self, weights: np.ndarray) -> np.ndarray:
        """Sum of a weight (or count of a mask) over the events of each text."""
        return np.diff(self.before(weights))


def _scan(values: pa.Array, translit: bool = False, every: bool = False) -> _Events:
    """Find and classify the event characters of ``values`` (see above).

    Unless ``every``, only the events that are not 1-septet GSM are kept (for French texts
    that drops the frequent é è à, two thirds of the events): they are all the counts need.
    """
    offsets, data = _utf8_views(values)
    pos = _event_positions(data)
    key = (data[pos].astype(np.uint16) << 8) | np.take(data, pos + 1, mode="clip")
    code = _PAIR_CODE[key]
    if not every:  # 3- and 4-byte characters are never basic GSM: they stay
        keep = np.flatnonzero((code & 3) != _BASIC)
        pos, key, code = pos[keep], key[keep], code[keep]
    cls, extra = code & 3, code >> 2
    three = np.flatnonzero(extra == 2)  # decode the 3-byte characters
    at = pos[three]
    cp = (
        ((data[at].astype(np.int32) & 0x0F) << 12)
        | ((data[at + 1].astype(np.int32) & 0x3F) << 6)
        | (data[at + 2] & 0x3F)
    )
    cls[three] = _BMP_CLASS[cp]
    row = None
    if translit:  # every transliteration key is non-GSM, so among the kept events
        row = _PAIR_ROW[key]
        row[three] = _TL_ROW[cp]
    return _Events(offsets, data, pos, extra, cls, row, np.searchsorted(pos, offsets))


def _drop_bytes(data: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """``data`` without the bytes at the sorted positions ``drop``, as a fresh writable array.

    Arrow's filter kernel on a bitmap does this ~3x faster than a numpy boolean index.
    """
    bits = np.full((len(data) + 7) // 8, 0xFF, dtype=np.uint8)
    byte = drop >> 3
    first = np.flatnonzero(np.diff(byte, prepend=-1))  # first dropped position in each byte
    bits[byte[first]] = ~np.bitwise_or.reduceat(np.left_shift(1, drop & 7).astype(np.uint8), first)
    mask = pa.Array.from_buffers(pa.bool_(), len(data), [None, pa.py_buffer(bits)])
    kept = pc.filter(pa.Array.from_buffers(pa.uint8(), len(data), [None, pa.py_buffer(data)]), mask)
    out = np.frombuffer(kept.buffers()[1], dtype=np.uint8, count=len(kept), offset=kept.offset)
    return out if out.flags.writeable else out.copy()


def _rewrite(ev: _Events, hit: np.ndarray) -> pa.Array:
    """Apply the transliteration to the events selected by ``hit``: a new array.

    Values are never longer than their keys in UTF-8, so the output is the input minus the
    key bytes a value does not use, with the value bytes then written where each key started.
    No Python work per text.
    """
    offsets = ev.offsets - ev.before(_TL_DROPPED[ev.row])
    pos, row = ev.pos[hit], ev.row[hit]
    value_len, dropped = _TL_VALUE_LEN[row], _TL_DROPPED[row]
    dropped_before = np.cumsum(dropped) - dropped
    drop = np.repeat(pos + value_len - dropped_before, dropped)  # sorted byte positions
    drop += np.arange(len(drop))
    out = _drop_bytes(ev.data, drop) if len(drop) else ev.data.copy()
    start = pos - dropped_before
    for j, column in enumerate(_TL_COLUMNS):  # an empty value (a removed key) writes nothing
        at = np.flatnonzero(value_len > j)
        out[start[at] + j] = column[row[at]]
    return pa.Array.from_buffers(
        pa.large_string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(out)]
    )


def _exact_segments(values: pa.Array, gsm7: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Exact segment counts of long texts holding 2-unit characters, vectorised.

    For each text the unit positions of its 2-unit characters (extension characters for GSM-7,
    surrogate pairs for UCS-2) are computed from the events; then all texts walk their
    boundaries together: a boundary falls at start + part, unless a 2-unit character starts
    just before it, in which case the part ends one unit early. One numpy step per segment
    index, not per text.
    """
    ev = _scan(values, every=True)
    text = np.searchsorted(ev.offsets, ev.pos, side="right") - 1
    first = ev.cut[text]  # first event of the same text
    event = np.arange(len(ev.pos))
    extra = np.concatenate(([0], np.cumsum(ev.extra, dtype=np.int64)))  # continuation bytes
    char_index = ev.pos - ev.offsets[text] - (extra[event] - extra[first])
    double = np.where(gsm7[text], ev.cls == _EXT, ev.cls == _ASTRAL)
    doubles = np.concatenate(([0], np.cumsum(double)))
    unit = char_index + doubles[event] - doubles[first]
    span = int(total.max()) + 2
    keys = text[double] * span + unit[double]  # sorted: by text, then by position
    part = np.where(gsm7, GSM7_PART, UCS2_PART)
    start = np.zeros(len(total), dtype=np.int64)
    segments = np.ones(len(total), dtype=np.int64)
    active = np.flatnonzero(total > np.where(gsm7, GSM7_SINGLE, UCS2_SINGLE))
    while active.size:
        end = start[active] + part[active]
        wanted = active * span + end - 1
        found = np.searchsorted(keys, wanted)
        straddles = keys[np.minimum(found, len(keys) - 1)] == wanted
        start[active] = end - straddles
        segments[active] += 1
        active = active[total[active] - start[active] > part[active]]
    return segments


@dataclass
class _Distinct:
    """Facts of the distinct texts, as arrays aligned with ``values`` (the final texts)."""

    values: pa.Array
    changed: bool
    gsm7: np.ndarray
    segments: np.ndarray
    blank: np.ndarray


def _distinct_facts(values: pa.Array, translit: bool) -> _Distinct:
    """Facts of distinct, null-free texts (large_string), transliterated first if asked."""
    if len(values) == 0:
        nothing = np.zeros(0, dtype=np.int64)
        return _Distinct(values, False, nothing.astype(bool), nothing, nothing.astype(bool))
    ev = _scan(values, translit)
    chars = pc.utf8_length(values).to_numpy()
    lanes = _LANES[ev.cls]  # extension, astral and non-GSM counts, summed together
    changed = False
    if translit:
        hit = ev.row >= 0
        if hit.any():
            changed = True
            # Values are ASCII: a key (1 character) becomes len(value) characters. Keys are
            # all non-GSM (BMP) and values all GSM basic: only the non-GSM count changes.
            chars = chars + ev.per_text(_TL_ADDED[ev.row])
            lanes[hit] = 0
            values = _rewrite(ev, hit)
    if np.diff(ev.offsets).max() < 1 << _LANE_BITS:  # no count can overflow its lane
        counts = ev.per_text(lanes)
        ext, astral, non_gsm = ((counts >> shift) & _LANE_MASK for shift in _LANE_SHIFTS)
    else:
        ext, astral, non_gsm = (ev.per_text((lanes >> shift) & 1) for shift in _LANE_SHIFTS)
    gsm7 = non_gsm == 0
    total = np.where(gsm7, chars + ext, chars + astral)  # septets, or UTF-16 units
    single = np.where(gsm7, GSM7_SINGLE, UCS2_SINGLE)
    part = np.where(gsm7, GSM7_PART, UCS2_PART)
    segments = np.where(total <= single, 1, -(-total // part))
    walk = np.flatnonzero((total > single) & (np.where(gsm7, ext, astral) > 0))
    if walk.size:
        segments[walk] = _exact_segments(values.take(pa.array(walk)), gsm7[walk], total[walk])

    offsets, data = _utf8_views(values)
    blank = offsets[1:] == offsets[:-1]
    nonempty = np.flatnonzero(~blank)
    maybe = nonempty[_WS_FIRST_BYTE[data[offsets[nonempty]]]]
    if maybe.size:
        only_ws = pc.match_substring_regex(values.take(pa.array(maybe)), _WS_ONLY_RE)
        blank[maybe[only_ws.to_numpy(zero_copy_only=False)]] = True
    return _Distinct(values, changed, gsm7, segments.astype(np.int64), blank)


def _to_arrow(msgs: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as one large_string Arrow array (zero-copy for pandas' pyarrow strings)."""
    try:
        if isinstance(msgs, pa.ChunkedArray | pa.Array):
            if not (
                pa.types.is_string(msgs.type)
                or pa.types.is_large_string(msgs.type)
                or pa.types.is_null(msgs.type)
            ):
                raise pa.ArrowTypeError(f"an Arrow column of {msgs.type}")
            arr = msgs.cast(pa.large_string())
        else:
            arr = pa.array(msgs, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TypeError(f"messages must be strings or nulls: {exc}") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate cannot be sent, nor stored as UTF-8
        raise ValueError(f"message is not valid Unicode text: {exc}") from exc
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], type=pa.large_string())
    return arr


_REASONS = pa.array(
    [Reason.MSG_EMPTY.value, Reason.MSG_NOT_GSM.value, Reason.MSG_TOO_LONG.value, None],
    type=pa.large_string(),
)
_NO_REASON = 3
_ENCODINGS = pa.array(["gsm7", "ucs2"], type=pa.large_string())


def check_messages(msgs: pd.Series, policy: EncodingPolicy, long_sms: bool) -> pd.DataFrame:
    """Check a campaign's message column: final text, encoding, segments and reject reason.

    Returns a frame with the index of ``msgs`` and the columns ``msg`` (transliterated under
    TRANSLITERATE, else unchanged), ``encoding`` ("gsm7"/"ucs2"), ``segments`` (int64: the
    billing unit; 0 for a null message) and ``reason`` (a :class:`Reason` value or null):
    MSG_EMPTY (null, empty or whitespace only), MSG_NOT_GSM (not GSM-7 under REJECT, or still
    not after TRANSLITERATE), MSG_TOO_LONG (more than 1 segment, or than
    :data:`MAX_LONG_SEGMENTS` with ``long_sms``); the first that applies, in that order.

    Facts are computed once per distinct text (campaign texts repeat), vectorised over the
    distinct texts (personalised texts do not), then broadcast back to the rows.
    """
    facts = message_facts(msgs, policy, long_sms)
    return pd.DataFrame(
        {
            "msg": pd.Series(facts.msg, dtype="str", index=msgs.index),
            "encoding": pd.Series(facts.encoding, dtype="str", index=msgs.index),
            "segments": pd.Series(facts.segments, dtype=np.int64, index=msgs.index),
            "reason": pd.Series(facts.reason, dtype="str", index=msgs.index),
        },
        index=msgs.index,
    )


@dataclass(frozen=True)
class MessageFacts:
    """:func:`check_messages`' columns, as Arrow arrays and numpy (row for row)."""

    msg: pa.Array
    encoding: pa.Array
    segments: np.ndarray  # int64
    reason: pa.Array  # Reason values, null: none


def message_facts(
    msgs: pa.Array | pa.ChunkedArray | pd.Series, policy: EncodingPolicy, long_sms: bool
) -> MessageFacts:
    """:func:`check_messages` for the bulk path: Arrow in, Arrow out (no pandas frame to build and unwrap per batch)."""
    policy = EncodingPolicy(policy)
    arr = _to_arrow(msgs)
    encoded = arr.dictionary_encode()
    facts = _distinct_facts(encoded.dictionary, policy is EncodingPolicy.TRANSLITERATE)
    count = len(facts.gsm7)

    limit = MAX_LONG_SEGMENTS if long_sms else 1
    reason = np.select(
        [facts.blank, ~facts.gsm7 & (policy is not EncodingPolicy.UCS2), facts.segments > limit],
        [0, 1, 2],
        _NO_REASON,
    )
    # Slot `count` stands for a null message; null indices point at it.
    rows = pc.fill_null(encoded.indices, count).to_numpy().astype(np.intp, copy=False)
    segments = np.append(facts.segments, 0)[rows]
    encoding = _ENCODINGS.take(pa.array(np.append(~facts.gsm7, False).astype(np.int8)[rows]))
    reasons = _REASONS.take(pa.array(np.append(reason, 0).astype(np.int8)[rows]))
    if not facts.changed:
        final = arr
    elif count == len(arr) and not arr.null_count:  # all distinct: the dictionary is the column
        final = facts.values  # (dictionary_encode numbers values in order of first appearance)
    else:
        final = facts.values.take(encoded.indices)
    return MessageFacts(final, encoding, segments.astype(np.int64, copy=False), reasons)
