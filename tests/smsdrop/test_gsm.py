"""Tests of smsdrop.gsm: golden cases, the gsm0338 oracle, transliteration, vectorisation.

Three independent views of the same facts are checked against each other: the readable
per-text reference (``text_facts``), the vectorised column path (``check_messages``) and the
third-party ``gsm0338`` codec (a test-only oracle: it encodes one septet per byte and an
extension character as ESC + code).
"""

from __future__ import annotations

import math
import unicodedata

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from gsm0338.charset import BASIC_CHARACTER_SET_EXTENSION
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsdrop import gsm
from smsdrop.gsm import (
    GSM_BASIC,
    GSM_EXTENSION,
    MAX_LONG_SEGMENTS,
    TRANSLITERATION,
    EncodingPolicy,
    TextFacts,
    check_messages,
    text_facts,
    transliterate,
)
from smsdrop.reasons import Reason

ESC = "\x1b"
#: Where the oracle differs from the 3GPP default alphabet: it encodes ESC (0x1B) as a
#: character, but ESC is the escape to the extension table, never text (docs/PROTOCOL.md).
ORACLE_DIFFERENCES = {ESC}
EMOJI = "😀"
SPEC_EXAMPLE = (
    "4P 79m2 3ème étage Imm ancien 2Chbres Volumes vue Parfait état "
    "http://www.URL.com/fr/ref-VSQR0339"
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ oracle helpers


def oracle_encode(text: str) -> bytes | None:
    """The oracle's septets (one per byte), or None when it cannot encode the text."""
    if ORACLE_DIFFERENCES.intersection(text):
        return None
    try:
        return text.encode("gsm03.38")
    except UnicodeEncodeError:
        return None


def slice_segments(units: list[int], single: int, part: int, is_pair_start) -> int:
    """Segments by slicing an encoded sequence, independent of the module's walk.

    Cut ``part`` units at a time; when the last unit of a slice starts a 2-unit pair (an ESC
    in GSM-7, a high surrogate in UTF-16) the slice is one shorter.
    """
    if len(units) <= single:
        return 1
    count, start = 0, 0
    while start < len(units):
        end = start + part
        if end < len(units) and is_pair_start(units[end - 1]):
            end -= 1
        count, start = count + 1, end
    return count


def oracle_facts(text: str) -> TextFacts:
    """TextFacts computed from the gsm0338 oracle and Python's UTF-16 codec only."""
    utf16 = text.encode("utf-16-le")
    code_units = [int.from_bytes(utf16[i : i + 2], "little") for i in range(0, len(utf16), 2)]
    septets = oracle_encode(text)
    non_gsm = tuple(dict.fromkeys(c for c in text if oracle_encode(c) is None))
    if septets is None:
        segments = slice_segments(code_units, 70, 67, lambda u: 0xD800 <= u <= 0xDBFF)
        return TextFacts("ucs2", False, None, len(code_units), segments, non_gsm)
    segments = slice_segments(list(septets), 160, 153, lambda b: b == 0x1B)
    return TextFacts("gsm7", True, len(septets), len(code_units), segments, ())


def expected_rows(msgs: list[str | None], policy: EncodingPolicy, long_sms: bool) -> list:
    """What check_messages must say for each row, from the reference functions."""
    limit = MAX_LONG_SEGMENTS if long_sms else 1
    rows = []
    for msg in msgs:
        if msg is None:
            rows.append((None, "gsm7", 0, Reason.MSG_EMPTY.value))
            continue
        final = transliterate(msg) if policy is EncodingPolicy.TRANSLITERATE else msg
        facts = text_facts(final)
        if not final.strip():
            reason = Reason.MSG_EMPTY.value
        elif not facts.gsm7 and policy is not EncodingPolicy.UCS2:
            reason = Reason.MSG_NOT_GSM.value
        elif facts.segments > limit:
            reason = Reason.MSG_TOO_LONG.value
        else:
            reason = None
        rows.append((final, facts.encoding, facts.segments, reason))
    return rows


def actual_rows(frame: pd.DataFrame) -> list:
    def value(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    return [
        (value(m), e, int(s), value(r))
        for m, e, s, r in zip(
            frame["msg"], frame["encoding"], frame["segments"], frame["reason"], strict=True
        )
    ]


# ------------------------------------------------------------------ tables


def test_basic_table_is_the_3gpp_default_alphabet_in_septet_order() -> None:
    assert len(GSM_BASIC) == 128 == len(set(GSM_BASIC))
    for septet, char in enumerate(GSM_BASIC):
        assert char.encode("gsm03.38") == bytes([septet]), (septet, char)
    assert GSM_BASIC[0x1B] == ESC
    # The vectorised scan relies on it: a 3- or 4-byte UTF-8 character is never basic GSM.
    assert max(len(c.encode()) for c in GSM_BASIC) == 2
    for char in "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ ¤¡ÄÖÑÜ§¿äöñüà":
        assert char in GSM_BASIC


def test_extension_table_matches_the_oracle() -> None:
    oracle = {
        unicodedata.lookup(name): code for code, name in BASIC_CHARACTER_SET_EXTENSION.items()
    }
    assert oracle == gsm._EXTENSION_CODE
    assert set(GSM_EXTENSION) == set(oracle) == set("\f^{}\\[~]|€")
    for char, code in oracle.items():
        assert char.encode("gsm03.38") == bytes([0x1B, code])
        assert text_facts(char).septets == 2


def test_esc_is_not_a_text_character_although_the_oracle_encodes_it() -> None:
    assert ESC.encode("gsm03.38") == b"\x1b"  # the documented oracle difference
    facts = text_facts("a" + ESC)
    assert not facts.gsm7 and facts.non_gsm == (ESC,)


def test_whitespace_set_is_pythons() -> None:
    assert set(gsm._WHITESPACE) == {chr(i) for i in range(0x110000) if chr(i).isspace()}


def test_event_scan_covers_every_ascii_character_that_is_not_plain_gsm() -> None:
    """The byte ranges of the fast scan must include every ASCII char that matters."""
    for code in range(128):
        char = chr(code)
        matters = gsm._SEPTETS.get(char) != 1 or char in TRANSLITERATION
        found = gsm._event_positions(np.frombuffer(char.encode(), dtype=np.uint8))
        assert not matters or list(found) == [0], repr(char)


# ------------------------------------------------------------------ golden cases


def test_spec_example_message() -> None:
    assert text_facts(SPEC_EXAMPLE) == TextFacts("gsm7", True, 97, 97, 1, ())


def test_euro_counts_two_septets() -> None:
    assert text_facts("€") == TextFacts("gsm7", True, 2, 1, 1, ())
    assert text_facts("a" * 158 + "€").segments == 1
    assert text_facts("a" * 159 + "€") == TextFacts("gsm7", True, 161, 160, 2, ())


@pytest.mark.parametrize(
    ("length", "segments"),
    [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (765, 5), (766, 6)],
)
def test_gsm7_segment_boundaries(length: int, segments: int) -> None:
    assert text_facts("a" * length).segments == segments


def test_escape_pair_straddling_a_boundary_moves_to_the_next_segment() -> None:
    straddling = "a" * 152 + "€" + "a" * 152  # € would be septets 153 and 154
    assert text_facts(straddling).septets == 306  # 306 / 153 = 2 parts if it could split...
    assert text_facts(straddling).segments == 3  # ...but it cannot: 152 + 153 + 1
    fitting = "a" * 151 + "€" + "a" * 153  # € is septets 152-153: fits in the first part
    assert text_facts(fitting).segments == 2
    second_boundary = "a" * 153 + "a" * 152 + "{" + "a"  # straddles 306/307
    assert text_facts(second_boundary).segments == 3


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (335, 5), (336, 6)]
)
def test_ucs2_segment_boundaries(length: int, segments: int) -> None:
    facts = text_facts("ê" * length)
    assert (facts.encoding, facts.ucs2_units, facts.segments) == ("ucs2", length, segments)


