"""MSISDN (recipient phone number) normalisation and classification, vectorised.

Why this module exists: ``phonenumbers.parse`` + ``is_valid_number`` costs ~17 s per million
rows, far too slow for campaign files. The rules it applies are data (libphonenumber's
metadata), so we compile that data once into RE2 regexes and apply them with pyarrow compute
to whole columns, grouped by country calling code: the cost is O(rows) of regex work plus
O(distinct countries) of Python.

The results follow ``phonenumbers`` exactly (``parse`` then ``is_valid_number``,
``number_type``, ``region_code_for_number``, ``format_number(E164)``) for the input syntax we
accept; the deliberate divergences are listed in ``docs/PROTOCOL.md``:

* only ASCII digits, one leading ``+``, whitespace (any Unicode space) and ``. - ( ) /`` are
  accepted; letters, extensions, ``tel:`` URIs, ``++`` and other characters make a row INVALID
  with a null ``e164`` (phonenumbers is more lenient and would read e.g. ``Tel: 06…`` or
  vanity letters);
* ``00`` followed by a non-zero digit is an international prefix for every default region
  (libphonenumber only knows the default region's own prefix, e.g. ``011`` for US);
* ``e164`` is set whenever phonenumbers could parse the digits, even when the number is not
  valid (it is what a user typed, canonicalised): filter on ``status`` to use it.
"""

from __future__ import annotations

import re
import re._constants as _sre_c
import re._parser as _sre_parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

__all__ = ["MsisdnStatus", "classify", "mask", "mask_one", "network_names"]


class MsisdnStatus(StrEnum):
    """What a recipient number is good for: only MOBILE numbers can receive an SMS."""

    MOBILE = "mobile"
    NOT_MOBILE = "not_mobile"
    INVALID = "invalid"


# Constants of phonenumbers.phonenumberutil (private there, so restated here).
_MIN_NSN = 2
_MAX_NSN = 17
_MAX_INPUT = 250
_NON_GEO = "001"

# Internal status codes; the public column uses the MsisdnStatus strings.
_INVALID, _MOBILE, _NOT_MOBILE = 0, 1, 2
_STATUS_CATEGORIES = [
    MsisdnStatus.MOBILE.value,
    MsisdnStatus.NOT_MOBILE.value,
    MsisdnStatus.INVALID.value,
]
_STATUS_TO_CATEGORY = np.array([2, 0, 1], dtype=np.int8)  # internal code -> category code

# Separators accepted anywhere: ASCII and Unicode spaces (NBSP, narrow NBSP…) and . - ( ) /.
_SEP = r"\s\p{Z}.()/\-"
_SYNTAX = rf"^[{_SEP}]*\+?[{_SEP}0-9]*$"
# Separators removed with plain string kernels before falling back to the regexes above.
_QUICK_SEPARATORS = ("", " ", ".", "-", "\u00a0", "(", ")", "/", "\u202f")
# Two-digit numbers are viable only when written as exactly two digits (phonenumbers rule).
_TWO_DIGITS = r"^[^0-9+]*[0-9]{2}[^0-9]*$"

# _test_number_length results (phonenumbers.ValidationResult, without the enum import).
_LEN_POSSIBLE, _LEN_LOCAL, _LEN_SHORT, _LEN_INVALID, _LEN_LONG = range(5)
_LEN_TABLE_SIZE = _MAX_INPUT + 1

_DIGITS = frozenset("0123456789")
_LITERAL = re.compile(r"[0-9]+")
_REWRITE = re.compile(r"(?:[0-9]|\\[0-9])*")  # rewrites RE2 and Python read the same way

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

_STRING = pa.string()


# --------------------------------------------------------------------------------------------
# Regex primitives: RE2 through pyarrow, or Python `re` over distinct values as a fallback.
# Every input array holds ASCII digits only and has no nulls.
# --------------------------------------------------------------------------------------------


