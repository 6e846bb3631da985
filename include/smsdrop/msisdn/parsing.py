"""Parsing: reproduces ``phonenumbers.parse`` for the accepted syntax, on whole columns.

Why vectorised: ``parse`` is a Python call per row. Here the digits are extracted with
string kernels, then calling codes, international and national prefixes are recognised and
stripped one rule at a time over all the rows it applies to, grouped by calling code:
O(rows) of kernel work plus O(distinct codes) of Python. The output is each readable row's
calling code and national significant number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from smsdrop.arrays import unique
from smsdrop.msisdn.kernels import (
    _LITERAL,
    _STRING,
    _bools,
    _drop,
    _head,
    _last_group_set,
    _lengths,
    _prefix,
    _prefix_len,
    _sub_prefix,
)
from smsdrop.msisdn.limits import (
    _LEN_LONG,
    _LEN_POSSIBLE,
    _LEN_TABLE_SIZE,
    _MAX_INPUT,
    _MAX_NSN,
    _MIN_NSN,
)
from smsdrop.msisdn.metadata import _desc_match, _Rules, _rules_for_cc, _rules_for_region

# Separators accepted anywhere: ASCII and Unicode spaces (NBSP, narrow NBSP…) and . - ( ) /.
_SEP = r"\s\p{Z}.()/\-"
_SYNTAX = rf"^[{_SEP}]*\+?[{_SEP}0-9]*$"
# Separators removed with plain string kernels before falling back to the regexes above.
_QUICK_SEPARATORS = ("", " ", ".", "-", "\u00a0", "(", ")", "/", "\u202f")
# Two-digit numbers are viable only when written as exactly two digits (phonenumbers rule).
_TWO_DIGITS = r"^[^0-9+]*[0-9]{2}[^0-9]*$"


@dataclass(slots=True)
class _Rows:
    """A subset of the input: original row positions and one aligned string array."""

    pos: np.ndarray
    values: pa.Array

    def pick(self, mask: np.ndarray) -> _Rows:
        if mask.all():
            return self
        return _Rows(self.pos[mask], self.values.filter(pa.array(mask)))

    def with_values(self, values: pa.Array) -> _Rows:
        return _Rows(self.pos, values)

    def __len__(self) -> int:
        return len(self.pos)


@dataclass(slots=True)
class _Parsed:
    """Numbers phonenumbers would parse: (row, calling code, national significant number)."""

    pos: list[np.ndarray]
    cc: list[int]
    nsn: list[pa.Array]


def _extract_digits(strings: pa.Array) -> tuple[_Rows, _Rows]:
    """Viable inputs as digit strings: (rows written with a leading '+', the others).

    Clean values ("0612345678", "+33612345678") and values written with the usual separators
    take cheap non-regex kernels, in a cascade over fewer and fewer rows: that is most of
    any real file. The rest gets the full syntax check.
    """
    n = len(strings)
    pos = np.arange(n)
    size = pc.binary_length(strings).fill_null(-1).to_numpy(zero_copy_only=False)
    present = (size >= 0) & (size <= _MAX_INPUT)
    if (size > _MAX_INPUT).any():  # non-ASCII: count characters, as phonenumbers does
        long = np.flatnonzero(size > _MAX_INPUT)
        chars = pc.utf8_length(strings.take(pa.array(long))).to_numpy(zero_copy_only=False)
        present[long[chars <= _MAX_INPUT]] = True
    decimal = _bools(pc.ascii_is_decimal(strings)) & present
    plus_parts: list[_Rows] = []
    parts = [_Rows(pos[decimal], strings.filter(pa.array(decimal)))]
    rest = present & ~decimal
    if rest.any():
        todo = _Rows(pos[rest], strings.filter(pa.array(rest)))
        starts_plus = _bools(pc.starts_with(todo.values, "+"))
        body = todo.pick(starts_plus)
        body = body.with_values(_drop(body.values, 1))
        hard: list[np.ndarray] = []
        for target, rows in ((plus_parts, body), (parts, todo.pick(~starts_plus))):
            for separator in _QUICK_SEPARATORS:
                if len(rows) == 0:
                    break
                if separator:
                    rows = rows.with_values(pc.replace_substring(rows.values, separator, ""))
                clean = _bools(pc.ascii_is_decimal(rows.values))
                target.append(rows.pick(clean))
                rows = rows.pick(~clean)
            hard.append(rows.pos)
        hard_pos = np.sort(np.concatenate(hard))
        if len(hard_pos):
            # Other separators, '+' after a separator, letters…: the full syntax check.
            sub = strings.take(pa.array(hard_pos))
            ok = _bools(pc.match_substring_regex(sub, _SYNTAX))
            rows = _Rows(hard_pos[ok], sub.filter(pa.array(ok)))
            plus = _bools(pc.match_substring(rows.values, "+"))
            rows = rows.with_values(pc.replace_substring_regex(rows.values, "[^0-9]+", ""))
            plus_parts.append(rows.pick(plus))
            parts.append(rows.pick(~plus))

    def viable(chunks: list[_Rows]) -> _Rows:
        if not chunks:
            return _Rows(np.zeros(0, dtype=np.int64), pa.array([], _STRING))
        rows = _Rows(
            np.concatenate([c.pos for c in chunks]), pa.concat_arrays([c.values for c in chunks])
        )
        lens = _lengths(rows.values)
        ok = lens >= 3
        two = np.flatnonzero(lens == 2)
        if len(two):
            typed = strings.take(pa.array(rows.pos[two]))
            ok[two] = _bools(pc.match_substring_regex(typed, _TWO_DIGITS))
        return rows.pick(ok)

    return viable(plus_parts), viable(parts)


def _cc_lengths(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(length, value) of the calling code each string (3 digits or more) starts with.

    As _extract_country_code: try 1, 2 then 3 digits; codes never start with 0. Length 0
    means no code.
    """
    head = pc.cast(_head(values, 3), pa.int32()).to_numpy(zero_copy_only=False)
    table = _cc_table()
    length = np.zeros(len(values), dtype=np.int64)
    found = np.zeros(len(values), dtype=np.int64)
    for digits in (1, 2, 3):
        code = head // 10 ** (3 - digits)
        hit = table[code] & (code >= 10 ** (digits - 1)) & (length == 0)
        length[hit] = digits
        found[hit] = code[hit]
    return length, found