def test_emoji_straddling_the_ucs2_boundary_moves_to_the_next_segment() -> None:
    text = "ê" * 66 + EMOJI + "ê" * 66  # 134 units: 2 parts of 67 if the pair could split
    assert text_facts(text).ucs2_units == 134
    assert text_facts(text).segments == 3
    assert text_facts("ê" * 65 + EMOJI + "ê" * 67).segments == 2
    assert text_facts(EMOJI * 35).segments == 1 and text_facts(EMOJI * 36).segments == 2


def test_french_accents_split() -> None:
    for char in "éèàùìòÇÉäöñüÄÖÑÜåÅæÆøØß":
        assert text_facts(char).gsm7, char
    for char in "êôçâîûëïÊÔÀÈ`":
        assert text_facts(char).non_gsm == (char,), char


def test_non_gsm_lists_distinct_characters_in_order_of_appearance() -> None:
    facts = text_facts("çaçê`ç" + EMOJI + "ê")
    assert facts.non_gsm == ("ç", "ê", "`", EMOJI)
    assert facts.septets is None and facts.encoding == "ucs2" and facts.ucs2_units == 9


# ------------------------------------------------------------------ oracle properties

# Characters chosen to hit every branch: basic, extension (incl. form feed), near misses of
# the tables, controls, ESC, BMP non-GSM, astral, and what the transliteration handles.
INTERESTING = (
    GSM_BASIC + GSM_EXTENSION + "êôçœŒ’“”«»…–—`\t\u00a0\u202f\u200b\x00\x7f" + EMOJI + "𝄞🇫🇷"
)
texts = st.text(
    alphabet=st.one_of(st.sampled_from(INTERESTING), st.characters(codec="utf-8")),
    max_size=400,
)
gsm_texts = st.text(
    alphabet=st.sampled_from(GSM_BASIC.replace(ESC, "") + GSM_EXTENSION), max_size=400
)


