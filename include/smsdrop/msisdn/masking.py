"""Masking of numbers for logs and reject files: personal data never shown whole.

Why a module of its own: a number is personal data, and what may be shown of it (the
calling code and the last two digits) is a privacy rule, not part of telling what a number
is. ``mask`` serves columns, ``mask_one`` single log lines, with the same output.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from smsdrop.arrays import unique
from smsdrop.msisdn.kernels import _STRING, _bools, _lengths, _to_strings

_E164_SHAPE = r"^\+[0-9]{2,20}$"
_MASK_HIDDEN = "***"
_MASK_KEEP_MIN_NSN = 5  # shorter national numbers show no digit at all


@cache
def _cc_prefixes() -> list[pa.Array]:
    """Country calling codes as strings, by length (1, 2, 3 digits)."""
    by_len: list[list[str]] = [[], [], []]
    for code in COUNTRY_CODE_TO_REGION_CODE:
        by_len[len(str(code)) - 1].append(str(code))
    return [pa.array(sorted(codes), _STRING) for codes in by_len]


def mask(e164: pd.Series) -> pd.Series:
    """Mask numbers for logs and reject files: "+33612345678" -> "+33*******78".

    Keeps "+", the calling code and the last two digits (none when the national number is
    shorter than 5 digits); anything that is not an E.164 string becomes "***", so a log
    never shows a full number whatever it is given. Nulls stay null.
    """
    out = mask_array(e164)
    return pd.Series(
        pd.array(out, dtype=pd.StringDtype("pyarrow")), index=e164.index, name=e164.name
    )


def mask_array(e164: pa.Array | pa.ChunkedArray | pd.Series) -> pa.Array:
    """:func:`mask` on a column, as an Arrow string array (the bulk path)."""
    strings = _to_strings(e164)
    shaped = _bools(pc.match_substring_regex(strings, _E164_SHAPE))
    out = pc.if_else(
        pc.is_null(strings), pa.scalar(None, _STRING), pa.scalar(_MASK_HIDDEN, _STRING)
    )
    if shaped.any():
        sub = strings.filter(pa.array(shaped))
        digits = pc.utf8_slice_codeunits(sub, 1)
        cc_len = np.zeros(len(sub), dtype=np.int64)
        for size, codes in enumerate(_cc_prefixes(), start=1):
            hit = _bools(pc.is_in(pc.utf8_slice_codeunits(digits, 0, size), value_set=codes))
            cc_len[(cc_len == 0) & hit] = size
        nsn_len = _lengths(digits) - cc_len
        shown = np.where(nsn_len >= _MASK_KEEP_MIN_NSN, 2, 0)
        masked: list[pa.Array] = []
        order: list[np.ndarray] = []
        for size in unique(cc_len).tolist():
            for keep in unique(shown[cc_len == size]).tolist():
                idx = np.flatnonzero((cc_len == size) & (shown == keep))
                part = digits.take(pa.array(idx))
                stars = pc.binary_repeat("*", pa.array(nsn_len[idx] - keep))
                tail = (
                    pc.utf8_slice_codeunits(part, -keep)
                    if keep
                    else pa.array([""] * len(idx), _STRING)
                )
                masked.append(
                    pc.binary_join_element_wise(
                        "+", pc.utf8_slice_codeunits(part, 0, size), stars, tail, ""
                    )
                )
                order.append(idx)
        inverse = np.empty(len(sub), dtype=np.int64)
        inverse[np.concatenate(order)] = np.arange(len(sub))
        out = pc.replace_with_mask(
            out, pa.array(shaped), pa.concat_arrays(masked).take(pa.array(inverse))
        )
    return out


def mask_one(e164: str) -> str:
    """Scalar ``mask`` for a single log line (same output as ``mask``)."""
    if not isinstance(e164, str) or not re.fullmatch(r"\+[0-9]{2,20}", e164):
        return _MASK_HIDDEN
    digits = e164[1:]
    cc_len = next(
        (
            size
            for size in (1, 2, 3)
            if int(digits[:size]) in COUNTRY_CODE_TO_REGION_CODE and digits[0] != "0"
        ),
        0,
    )
    nsn_len = len(digits) - cc_len
    keep = 2 if nsn_len >= _MASK_KEEP_MIN_NSN else 0
    return "+" + digits[:cc_len] + "*" * (nsn_len - keep) + (digits[-keep:] if keep else "")
