"""The regex engine's footing: CPython's private ``re._parser``, checked on every Python.

``smsdrop.msisdn.regex_engine`` reads the parse trees of ``re._parser`` (no public API gives
them). These tests fail on a Python the engine was not verified on, and as soon as a name or
a tree shape it relies on changes, saying what to re-verify; the last ones check its answers
against ``re`` itself on every short digit string.
"""

from __future__ import annotations

import itertools
import re
import re._constants as sre_c
import re._parser as sre_parse
import sys
from pathlib import Path

import pytest

import smsdrop
from smsdrop.msisdn import regex_engine

REVERIFY = (
    "re-verify include/smsdrop/msisdn/regex_engine.py on this Python: the names of "
    "re._parser and re._constants it uses (OPCODES here), the parse tree shapes of "
    "test_parse_tree_shapes, then tests/smsdrop/test_msisdn*.py (the agreement with "
    "phonenumbers); then add the version to regex_engine._VERIFIED_ON"
)

#: Every name of re._constants the engine reads (``_charset``, ``_nfa``).
OPCODES = (
    "LITERAL",
    "NOT_LITERAL",
    "ANY",
    "IN",
    "NEGATE",
    "RANGE",
    "CATEGORY",
    "CATEGORY_DIGIT",
    "CATEGORY_UNI_DIGIT",
    "CATEGORY_NOT_DIGIT",
    "CATEGORY_UNI_NOT_DIGIT",
    "SUBPATTERN",
    "BRANCH",
    "MAX_REPEAT",
    "MIN_REPEAT",
    "MAXREPEAT",
)

_DIGIT = ("IN", [("CATEGORY", "CATEGORY_DIGIT")])


def plain(node: object) -> object:
    """A parse tree as lists, tuples and ints, opcodes by name (checked to be re._constants'
    own objects, as the engine compares them with ``is``)."""
    if isinstance(node, sre_parse.SubPattern | list):
        return [plain(item) for item in node]
    if isinstance(node, tuple):
        return tuple(plain(item) for item in node)
    if node is sre_c.MAXREPEAT:
        return "MAXREPEAT"
    name = getattr(node, "name", None)
    if isinstance(node, int) and isinstance(name, str):
        assert getattr(sre_c, name, None) is node, f"re._constants.{name} changed: {REVERIFY}"
        return name
    return node


def test_python_is_one_the_engine_was_verified_on() -> None:
    version = sys.version_info[:2]
    assert version in regex_engine._VERIFIED_ON, (
        f"Python {version[0]}.{version[1]} is not in regex_engine._VERIFIED_ON "
        f"{regex_engine._VERIFIED_ON}: {REVERIFY}"
    )


def test_private_names_the_engine_uses_exist() -> None:
    missing = [name for name in OPCODES if not hasattr(sre_c, name)]
    assert not missing, f"re._constants lacks {missing}: {REVERIFY}"
    assert callable(getattr(sre_parse, "parse", None)), f"re._parser.parse is gone: {REVERIFY}"
    tree = sre_parse.parse("1")
    assert isinstance(tree, sre_parse.SubPattern) and callable(getattr(tree, "getwidth", None)), (
        f"re._parser.parse no longer gives a SubPattern with getwidth(): {REVERIFY}"
    )