@PROPERTY
@given(st.one_of(texts, gsm_texts))
def test_text_facts_agree_with_the_oracle(text: str) -> None:
    assert text_facts(text) == oracle_facts(text)


@PROPERTY
@given(st.one_of(texts, gsm_texts))
def test_ucs2_units_are_utf16_code_units(text: str) -> None:
    assert text_facts(text).ucs2_units == len(text.encode("utf-16-le")) // 2


def test_boundary_grid_agrees_with_the_oracle() -> None:
    """Every position of 2-unit characters around the first boundaries, exhaustively."""
    cases = [
        "a" * k + pair + "b" * m
        for pair in ("€", "€€", "{€", "€a€")
        for k in range(140, 160)
        for m in (0, 1, 5, 150, 151, 152, 153, 160)
    ] + [
        "ê" * k + pair + "ô" * m
        for pair in (EMOJI, EMOJI * 2, EMOJI + "x" + EMOJI)
        for k in range(60, 70)
        for m in (0, 1, 60, 64, 65, 66, 67)
    ]
    for text in cases:
        assert text_facts(text) == oracle_facts(text), text


# ------------------------------------------------------------------ transliteration


def test_transliteration_table_invariants() -> None:
    """What the vectorised rewrite relies on, and the brief's promises."""
    for key, value in TRANSLITERATION.items():
        assert len(key) == 1 and ord(key) <= 0xFFFF, repr(key)
        assert not text_facts(key).gsm7, f"{key!r} is GSM: it must never be transliterated"
        assert value.isascii() and all(gsm._SEPTETS.get(c) == 1 for c in value), repr(value)
        assert len(value.encode()) <= len(key.encode()), repr(key)


def test_transliteration_of_french_texts() -> None:
    assert TRANSLITERATION["ê"] == "e" and TRANSLITERATION["Ê"] == "E"
    assert "É" not in TRANSLITERATION and "é" not in TRANSLITERATION
    assert transliterate("Fête à l’hôtel « Côte » – dès 9 h… ça ! Œuvre") == (
        'Fete à l\'hotel " Cote " - dès 9 h... ca ! OEuvre'
    )
    assert transliterate("a\u00a0b\u202fc\td`e\u200bf") == "a b c d'ef"


@PROPERTY
@given(texts)
def test_transliterate_is_idempotent_and_only_touches_non_gsm(text: str) -> None:
    once = transliterate(text)
    assert transliterate(once) == once
    assert set(text_facts(once).non_gsm) <= set(text_facts(text).non_gsm)


@PROPERTY
@given(gsm_texts)
def test_transliterate_leaves_gsm_texts_alone(text: str) -> None:
    assert transliterate(text) == text


# ------------------------------------------------------------------ check_messages