@cache
def _cc_table() -> np.ndarray:
    table = np.zeros(1000, dtype=bool)
    table[list(COUNTRY_CODE_TO_REGION_CODE)] = True
    return table


def _split_cc(rows: _Rows) -> tuple[list[tuple[int, _Rows]], _Rows]:
    """_extract_country_code: (calling code, national rows) groups, and rows with no code."""
    if not len(rows):
        return [], rows
    length, found = _cc_lengths(rows.values)
    groups: list[tuple[int, _Rows]] = []
    for size in (1, 2, 3):
        sel = length == size
        if not sel.any():
            continue
        part, ccs = rows.pick(sel), found[sel]
        national = _drop(part.values, size)
        for code in [int(ccs[0])] if (ccs == ccs[0]).all() else unique(ccs).tolist():
            hit = ccs == code
            groups.append(
                (
                    code,
                    _Rows(part.pos[hit], national.filter(pa.array(hit)))
                    if not hit.all()
                    else _Rows(part.pos, national),
                )
            )
    return groups, rows.pick(length == 0)


def _strip_idd(rows: _Rows, rules: _Rules) -> tuple[np.ndarray, pa.Array]:
    """_maybe_strip_i18n_prefix_and_normalize without '+': (stripped mask, rest of stripped).

    The default region's prefix comes first, as in phonenumbers; when it does not match at
    all, "00" followed by a non-zero digit is taken as an international prefix too.
    """
    values = rows.values
    match_len = (
        _prefix_len(values, rules.idd) if rules.idd else np.full(len(rows), -1, dtype=np.int64)
    )
    fallback = (match_len < 0) & _bools(pc.starts_with(values, "00"))
    if fallback.any():
        third = _head(_drop(values.filter(pa.array(fallback)), 2), 1)
        fallback[fallback] = ~_bools(pc.is_in(third, value_set=pa.array(["", "0"])))
    match_len[fallback] = 2
    stripped = np.zeros(len(rows), dtype=bool)
    rests: list[tuple[np.ndarray, pa.Array]] = []
    for size in unique(match_len[match_len >= 0]).tolist():
        idx = np.flatnonzero(match_len == size)
        rest = _drop(values.take(pa.array(idx)), size)
        ok = ~_bools(pc.starts_with(rest, "0"))
        stripped[idx[ok]] = True
        rests.append((idx[ok], rest.filter(pa.array(ok))))
    if not rests:
        return stripped, pa.array([], _STRING)
    order = np.argsort(np.concatenate([r[0] for r in rests]), kind="stable")
    return stripped, pa.concat_arrays([r[1] for r in rests]).take(pa.array(order))