@pytest.mark.parametrize(
    ("pattern", "tree", "width"),
    [
        ("7", [("LITERAL", 55)], (1, 1)),
        ("[^5]", [("NOT_LITERAL", 53)], (1, 1)),
        (".", [("ANY", None)], (1, 1)),
        ("[1-9]", [("IN", [("RANGE", (49, 57))])], (1, 1)),
        ("[^1-3]", [("IN", [("NEGATE", None), ("RANGE", (49, 51))])], (1, 1)),
        (r"\d", [_DIGIT], (1, 1)),
        (r"\D", [("IN", [("CATEGORY", "CATEGORY_NOT_DIGIT")])], (1, 1)),
        (r"[2-4\d]", [("IN", [("RANGE", (50, 52)), ("CATEGORY", "CATEGORY_DIGIT")])], (1, 1)),
        ("(12)", [("SUBPATTERN", (1, 0, 0, [("LITERAL", 49), ("LITERAL", 50)]))], (2, 2)),
        (
            "(?:1|23)4",
            [
                ("BRANCH", (None, [[("LITERAL", 49)], [("LITERAL", 50), ("LITERAL", 51)]])),
                ("LITERAL", 52),
            ],
            (2, 3),
        ),
        ("1|2", [("IN", [("LITERAL", 49), ("LITERAL", 50)])], (1, 1)),
        (r"\d{2,5}", [("MAX_REPEAT", (2, 5, [_DIGIT]))], (2, 5)),
        (r"\d*", [("MAX_REPEAT", (0, "MAXREPEAT", [_DIGIT]))], (0, None)),
        (r"\d+?", [("MIN_REPEAT", (1, "MAXREPEAT", [_DIGIT]))], (1, None)),
    ],
)
def test_parse_tree_shapes(pattern: str, tree: list[object], width: tuple[int, int | None]) -> None:
    """The shapes ``_charset`` and ``_nfa`` read: (op, argument) pairs, SUBPATTERN's body
    last, BRANCH's alternatives second, repeats as (low, high, body); and getwidth() (None:
    unbounded, beyond any length ``_width`` is asked about)."""
    parsed = sre_parse.parse(pattern)
    assert plain(parsed) == tree, f"re._parser's tree of {pattern!r} changed: {REVERIFY}"
    low, high = parsed.getwidth()
    unbounded = width[1] is None and high >= 2**31
    assert low == width[0] and (high == width[1] or unbounded), (
        f"getwidth() of {pattern!r} changed: {REVERIFY}"
    )


def _accepts(nfa: object, text: str) -> bool:
    state = nfa.start
    for digit in text:
        state = nfa.step(state, digit)
    return nfa.accepting[state]


@pytest.mark.parametrize(
    "pattern",
    [
        r"[1-9]\d{3}",
        r"6(?:0[1-9]|[1-9]\d)\d{0,2}",
        r"(?:1|23)4?",
        r"[^3-5]\d*",
        r"(?:[2-4]|9\d)\d+?",
        r"0?[67]",
        r".[^\D7]",
    ],
)
def test_automaton_accepts_what_re_matches(pattern: str) -> None:
    """On every digit string up to 5 long: the engine's language is re's."""
    nfa = regex_engine._nfa(pattern)
    compiled = re.compile(pattern)
    for length in range(6):
        for chars in itertools.product("0123456789", repeat=length):
            text = "".join(chars)
            assert _accepts(nfa, text) == (compiled.fullmatch(text) is not None), (
                f"{pattern!r} on {text!r}: {REVERIFY}"
            )


def test_width_and_unsupported_constructs() -> None:
    assert regex_engine._width(r"[1-9]\d{8}", 251) == (9, 9)
    assert regex_engine._width(r"\d+", 251) == (1, 251)
    assert regex_engine._width("(", 251) == (0, 251)
    for pattern in ("^1", "1$", r"(1)\1", "(?=1)1", r"\w"):
        with pytest.raises(regex_engine._Unsupported):
            regex_engine._nfa(pattern)


def test_groups_read_from_the_text() -> None:
    pattern = r"0(?:([1-9])|\()[(]?(\d)"
    assert regex_engine._scan_groups(pattern) == [4, 19]
    assert regex_engine._name_groups(pattern) == r"0(?:(?P<g1>[1-9])|\()[(]?(?P<g2>\d)"
    assert regex_engine._drop_groups(pattern) == r"0(?:(?:[1-9])|\()[(]?(?:\d)"


def test_only_the_engine_touches_the_private_api() -> None:
    """The rest of smsdrop keeps to public APIs, so a Python upgrade is checked here alone."""
    root = Path(smsdrop.__file__).parent
    use = re.compile(
        r"^\s*(?:import|from)\s+(?:re\._(?:parser|constants)|sre_\w+)\b"  # an import
        r"|\bre\._(?:parser|constants)\.",  # or an attribute reached through "import re"
        re.MULTILINE,
    )
    users = sorted(
        str(path.relative_to(root)) for path in root.rglob("*.py") if use.search(path.read_text())
    )
    assert users == ["msisdn/regex_engine.py"]