def test_check_messages_reasons_and_columns() -> None:
    msgs = pd.Series(
        ["Bonjour", None, "", "  \n", "\u3000", "fête", "😀", "a" * 161, "ê" * 71, "ê" * 200],
        index=pd.Index(list("abcdefghij"), name="row"),
        dtype="str",
    )
    reject = check_messages(msgs, EncodingPolicy.REJECT, long_sms=False)
    assert list(reject.columns) == ["msg", "encoding", "segments", "reason"]
    assert reject.index.equals(msgs.index)
    assert [str(t) for t in reject.dtypes] == ["str", "str", "int64", "str"]
    assert [None if pd.isna(r) else r for r in reject["reason"]][:8] == [
        None,
        "MSG_EMPTY",
        "MSG_EMPTY",
        "MSG_EMPTY",
        "MSG_EMPTY",
        "MSG_NOT_GSM",
        "MSG_NOT_GSM",
        "MSG_TOO_LONG",
    ]
    assert reject.loc["b", "segments"] == 0 and reject.loc["b", "encoding"] == "gsm7"
    translit = check_messages(msgs, "transliterate", long_sms=False)
    assert actual_rows(translit.loc[["f"]]) == [("fete", "gsm7", 1, None)]
    assert translit.loc["g", "reason"] == "MSG_NOT_GSM"  # still not GSM after transliteration
    assert actual_rows(translit.loc[["i"]]) == [("e" * 71, "gsm7", 1, None)]
    ucs2 = check_messages(msgs, EncodingPolicy.UCS2, long_sms=True)
    assert actual_rows(ucs2.loc[["f", "i"]]) == [
        ("fête", "ucs2", 1, None),
        ("ê" * 71, "ucs2", 2, None),
    ]
    assert ucs2.loc["j", "segments"] == 3 and pd.isna(ucs2.loc["j", "reason"])


@pytest.mark.parametrize(
    ("text", "policy", "ok_long"),
    [
        ("a" * 765, "reject", True),
        ("a" * 766, "reject", False),
        ("a" * 763 + "€", "reject", True),
        ("a" * 764 + "€", "reject", False),
        ("a" * 152 + "€" + "a" * 611, "reject", False),  # 765 septets, but 6 segments
        ("ê" * 335, "ucs2", True),
        ("ê" * 336, "ucs2", False),
        ("ê" * 66 + EMOJI + "ê" * 267, "ucs2", False),  # 335 units, but 6 segments
        ("ê" * 765, "transliterate", True),
        ("ê" * 766, "transliterate", False),
    ],
)
def test_long_sms_limit(text: str, policy: str, ok_long: bool) -> None:
    frame = check_messages(pd.Series([text]), policy, long_sms=True)
    assert pd.isna(frame["reason"][0]) == ok_long
    assert check_messages(pd.Series([text]), policy, long_sms=False)["reason"][0] == "MSG_TOO_LONG"


@pytest.mark.parametrize(
    "dtype",
    [
        "str",
        "object",
        "string[pyarrow]",
        "string[python]",
        "category",
        pd.ArrowDtype(pa.string()),
        pd.ArrowDtype(pa.large_string()),
    ],
)
def test_check_messages_accepts_string_dtypes(dtype) -> None:
    msgs = ["fête", None, "Prix: 5€", "fête", EMOJI, "", "x\u200by\u00ad…z«\u202f", "\ufeff"]
    frame = check_messages(pd.Series(msgs, dtype=dtype), EncodingPolicy.TRANSLITERATE, False)
    assert actual_rows(frame) == expected_rows(msgs, EncodingPolicy.TRANSLITERATE, False)


def test_check_messages_on_empty_sliced_and_chunked_columns() -> None:
    empty = check_messages(pd.Series([], dtype="str"), EncodingPolicy.REJECT, False)
    assert empty.shape == (0, 4) and list(empty.columns) == [
        "msg",
        "encoding",
        "segments",
        "reason",
    ]
    msgs = ["ça " * k + "€" * (k % 3) for k in range(300)]
    whole = pd.Series(msgs, dtype="str")
    sliced = whole.iloc[17:250]  # an Arrow array with a non-zero offset
    frame = check_messages(sliced, EncodingPolicy.TRANSLITERATE, True)
    assert frame.index.equals(sliced.index)
    assert actual_rows(frame) == expected_rows(msgs[17:250], EncodingPolicy.TRANSLITERATE, True)
    chunked = pd.concat([whole.iloc[:100], whole.iloc[100:]])  # a chunked Arrow column
    assert actual_rows(check_messages(chunked, "ucs2", True)) == expected_rows(
        msgs, EncodingPolicy.UCS2, True
    )


