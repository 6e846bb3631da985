"""Classification: E.164 form, status and region of each number, as phonenumbers says them.

Why vectorised: it follows ``is_valid_number``, ``number_type`` and
``region_code_for_number`` with one regex pass per number type over the numbers of a
calling code (often a single pass, where ``metadata`` proved one pattern enough), instead of
a Python call per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

from smsdrop.msisdn.kernels import _STRING, _fullmatch, _head, _lengths, _prefix, _to_strings
from smsdrop.msisdn.metadata import _desc_match, _Rules, _rules_for_cc, _rules_for_region
from smsdrop.msisdn.parsing import _parse


class MsisdnStatus(StrEnum):
    """What a recipient number is good for: only MOBILE numbers can receive an SMS."""

    MOBILE = "mobile"
    NOT_MOBILE = "not_mobile"
    INVALID = "invalid"


# Internal status codes; the public column uses the MsisdnStatus strings.
_INVALID, _MOBILE, _NOT_MOBILE = 0, 1, 2
_STATUS_CATEGORIES = [
    MsisdnStatus.MOBILE.value,
    MsisdnStatus.NOT_MOBILE.value,
    MsisdnStatus.INVALID.value,
]
_STATUS_TO_CATEGORY = np.array([2, 0, 1], dtype=np.int8)  # internal code -> category code
_STATUS_CODE = {
    MsisdnStatus.INVALID: _INVALID,
    MsisdnStatus.MOBILE: _MOBILE,
    MsisdnStatus.NOT_MOBILE: _NOT_MOBILE,
}


def _status(arr: pa.Array, rules: _Rules) -> np.ndarray:
    """Status codes following _number_type_helper: type precedence, then mobile or not."""
    lens = _lengths(arr)
    out = np.zeros(len(arr), dtype=np.int8)
    todo = np.ones(len(arr), dtype=bool)
    for fast, code in ((rules.fast_mobile, _MOBILE), (rules.fast_not_mobile, _NOT_MOBILE)):
        if fast is None or not todo.any():
            continue
        if todo.all():
            hit = _desc_match(arr, lens, fast)
            out[hit] = code
            todo &= ~hit
        else:
            idx = np.flatnonzero(todo)
            hit = _desc_match(arr.take(pa.array(idx)), lens[idx], fast)
            out[idx[hit]] = code
            todo[idx[hit]] = False
    if not todo.any():
        return out
    idx = np.flatnonzero(todo)
    sub, sub_lens = arr.take(pa.array(idx)), lens[idx]
    general = _desc_match(sub, sub_lens, rules.general)
    code = np.zeros(len(idx), dtype=np.int8)
    if rules.special_union is not None and general.any():
        loose = np.zeros(len(idx), dtype=bool)
        loose[general] = _fullmatch(sub.filter(pa.array(general)), rules.special_union)
        if loose.any():
            cand = np.flatnonzero(loose)
            cand_arr, cand_lens = sub.take(pa.array(cand)), sub_lens[cand]
            special = np.zeros(len(cand), dtype=bool)
            for desc in rules.specials:
                special |= _desc_match(cand_arr, cand_lens, desc)
            code[cand[special]] = _NOT_MOBILE
            general[cand[special]] = False
    if general.any():
        rest = np.flatnonzero(general)
        rest_arr, rest_lens = sub.take(pa.array(rest)), sub_lens[rest]
        fixed = _desc_match(rest_arr, rest_lens, rules.fixed)
        if rules.same_mobile_and_fixed:
            code[rest] = np.where(fixed, _MOBILE, _INVALID)
        else:
            mobile = _desc_match(rest_arr, rest_lens, rules.mobile)
            code[rest] = np.where(mobile, _MOBILE, np.where(fixed, _NOT_MOBILE, _INVALID))
    out[idx] = code
    return out


class _Heads:
    """First digits of each number as integers, to test literal leading digits ("268",
    "658|876": most shared calling codes) with integer arithmetic instead of a string pass
    per region."""

    WIDTH = 5
    LITERALS = re.compile(r"[0-9]{1,5}(?:\|[0-9]{1,5})*")

    def __init__(self, nsn: pa.Array) -> None:
        lens = np.minimum(_lengths(nsn), self.WIDTH)
        head = pc.cast(_head(nsn, self.WIDTH), pa.int64()).to_numpy(zero_copy_only=False)
        head = head * 10 ** (self.WIDTH - lens)  # "066" -> 6600: pad to WIDTH digits
        self.lens = lens
        self.by_size = {
            size: head // 10 ** (self.WIDTH - size) for size in range(1, self.WIDTH + 1)
        }

    def starts_with(self, idx: np.ndarray, pattern: str) -> np.ndarray | None:
        """re.match(pattern) for the rows ``idx``, or None if the pattern is not literal."""
        if not self.LITERALS.fullmatch(pattern):
            return None
        hit = np.zeros(len(self.lens), dtype=bool)
        for literal in pattern.split("|"):
            size = len(literal)
            hit |= (self.by_size[size] == int(literal)) & (self.lens >= size)
        return hit[idx]


def _classify_cc(country_code: int, nsn: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Status and region per number, as is_valid_number/number_type/region_code_for_number.

    The region is an index into COUNTRY_CODE_TO_REGION_CODE[country_code], -1 where the
    number is not valid.
    """
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    n = len(nsn)
    if not regions:
        return np.zeros(n, dtype=np.int8), np.full(n, -1, dtype=np.int64)
    if len(regions) == 1:
        status = _status(nsn, _rules_for_cc(country_code))
        assigned = np.zeros(n, dtype=np.int64)
    else:
        # Shared calling code: region_code_for_number's order (leading digits, else validity).
        # The rows still unassigned are re-materialised only when many got assigned.
        status = np.zeros(n, dtype=np.int8)
        assigned = np.full(n, -1, dtype=np.int64)
        heads = _Heads(nsn)
        idx, sub = np.arange(n), nsn
        free = np.ones(n, dtype=bool)  # aligned with idx
        for number, region in enumerate(regions):
            left = int(free.sum())
            if left == 0:
                break
            if left < 0.75 * len(idx):
                idx, sub = idx[free], sub.filter(pa.array(free))
                free = np.ones(len(idx), dtype=bool)
            if PhoneMetadata.metadata_for_region(region, None) is None:
                continue
            rules = _rules_for_region(region)
            if rules.leading_digits is not None:
                hit = heads.starts_with(idx, rules.leading_digits)
                if hit is None:
                    hit = _prefix(sub, rules.leading_digits)
                hit &= free
                if hit.any():
                    status[idx[hit]] = _status(sub.filter(pa.array(hit)), rules)
            else:
                codes = _status(sub if free.all() else sub.filter(pa.array(free)), rules)
                hit = np.zeros(len(idx), dtype=bool)
                hit[free] = codes != _INVALID
                status[idx[hit]] = codes[codes != _INVALID]
            assigned[idx[hit]] = number
            free &= ~hit
    assigned[status == _INVALID] = -1
    return status, assigned


