"""libphonenumber's metadata compiled per region into what the column kernels need.

Why: a region's rules (patterns by number type, possible lengths, national and
international prefixes) are data; compiling them once per region (lazily, cached) turns
classification into a few regex passes per calling code. The compilation also proves, with
the exact analysis of ``regex_engine``, which single pattern is enough to decide most rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from smsdrop.msisdn.kernels import _fullmatch
from smsdrop.msisdn.limits import (
    _LEN_INVALID,
    _LEN_LOCAL,
    _LEN_LONG,
    _LEN_POSSIBLE,
    _LEN_SHORT,
    _LEN_TABLE_SIZE,
    _MAX_NSN,
    _NON_GEO,
)
from smsdrop.msisdn.regex_engine import _pair_ok, _scan_groups, _structure, _width

_SPECIAL_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


@dataclass(frozen=True, slots=True, eq=False)
class _Desc:
    """A PhoneNumberDesc reduced to what matching needs."""

    pattern: str
    lengths: frozenset[int]  # empty: no length check (phonenumbers semantics)
    width_ok: np.ndarray  # by length: can the pattern match a string that long?
    length_ok: np.ndarray  # by length: width_ok and one of the possible lengths

    def accepts_length(self, length: int) -> bool:
        return not self.lengths or length in self.lengths


def _make_desc(pattern: str, lengths: Sequence[int] = ()) -> _Desc:
    low, high = _width(pattern, _LEN_TABLE_SIZE)
    sizes = np.arange(_LEN_TABLE_SIZE)
    width_ok = (sizes >= low) & (sizes <= high)
    length_ok = width_ok & np.isin(sizes, list(lengths)) if lengths else width_ok
    return _Desc(pattern, frozenset(lengths), width_ok, length_ok)


def _desc(desc: object | None) -> _Desc | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    return _make_desc(pattern, desc.possible_length or ())


def _implies(source: _Desc, required: _Desc | None, forbidden: Sequence[_Desc]) -> bool:
    """True iff every number matching ``source`` matches ``required`` and none of ``forbidden``.

    Exact, by walking the product of two patterns' automata over digit strings up to the
    longest national number. It lets ``classify`` decide most rows with a single regex pass
    (e.g. a French mobile pattern is inside the general pattern and disjoint from the
    premium/VoIP/… patterns, so matching it is enough). Gives up (False) when unsure.
    """
    if required is None:
        return False
    max_len = min(max(source.lengths, default=_MAX_NSN), _MAX_NSN)
    return _pair_ok(source, required, True, max_len) and all(
        _pair_ok(source, other, False, max_len) for other in forbidden
    )


def _desc_match(
    arr: pa.Array, lens: np.ndarray, desc: _Desc | None, check_lengths: bool = True
) -> np.ndarray:
    """phonenumbers' _is_number_matching_desc (or _match_national_number without lengths)."""
    out = np.zeros(len(arr), dtype=bool)
    if desc is None or len(arr) == 0:
        return out
    ok = (desc.length_ok if check_lengths else desc.width_ok)[np.minimum(lens, _LEN_TABLE_SIZE - 1)]
    if ok.all():
        return _fullmatch(arr, desc.pattern)
    if ok.any():
        out[ok] = _fullmatch(arr.filter(pa.array(ok)), desc.pattern)
    return out


@dataclass(frozen=True, slots=True)
class _Rules:
    """What classify needs from one PhoneMetadata, compiled once."""

    region: str
    country_code: int
    general: _Desc | None
    specials: tuple[_Desc, ...]
    special_union: str | None
    fixed: _Desc | None
    mobile: _Desc | None
    same_mobile_and_fixed: bool
    fast_mobile: _Desc | None  # matching it alone proves MOBILE
    fast_not_mobile: _Desc | None  # matching it alone proves NOT_MOBILE
    length_result: np.ndarray  # _test_number_length result by length
    npfp: str | None  # national_prefix_for_parsing
    transform: str | None
    transform_group: int
    transform_group_nonempty: bool
    idd: str | None
    leading_digits: str | None


def _length_table(metadata: PhoneMetadata) -> np.ndarray:
    """phonenumbers' _test_number_length(number, metadata) for every length, as a lookup."""
    general = metadata.general_desc
    possible = sorted(general.possible_length or ())
    local = set(general.possible_length_local_only or ())
    table = np.full(_LEN_TABLE_SIZE, _LEN_INVALID, dtype=np.int8)
    if not possible:
        return table
    for length in range(_LEN_TABLE_SIZE):
        if length in local:
            table[length] = _LEN_LOCAL
        elif length == possible[0] or length in possible:
            table[length] = _LEN_POSSIBLE
        elif length < possible[0]:
            table[length] = _LEN_SHORT
        elif length > possible[-1]:
            table[length] = _LEN_LONG
    return table


def _group_can_be_empty(pattern: str, group: int) -> bool:
    """Whether capturing group ``group`` of ``pattern`` can match the empty string."""
    opens = _scan_groups(pattern)
    if not 0 < group <= len(opens):
        return True
    start, depth = opens[group - 1], 0
    for i, ch in _structure(pattern):
        if i < start or ch not in "()":
            continue
        depth += 1 if ch == "(" else -1
        if depth == 0:
            try:
                return re.fullmatch(pattern[start + 1 : i], "") is not None
            except re.error:
                return True
    return True


def _compile(metadata: PhoneMetadata, region: str) -> _Rules:
    general = _desc(metadata.general_desc)
    specials = tuple(d for d in (_desc(getattr(metadata, t, None)) for t in _SPECIAL_TYPES) if d)
    fixed, mobile = _desc(metadata.fixed_line), _desc(metadata.mobile)
    same = bool(metadata.same_mobile_and_fixed_line_pattern)
    if same:
        fast_mobile = fixed if fixed and _implies(fixed, general, specials) else None
        fast_not_mobile = None
    else:
        fast_mobile = mobile if mobile and _implies(mobile, general, specials) else None
        fast_not_mobile = (
            fixed
            if fixed and _implies(fixed, general, (*specials, *((mobile,) if mobile else ())))
            else None
        )
    npfp = metadata.national_prefix_for_parsing or None
    transform = metadata.national_prefix_transform_rule or None
    groups = len(_scan_groups(npfp)) if npfp else 0
    return _Rules(
        region=region,
        country_code=metadata.country_code,
        general=general,
        specials=specials,
        special_union="|".join(f"(?:{d.pattern})" for d in specials) or None,
        fixed=fixed,
        mobile=mobile,
        same_mobile_and_fixed=same,
        fast_mobile=fast_mobile,
        fast_not_mobile=fast_not_mobile,
        length_result=_length_table(metadata),
        npfp=npfp,
        transform=transform,
        transform_group=groups,
        transform_group_nonempty=bool(transform and groups)
        and not _group_can_be_empty(npfp, groups),
        idd=metadata.international_prefix or None,
        leading_digits=metadata.leading_digits or None,
    )


@cache
def _rules_for_region(region: str) -> _Rules:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        raise ValueError(f"no phone number metadata for region {region!r}")
    return _compile(metadata, region)


@cache
def _rules_for_cc(country_code: int) -> _Rules:
    """Rules of the main region of a calling code, the ones ``parse`` uses after a +CC."""
    main = COUNTRY_CODE_TO_REGION_CODE[country_code][0]
    if main == _NON_GEO:
        return _compile(PhoneMetadata.metadata_for_nongeo_region(country_code), _NON_GEO)
    return _rules_for_region(main)