@cache
def _re2_ok(pattern: str) -> bool:
    """Whether pyarrow's RE2 accepts ``pattern`` (libphonenumber targets Java/Python regexes).

    Checked once per pattern; a pattern RE2 rejects is applied with Python's ``re`` to the
    distinct values instead (slower, still no per-row call into phonenumbers).
    """
    try:
        pc.match_substring_regex(pa.array(["0"], _STRING), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _py_map(arr: pa.Array, func: Callable[[str], object]) -> tuple[list[object], np.ndarray]:
    """Apply ``func`` to each distinct value: returns (results, index of each row's value)."""
    uniq = pc.unique(arr)
    results = [func(v) for v in uniq.to_pylist()]
    return results, pc.index_in(arr, uniq).to_numpy(zero_copy_only=False)


def _py_bool(arr: pa.Array, func: Callable[[str], bool]) -> np.ndarray:
    results, idx = _py_map(arr, func)
    return np.asarray(results, dtype=bool)[idx] if len(arr) else np.zeros(0, bool)


def _drop(arr: pa.Array, count: int) -> pa.Array:
    """Remove the first ``count`` bytes: our strings are ASCII digits (or start with an ASCII
    '+'), and this kernel is ~3x faster than utf8_slice_codeunits."""
    return pc.binary_replace_slice(arr, 0, count, "")


def _head(arr: pa.Array, count: int) -> pa.Array:
    """The first ``count`` bytes (ASCII digits), like _drop."""
    return pc.binary_replace_slice(arr, count, _LEN_TABLE_SIZE, "")


def _bools(arr: pa.Array) -> np.ndarray:
    if arr.null_count:
        arr = arr.fill_null(False)
    return arr.to_numpy(zero_copy_only=False)


def _fullmatch(arr: pa.Array, pattern: str) -> np.ndarray:
    """``re.fullmatch(pattern, value)`` for each value."""
    if len(arr) == 0:
        return np.zeros(0, bool)
    anchored = f"^(?:{pattern})$"
    if _re2_ok(anchored):
        return _bools(pc.match_substring_regex(arr, anchored))
    compiled = re.compile(pattern)
    return _py_bool(arr, lambda v: compiled.fullmatch(v) is not None)


def _prefix(arr: pa.Array, pattern: str) -> np.ndarray:
    """``re.match(pattern, value)`` (a match at the start) for each value."""
    if len(arr) == 0:
        return np.zeros(0, bool)
    if _LITERAL.fullmatch(pattern):
        return _bools(pc.starts_with(arr, pattern))
    anchored = f"^(?:{pattern})"
    if _re2_ok(anchored):
        return _bools(pc.match_substring_regex(arr, anchored))
    compiled = re.compile(pattern)
    return _py_bool(arr, lambda v: compiled.match(v) is not None)


def _sub_prefix(arr: pa.Array, pattern: str, rewrite: str) -> pa.Array:
    """``re.sub(pattern, rewrite, value, count=1)`` for values known to match at the start."""
    if len(arr) == 0:
        return arr
    if not rewrite and _LITERAL.fullmatch(pattern):
        return _drop(arr, len(pattern))
    anchored = f"^(?:{pattern})"
    if _REWRITE.fullmatch(rewrite) and _re2_ok(anchored):
        return pc.replace_substring_regex(arr, anchored, rewrite, max_replacements=1)
    compiled = re.compile(pattern)
    results, idx = _py_map(arr, lambda v: compiled.sub(rewrite, v, count=1))
    return pa.array(results, _STRING).take(pa.array(idx))


def _prefix_len(arr: pa.Array, pattern: str) -> np.ndarray:
    """Length of ``re.match(pattern, value)`` for each value, -1 when it does not match."""
    out = np.full(len(arr), -1, dtype=np.int64)
    if len(arr) == 0:
        return out
    if _LITERAL.fullmatch(pattern):
        out[_bools(pc.starts_with(arr, pattern))] = len(pattern)
        return out
    hit = _prefix(arr, pattern)
    if not hit.any():
        return out
    sub = arr.filter(pa.array(hit))
    extractor = f"^(?P<m>(?:{_drop_groups(pattern)}))"
    if _re2_ok(extractor):
        found = pc.extract_regex(sub, extractor).field("m")
        out[hit] = pc.binary_length(found).to_numpy(zero_copy_only=False)
    else:
        compiled = re.compile(pattern)
        results, idx = _py_map(sub, lambda v: compiled.match(v).end())
        out[hit] = np.asarray(results, dtype=np.int64)[idx]
    return out


def _last_group_set(arr: pa.Array, pattern: str, groups: int, nonempty: bool) -> np.ndarray:
    """Whether the last capturing group took part in ``re.match(pattern, value)``.

    pyarrow reports a group that did not take part as "", so RE2 is only used when the group
    cannot match an empty string (true for every transform rule in the metadata).
    """
    if len(arr) == 0:
        return np.zeros(0, bool)
    extractor = f"^(?:{_name_groups(pattern)})"
    if nonempty and _re2_ok(extractor):
        found = pc.extract_regex(arr, extractor).field(f"g{groups}")
        return _bools(pc.greater(pc.binary_length(found), 0))
    compiled = re.compile(pattern)

    def took_part(value: str) -> bool:
        match = compiled.match(value)
        return match is not None and match.group(groups) is not None

    return _py_bool(arr, took_part)


def _structure(pattern: str) -> Iterator[tuple[int, str]]:
    """Positions and characters of ``pattern`` outside escapes and character classes (where
    "(" and ")" mean groups)."""
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        else:
            yield i, ch
        i += 1


def _scan_groups(pattern: str) -> list[int]:
    """Positions of the "(" opening each capturing group, in group-number order."""
    return [i for i, ch in _structure(pattern) if ch == "(" and pattern[i + 1 : i + 2] != "?"]


def _name_groups(pattern: str) -> str:
    """Name capturing groups g1, g2… (pyarrow's extract_regex rejects unnamed groups)."""
    out, last = [], 0
    for number, pos in enumerate(_scan_groups(pattern), start=1):
        out.append(pattern[last:pos] + f"(?P<g{number}>")
        last = pos + 1
    return "".join(out) + pattern[last:]


def _drop_groups(pattern: str) -> str:
    """Make capturing groups non-capturing (pyarrow's extract_regex rejects unnamed groups)."""
    out, last = [], 0
    for pos in _scan_groups(pattern):
        out.append(pattern[last:pos] + "(?:")
        last = pos + 1
    return "".join(out) + pattern[last:]


# --------------------------------------------------------------------------------------------
# Regex analysis: lengths a pattern can match, and exact language inclusion between patterns.
# --------------------------------------------------------------------------------------------


class _Unsupported(Exception):
    """A regex construct the analysis does not model: the caller then skips the shortcut."""


class _Nfa:
    """Thompson automaton of a pattern over the ten ASCII digits, determinised lazily.

    Sets of NFA states are interned as integers so that walking products of automata only
    hashes pairs of ints.
    """

    def __init__(
        self, eps: list[list[int]], edges: list[list[tuple[frozenset[str], int]]], accept: int
    ) -> None:
        self.eps, self.edges, self.accept = eps, edges, accept
        self.ids: dict[frozenset[int], int] = {}
        self.accepting: list[bool] = []
        self.moves: dict[tuple[int, str], int] = {}
        self._sets: list[frozenset[int]] = []
        self.start = self._intern(self._closure({0}))  # the start state is 0
        self.empty = self._intern(frozenset())

    def _closure(self, states: set[int]) -> frozenset[int]:
        seen, todo = set(states), list(states)
        while todo:
            for nxt in self.eps[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def _intern(self, states: frozenset[int]) -> int:
        found = self.ids.get(states)
        if found is None:
            found = self.ids[states] = len(self._sets)
            self._sets.append(states)
            self.accepting.append(self.accept in states)
        return found

    def step(self, state: int, digit: str) -> int:
        found = self.moves.get((state, digit))
        if found is None:
            targets = {t for s in self._sets[state] for chars, t in self.edges[s] if digit in chars}
            found = self.moves[(state, digit)] = self._intern(self._closure(targets))
        return found


def _charset(op: object, av: object) -> frozenset[str]:
    c = _sre_c
    if op is c.LITERAL:
        return frozenset(chr(av)) & _DIGITS
    if op is c.NOT_LITERAL:
        return _DIGITS - {chr(av)}
    if op is c.ANY:
        return _DIGITS
    if op is c.IN:
        chars: set[str] = set()
        negate = False
        for sub_op, sub_av in av:
            if sub_op is c.NEGATE:
                negate = True
            elif sub_op is c.LITERAL:
                chars.add(chr(sub_av))
            elif sub_op is c.RANGE:
                chars.update(chr(x) for x in range(sub_av[0], min(sub_av[1], 0x7F) + 1))
            elif sub_op is c.CATEGORY and sub_av in (c.CATEGORY_DIGIT, c.CATEGORY_UNI_DIGIT):
                chars.update(_DIGITS)
            elif sub_op is c.CATEGORY and sub_av in (
                c.CATEGORY_NOT_DIGIT,
                c.CATEGORY_UNI_NOT_DIGIT,
            ):
                pass
            else:
                raise _Unsupported(sub_op)
        return frozenset(_DIGITS - chars if negate else _DIGITS & chars)
    raise _Unsupported(op)


@cache
def _nfa(pattern: str) -> _Nfa:
    eps: list[list[int]] = []
    edges: list[list[tuple[frozenset[str], int]]] = []

    def new() -> int:
        eps.append([])
        edges.append([])
        return len(eps) - 1

    def seq(items: Sequence[tuple[object, object]], state: int) -> int:
        for op, av in items:
            state = item(op, av, state)
        return state

    def item(op: object, av: object, state: int) -> int:
        c = _sre_c
        if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
            target = new()
            edges[state].append((_charset(op, av), target))
            return target
        if op is c.SUBPATTERN:
            return seq(av[-1], state)
        if op is c.BRANCH:
            end = new()
            for alternative in av[1]:
                eps[seq(alternative, state)].append(end)
            return end
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, body = av
            for _ in range(low):
                state = seq(body, state)
            if high is c.MAXREPEAT:
                loop = new()
                eps[state].append(loop)
                eps[seq(body, loop)].append(loop)
                return loop
            if high - low > 64:
                raise _Unsupported("long repeat")
            end = new()
            for _ in range(high - low):
                eps[state].append(end)
                state = seq(body, state)
            eps[state].append(end)
            return end
        raise _Unsupported(op)

    start = new()
    accept = seq(_sre_parse.parse(pattern), start)
    return _Nfa(eps, edges, accept)


def _width(pattern: str) -> tuple[int, int]:
    """Shortest and longest strings the pattern can match (a cheap pre-filter on length)."""
    try:
        low, high = _sre_parse.parse(pattern).getwidth()
    except Exception:  # noqa: BLE001 - the bounds are only an optimisation
        return 0, _LEN_TABLE_SIZE
    return low, min(high, _LEN_TABLE_SIZE)


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
    low, high = _width(pattern)
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
    return _pair_ok(source, required, True) and all(
        _pair_ok(source, other, False) for other in forbidden
    )


def _pair_ok(source: _Desc, other: _Desc, inside: bool) -> bool:
    """``source`` inside ``other`` (inside=True) or disjoint from it (inside=False)."""
    try:
        first, second = _nfa(source.pattern), _nfa(other.pattern)
    except (_Unsupported, re.error, RecursionError):
        return False
    max_len = min(max(source.lengths, default=_MAX_NSN), _MAX_NSN)
    level = {(first.start, second.start)}
    for length in range(max_len + 1):
        if source.accepts_length(length):
            for mine, theirs in level:
                if first.accepting[mine]:
                    matched = second.accepting[theirs] and other.accepts_length(length)
                    if matched != inside:
                        return False
        if length == max_len:
            return True
        level = {
            (a, second.step(b, digit))
            for mine, b in level
            for digit in "0123456789"
            if (a := first.step(mine, digit)) != first.empty
        }
        if len(level) > 20_000:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Metadata compiled per region (lazily, cached).
# --------------------------------------------------------------------------------------------


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


@cache
def _cc_prefixes() -> list[pa.Array]:
    """Country calling codes as strings, by length (1, 2, 3 digits)."""
    by_len: list[list[str]] = [[], [], []]
    for code in COUNTRY_CODE_TO_REGION_CODE:
        by_len[len(str(code)) - 1].append(str(code))
    return [pa.array(sorted(codes), _STRING) for codes in by_len]


# --------------------------------------------------------------------------------------------
# Matching against the metadata.
# --------------------------------------------------------------------------------------------


def _lengths(arr: pa.Array) -> np.ndarray:
    return pc.binary_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)


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


# --------------------------------------------------------------------------------------------
# Parsing: reproduces phonenumbers.parse for the accepted syntax, on whole columns.
# --------------------------------------------------------------------------------------------


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


def _to_strings(raw: pd.Series) -> pa.Array:
    """The column as one pyarrow string array; non-string cells (except integers) are null."""
    if pd.api.types.is_integer_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        arr = pa.array(raw, from_pandas=True).cast(_STRING)
    else:
        try:
            arr = pa.array(raw, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = None
        if arr is None or not (
            pa.types.is_string(arr.type)
            or pa.types.is_large_string(arr.type)
            or pa.types.is_null(arr.type)
        ):
            # Mixed object column: rare, so a Python pass is acceptable here.
            arr = pa.array(
                [
                    v
                    if isinstance(v, str)
                    else (str(v) if isinstance(v, int) and not isinstance(v, bool) else None)
                    for v in raw
                ],
                _STRING,
            )
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(_STRING)


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
        for code in [int(ccs[0])] if (ccs == ccs[0]).all() else np.unique(ccs).tolist():
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
    for size in np.unique(match_len[match_len >= 0]).tolist():
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


# --------------------------------------------------------------------------------------------
# Public API.
# --------------------------------------------------------------------------------------------


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

    string_dtype = pd.StringDtype("pyarrow")
    return pd.DataFrame(
        {
            "e164": pd.array(e164, dtype=string_dtype),
            "status": pd.Categorical.from_codes(
                _STATUS_TO_CATEGORY[status], categories=_STATUS_CATEGORIES
            ),
            "country": pd.array(country, dtype=string_dtype),
        },
        index=raw.index,
    )


_E164_SHAPE = r"^\+[0-9]{2,20}$"
_MASK_HIDDEN = "***"
_MASK_KEEP_MIN_NSN = 5  # shorter national numbers show no digit at all


def mask(e164: pd.Series) -> pd.Series:
    """Mask numbers for logs and reject files: "+33612345678" -> "+33*******78".

    Keeps "+", the calling code and the last two digits (none when the national number is
    shorter than 5 digits); anything that is not an E.164 string becomes "***", so a log
    never shows a full number whatever it is given. Nulls stay null.
    """
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
        for size in np.unique(cc_len).tolist():
            for keep in np.unique(shown[cc_len == size]).tolist():
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
    return pd.Series(
        pd.array(out, dtype=pd.StringDtype("pyarrow")), index=e164.index, name=e164.name
    )


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


# --------------------------------------------------------------------------------------------
# Mobile network (carrier) of a number range.
# --------------------------------------------------------------------------------------------

_NETWORK_LANG = "en"


@dataclass(frozen=True)
class _NetworkTable:
    """The carrier prefixes of one length: sorted keys and, for each, its name's code."""

    length: int
    keys: pa.Array
    codes: np.ndarray


@cache
def _network_tables() -> tuple[pa.Array, tuple[_NetworkTable, ...]]:
    """(distinct network names, per-length prefix tables longest first), built once.

    A prefix without an English name is left out, as libphonenumber skips it to try a
    shorter one.
    """
    from phonenumbers.carrierdata import CARRIER_DATA  # imported when needed: ~30 ms

    names: dict[str, int] = {}
    by_length: dict[int, dict[str, int]] = {}
    for prefix, langs in CARRIER_DATA.items():
        name = langs.get(_NETWORK_LANG)
        if name:
            code = names.setdefault(name, len(names))
            by_length.setdefault(len(prefix), {})[prefix] = code
    tables = tuple(
        _NetworkTable(
            length,
            pa.array(sorted(keys), _STRING),
            np.array([keys[k] for k in sorted(keys)], dtype=np.int32),
        )
        for length, keys in sorted(by_length.items(), reverse=True)
    )
    return pa.array(list(names), _STRING), tables


def _network_codes(digits: pa.Array) -> np.ndarray:
    """Longest-prefix match of each digit string: the network name's code, -1 for none.

    One whole-array lookup per prefix length, longest first, on the rows not matched yet.
    """
    _, tables = _network_tables()
    codes = np.full(len(digits), -1, dtype=np.int32)
    todo = np.arange(len(digits))
    rest = digits
    for table in tables:
        if len(todo) == 0:
            break
        found = pc.index_in(_head(rest, table.length), value_set=table.keys)
        pos = pc.fill_null(found, -1).to_numpy(zero_copy_only=False)
        hit = pos >= 0
        if not hit.any():
            continue
        codes[todo[hit]] = table.codes[pos[hit]]
        todo = todo[~hit]
        rest = rest.filter(pa.array(~hit))
    return codes


def network_names(e164: pd.Series, status: pd.Series | None = None) -> pd.Series:
    """The mobile network each number range was allocated to ("SFR", "Orange France"…).

    libphonenumber's carrier data (English names), longest prefix first: the same answer as
    ``phonenumbers.carrier.name_for_number(number, "en")``, with null for "". Because of
    number portability this is the range's *original* network, which is all libphonenumber
    knows: a subscriber may have moved to another network since.

    Only numbers that can receive an SMS (:class:`MsisdnStatus` MOBILE) get a name, as
    ``name_for_number`` names only mobile numbers (and pagers, which have no carrier data
    and are not MOBILE here). ``e164`` holds E.164 numbers (:func:`classify`'s ``e164``);
    ``status`` is :func:`classify`'s status of the same rows when the caller has it, which
    saves classifying them again here (without it, a value not starting with "+" gets no
    name). Returns a string[pyarrow] Series named ``network`` with the index of ``e164``,
    null when the network is unknown. Vectorised: one whole-array lookup per prefix length
    (~0.15 s per million numbers with ``status``).
    """
    strings = _to_strings(e164)
    if status is None:
        numbers = classify(e164)
        status = numbers["status"]
        mobile = _bools(pc.starts_with(strings, "+"))
        strings = _to_strings(numbers["e164"])
    else:
        mobile = _bools(pc.is_valid(strings))
    is_mobile = pd.Series(status).eq(MsisdnStatus.MOBILE.value)
    mobile &= is_mobile.to_numpy(dtype=bool, na_value=False)
    codes = np.full(len(strings), -1, dtype=np.int32)
    if mobile.all():
        codes = _network_codes(_drop(strings, 1))
    elif mobile.any():
        codes[mobile] = _network_codes(_drop(strings.filter(pa.array(mobile)), 1))
    names, _ = _network_tables()
    found = names.take(pa.array(codes, mask=codes < 0))
    return pd.Series(
        pd.array(found, dtype=pd.StringDtype("pyarrow")), index=e164.index, name="network"
    )
