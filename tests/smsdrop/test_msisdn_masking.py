"""Tests of smsdrop.msisdn's masking: a log or reject file never shows a whole number."""

from __future__ import annotations

import re

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from smsdrop.msisdn import mask, mask_one
from tests.smsdrop.msisdn_sample import VALID_E164


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.sampled_from(VALID_E164),
        st.from_regex(r"\+[0-9]{1,20}", fullmatch=True),
        st.text(max_size=25),
    )
)
def test_mask_reveals_at_most_two_digits(value: str) -> None:
    masked = mask(pd.Series([value], dtype=object)).tolist()[0]
    assert masked == mask_one(value)
    shaped = re.fullmatch(r"\+([0-9]{2,20})", value)
    if not shaped:
        assert masked == "***"
        return
    digits = shaped.group(1)
    cc_len = next(
        (
            n
            for n in (1, 2, 3)
            if digits[0] != "0" and int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE
        ),
        0,
    )
    nsn = digits[cc_len:]
    assert masked.startswith("+" + digits[:cc_len])
    shown = re.findall(r"\d", masked[1 + cc_len :])
    assert len(shown) <= 2  # the brief allows 4: we show 2
    assert len(nsn) == 0 or len(shown) < len(nsn)  # never the whole number
    assert len(masked) == len(value)


def test_mask_examples() -> None:
    assert mask_one("+33612345678") == "+33*******78"
    assert mask(pd.Series(["+33612345678", None, "0612345678", "+1"])).tolist() == [
        "+33*******78",
        pd.NA,
        "***",
        "***",
    ]
    assert mask_one("+3312") == "+33**"