def _strip_national_prefix(values: pa.Array, rules: _Rules) -> tuple[pa.Array, np.ndarray]:
    """_maybe_strip_national_prefix_carrier_code on each number.

    Returns (candidates, stripped): where ``stripped`` is set, the candidate is the number
    with its national prefix (and carrier code) removed or transformed; elsewhere the
    candidate is meaningless and the number is kept as it is.
    """
    stripped = np.zeros(len(values), dtype=bool)
    if not rules.npfp or len(values) == 0:
        return values, stripped
    hit = _prefix(values, rules.npfp)
    if not hit.any():
        return values, stripped
    if _LITERAL.fullmatch(rules.npfp) and not rules.transform:
        cand = _drop(values, len(rules.npfp))  # cheaper than filtering
        sub_cand = None
    else:
        sub = values.filter(pa.array(hit))
        sub_cand = _sub_prefix(sub, rules.npfp, "")
        if rules.transform:
            transformed = _last_group_set(
                sub, rules.npfp, rules.transform_group, rules.transform_group_nonempty
            )
            if transformed.any():
                mask = pa.array(transformed)
                sub_cand = pc.replace_with_mask(
                    sub_cand, mask, _sub_prefix(sub.filter(mask), rules.npfp, rules.transform)
                )
        cand = pc.replace_with_mask(values, pa.array(hit), sub_cand)
    stripped = hit.copy()
    # "If the original number was viable and the result is not, keep the original."
    viable = hit.copy()
    if hit.all():
        viable &= _desc_match(values, _lengths(values), rules.general, check_lengths=False)
    else:
        sub = values.filter(pa.array(hit))
        viable[hit] = _desc_match(sub, _lengths(sub), rules.general, check_lengths=False)
    if viable.any():
        idx = np.flatnonzero(viable)
        kept = cand.take(pa.array(idx))
        stripped[idx] = _desc_match(kept, _lengths(kept), rules.general, check_lengths=False)
    return cand, stripped


def _national_number(values: pa.Array, rules: _Rules) -> pa.Array:
    """The end of parse: strip the national prefix only if the rest has a possible length."""
    cand, stripped = _strip_national_prefix(values, rules)
    if not stripped.any():
        return values
    result = rules.length_result[np.minimum(_lengths(cand), _LEN_TABLE_SIZE - 1)]
    use = stripped & ((result == _LEN_POSSIBLE) | (result == _LEN_LONG))
    if use.all():
        return cand
    return pc.if_else(pa.array(use), cand, values)


def _add_national(parsed: _Parsed, cc: int, rows: _Rows, rules: _Rules) -> None:
    rows = rows.pick(_lengths(rows.values) >= _MIN_NSN)
    if len(rows) == 0:
        return
    parsed_rows = rows.with_values(_national_number(rows.values, rules))
    parsed_rows = parsed_rows.pick(_lengths(parsed_rows.values) <= _MAX_NSN)
    parsed.pos.append(parsed_rows.pos)
    parsed.cc.append(cc)
    parsed.nsn.append(parsed_rows.values)


def _add_international(parsed: _Parsed, rows: _Rows) -> _Rows:
    """Rows after a '+' or IDD; returns those without a known calling code."""
    rows = rows.pick(_lengths(rows.values) > _MIN_NSN)
    groups, unknown = _split_cc(rows)
    for cc, national in groups:
        _add_national(parsed, cc, national, _rules_for_cc(cc))
    return unknown


def _add_default_region(parsed: _Parsed, rows: _Rows, rules: _Rules) -> None:
    """Numbers without an international prefix: national format, or the region's code."""
    code = str(rules.country_code)
    values = rows.values
    with_code = _bools(pc.starts_with(values, code))
    use_code = np.zeros(len(rows), dtype=bool)
    national = values
    if with_code.any():
        idx = np.flatnonzero(with_code)
        full = values.take(pa.array(idx))
        full_lens = _lengths(full)
        after = _drop(full, len(code))
        cand, stripped = _strip_national_prefix(after, rules)
        potential = pc.if_else(pa.array(stripped), cand, after) if stripped.any() else after
        better = ~_desc_match(full, full_lens, rules.general, check_lengths=False) & _desc_match(
            potential, _lengths(potential), rules.general, check_lengths=False
        )
        too_long = rules.length_result[np.minimum(full_lens, _LEN_TABLE_SIZE - 1)] == _LEN_LONG
        take = better | too_long
        use_code[idx[take]] = True
        if take.any():
            national = pc.replace_with_mask(
                values, pa.array(use_code), potential.filter(pa.array(take))
            )
    rows = rows.with_values(national)
    if use_code.any():
        _add_national(
            parsed, rules.country_code, rows.pick(use_code), _rules_for_cc(rules.country_code)
        )
    _add_national(parsed, rules.country_code, rows.pick(~use_code), rules)


def _parse(strings: pa.Array, region: str) -> _Parsed:
    rules = _rules_for_region(region)
    parsed = _Parsed([], [], [])
    with_plus, national = _extract_digits(strings)
    # '+' then the calling code; if that fails phonenumbers retries without the '+'
    # (so "+0033…" works), accepting only an international prefix then.
    retry = _add_international(parsed, with_plus)
    stripped, rest = _strip_idd(retry, rules)
    _add_international(parsed, retry.pick(stripped).with_values(rest))
    stripped, rest = _strip_idd(national, rules)
    _add_international(parsed, national.pick(stripped).with_values(rest))
    _add_default_region(parsed, national.pick(~stripped), rules)
    return parsed
