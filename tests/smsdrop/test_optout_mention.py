"""The STOP mention of French marketing SMS: tolerant of accents, case and spacing only."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdrop.optout_mention import MENTION_COUNTRIES, missing_mention, normalised
from smsdrop.windows import WINDOWS

MENTION = "STOP au 36111"


@pytest.mark.parametrize(
    ("message", "missing"),
    [
        ("Soldes -50% ce week-end. STOP au 36111", False),
        ("Soldes ! stop au 36111", False),
        ("Soldes ! Stop  au\u00a036 111", False),  # double space, NBSP, spaced digits
        ("Soldes ! STÔP AU 36111", False),
        ("Soldes ! STOPau36111 merci", False),
        ("Soldes ! STOP au 36112", True),  # another number
        ("Soldes ! STOP 36111", True),  # a word missing
        ("Soldes ! Répondez STOP", True),
        ("", True),
    ],
)
def test_mention_detection(message: str, missing: bool) -> None:
    got = missing_mention(pa.array([message]), pa.array(["FR"]), MENTION)
    assert got.to_pylist() == [missing]


def test_only_french_numbers_need_it_and_nulls_are_left_to_other_rules() -> None:
    got = missing_mention(
        pa.array(["promo", "promo", "promo", None, "promo"]),
        pa.array(["FR", "BE", "RE", "FR", None]),
        MENTION,
    )
    assert got.to_pylist() == [True, False, True, False, False]


def test_mention_countries_are_the_french_window_regions() -> None:
    assert MENTION_COUNTRIES == {c for c, w in WINDOWS.items() if c == "FR" or w.bound_by}


def test_an_empty_mention_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        missing_mention(pa.array(["x"]), pa.array(["FR"]), " \t")


#: What messages hold: Latin-1 (accents, NBSP, controls) and the other spaces people paste.
TEXT = st.text(
    st.characters(codec="latin-1") | st.sampled_from("\u202f\u2009\u2028ŒœÔ"), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT)
def test_arrow_kernels_agree_with_the_python_rule(prefix: str, suffix: str) -> None:
    message = prefix + suffix
    expected = normalised(MENTION) not in normalised(message)
    got = missing_mention(pa.array([message]), pa.array(["FR"]), MENTION).to_pylist()
    assert got == [expected]