def test_check_messages_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="strings or nulls"):
        check_messages(pd.Series(["a", 3], dtype=object), EncodingPolicy.REJECT, False)


frames = st.lists(st.one_of(st.none(), texts, gsm_texts), max_size=30).flatmap(
    lambda pool: st.lists(st.sampled_from(pool), max_size=60) if pool else st.just([])
)


@PROPERTY
@given(frames, st.sampled_from(list(EncodingPolicy)), st.booleans())
def test_check_messages_rows_equal_the_reference(msgs, policy, long_sms) -> None:
    """Random frames with nulls, duplicates, emoji, extension characters and long texts."""
    frame = check_messages(pd.Series(msgs, dtype=object), policy, long_sms)
    assert actual_rows(frame) == expected_rows(msgs, policy, long_sms)


def test_check_messages_equals_the_reference_on_long_texts_around_boundaries() -> None:
    rng = np.random.default_rng(7)
    pieces = np.array(list("abcdeé ") + ["€", "{", "ê", "ô", "’", EMOJI, "…", "\u00a0"])
    msgs = ["".join(rng.choice(pieces, rng.integers(60, 900))) for _ in range(1500)]
    msgs += ["x" * k + "€" + "y" * m for k in range(145, 160) for m in (140, 152, 153, 600)]
    msgs += ["ê" * k + EMOJI + "ô" * m for k in range(60, 70) for m in (60, 66, 67, 300)]
    for policy in EncodingPolicy:
        frame = check_messages(pd.Series(msgs, dtype="str"), policy, True)
        assert actual_rows(frame) == expected_rows(msgs, policy, True)


# ------------------------------------------------------------------ vectorisation


def test_check_messages_works_per_distinct_text_without_python_per_text(monkeypatch) -> None:
    """100,000 rows of 3 texts: facts computed once on 3 values, no per-text Python at all."""
    texts_ = ["a" * 152 + "€" + "ê" * 200, "ê" * 66 + EMOJI * 40, "Fête à l’hôtel ! STOP 36111"]
    msgs = pd.Series(np.array(texts_, dtype=object)[np.arange(100_000) % 3], dtype="str")
    expected = {policy: expected_rows(texts_, policy, True) for policy in EncodingPolicy}
    seen: list[int] = []
    from smsdrop import gsm_arrays

    distinct_facts = gsm_arrays._distinct_facts

    def spy(values, translit):
        seen.append(len(values))
        return distinct_facts(values, translit)

    def forbidden(*args, **kwargs):
        raise AssertionError("per-text Python work in check_messages")

    monkeypatch.setattr(gsm_arrays, "_distinct_facts", spy)
    for name in ("text_facts", "transliterate", "_walk_segments"):
        monkeypatch.setattr(gsm, name, forbidden)
    for policy in EncodingPolicy:
        frame = check_messages(msgs, policy, True)
        assert actual_rows(frame.iloc[:3]) == expected[policy]
        assert actual_rows(frame.iloc[3:6]) == expected[policy]
    assert seen == [3, 3, 3]


def test_exact_walk_is_vectorised_for_many_long_texts(monkeypatch) -> None:
    """Thousands of distinct long texts with straddling € or emoji: no Python walk."""
    msgs = [f"{i:05d}" + "a" * (147 + i % 7) + "€" + "b" * (i % 400) for i in range(3000)]
    msgs += [f"{i:05d}" + "ê" * (61 + i % 5) + EMOJI * (1 + i % 3) + "ô" * i for i in range(300)]
    expected = expected_rows(msgs, EncodingPolicy.UCS2, True)
    monkeypatch.setattr(gsm, "_walk_segments", lambda *a: pytest.fail("Python walk called"))
    frame = check_messages(pd.Series(msgs, dtype="str"), EncodingPolicy.UCS2, True)
    assert actual_rows(frame) == expected


def test_huge_texts_take_the_unpacked_count_path() -> None:
    """Over 2**21 bytes in a text the packed per-text counts could overflow: still exact."""
    msgs = ["ê" * (1 << 21), "ok", "a" * 3000 + "€" * 40]  # 2**21 would wrap a lane to 0
    for policy in (EncodingPolicy.REJECT, EncodingPolicy.UCS2):
        frame = check_messages(pd.Series(msgs, dtype="str"), policy, True)
        assert actual_rows(frame) == expected_rows(msgs, policy, True)
