"""What a regex means, read from CPython's own parser: groups, widths and languages.

Why a module of its own: the exact analysis below (lengths a pattern can match, whether one
pattern's language lies inside or outside another's) walks the parse tree of
``re._parser``, a private CPython API that may change with any Python release. This is the
only module of smsdrop touching it, and it imports nothing outside the standard library, so
it can be checked on a new Python alone. ``tests/smsdrop/test_msisdn_regex_engine.py``
fails on a Python version not in ``_VERIFIED_ON`` and when a name or tree shape relied on
here changes.

Patterns are libphonenumber's (digits, classes, groups, alternations, bounded repeats) and
strings are ASCII digits: anything else raises ``_Unsupported`` and the caller skips the
shortcut it wanted, so an unknown construct costs speed, never a wrong answer.
"""

from __future__ import annotations

import re
import re._constants as _sre_c
import re._parser as _sre_parse
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Protocol

#: Python versions (major, minor) on which the use of re._parser below was verified.
_VERIFIED_ON = ((3, 11), (3, 12), (3, 13))

_DIGITS = frozenset("0123456789")


# --------------------------------------------------------------------------------------------
# Groups, read from the pattern's text (no private API).
# --------------------------------------------------------------------------------------------


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
# Languages: lengths a pattern can match, and exact inclusion between patterns.
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


def _width(pattern: str, limit: int) -> tuple[int, int]:
    """Shortest and longest strings the pattern can match, at most ``limit`` (a cheap
    pre-filter on length)."""
    try:
        low, high = _sre_parse.parse(pattern).getwidth()
    except Exception:  # noqa: BLE001 - the bounds are only an optimisation
        return 0, limit
    return low, min(high, limit)


class _Language(Protocol):
    """A pattern whose matches are also limited to some lengths (none: any length)."""

    pattern: str
    lengths: frozenset[int]

    def accepts_length(self, length: int) -> bool: ...


def _pair_ok(source: _Language, other: _Language, inside: bool, max_len: int) -> bool:
    """``source`` inside ``other`` (inside=True) or disjoint from it (inside=False).

    Exact over digit strings up to ``max_len`` long, by walking the product of the two
    automata; False when unsure (a construct not modelled, too many states).
    """
    try:
        first, second = _nfa(source.pattern), _nfa(other.pattern)
    except (_Unsupported, re.error, RecursionError):
        return False
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