def _check_region(default_region: str) -> str:
    region = str(default_region).upper()
    if region not in SUPPORTED_REGIONS:
        raise ValueError(f"unknown default region {default_region!r} (expected e.g. 'FR')")
    return region


def classify(raw: pd.Series, default_region: str = "FR") -> pd.DataFrame:
    """Normalise recipient numbers to E.164 and say whether each can receive an SMS.

    Returns a frame with the index of ``raw`` and columns:

    * ``e164`` (pyarrow string): ``+<cc><national number>`` whenever phonenumbers could parse
      the input, null when it cannot be read as a number (wrong characters, too short or long,
      unknown calling code);
    * ``status`` (Categorical of MsisdnStatus values): MOBILE for number types MOBILE and
      FIXED_LINE_OR_MOBILE (NANPA regions cannot tell them apart), NOT_MOBILE for other valid
      numbers, INVALID otherwise;
    * ``country`` (pyarrow string): ISO region code ("FR", "001" for non-geographic codes),
      null unless the number is valid.

    ``default_region`` is the region for numbers written without an international prefix.
    """
    numbers = classify_array(raw, default_region)
    string_dtype = pd.StringDtype("pyarrow")
    return pd.DataFrame(
        {
            "e164": pd.array(numbers.e164, dtype=string_dtype),
            "status": pd.Categorical.from_codes(
                _STATUS_TO_CATEGORY[numbers.status], categories=_STATUS_CATEGORIES
            ),
            "country": pd.array(numbers.country, dtype=string_dtype),
        },
        index=raw.index,
    )


@dataclass(frozen=True)
class ClassifiedNumbers:
    """:func:`classify`'s columns as Arrow arrays and one numpy status code per row."""

    e164: pa.Array
    country: pa.Array
    status: np.ndarray  # int8, internal codes: see :meth:`has`

    def has(self, status: MsisdnStatus) -> np.ndarray:
        """Which rows have ``status``."""
        return self.status == _STATUS_CODE[MsisdnStatus(status)]


def classify_array(
    raw: pa.Array | pa.ChunkedArray | pd.Series, default_region: str = "FR"
) -> ClassifiedNumbers:
    """:func:`classify` for the bulk path: Arrow in, Arrow out (no pandas frame to build and unwrap per batch)."""
    region = _check_region(default_region)
    strings = _to_strings(raw)
    n = len(strings)
    parsed = _parse(strings, region)

    status = np.zeros(n, dtype=np.int8)
    names: list[str | None] = [None]  # country index 0: null
    country_index = np.zeros(n, dtype=np.int32)
    e164_parts: list[pa.Array] = [pa.nulls(1, _STRING)]  # row 0: null
    where = np.zeros(n, dtype=np.int32)
    offset = 1
    for pos, cc, nsn in zip(parsed.pos, parsed.cc, parsed.nsn, strict=True):
        codes, region_index = _classify_cc(cc, nsn)
        status[pos] = codes
        country_index[pos] = np.where(region_index >= 0, region_index + len(names), 0)
        names.extend(COUNTRY_CODE_TO_REGION_CODE.get(cc, ()))
        e164_parts.append(pc.binary_replace_slice(nsn, 0, 0, f"+{cc}"))  # ASCII: bytes = chars
        where[pos] = np.arange(offset, offset + len(pos), dtype=np.int32)
        offset += len(pos)
    e164 = pa.concat_arrays(e164_parts).take(pa.array(where))
    country = pa.array(names, _STRING).take(pa.array(country_index))
    return ClassifiedNumbers(e164, country, status)
