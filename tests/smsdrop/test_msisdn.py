"""Tests of smsdrop.msisdn's classification: the spec examples, agreement with phonenumbers,
vectorisation."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsdrop.msisdn import MsisdnStatus, classify, kernels
from tests.smsdrop.msisdn_sample import (
    SAMPLE_SIZE,
    SEED,
    VALID_E164,
    build_sample,
    disagreements,
    run_ours,
)

# --------------------------------------------------------------------------------------------
# Spec examples.
# --------------------------------------------------------------------------------------------


def _one(raw: object, region: str = "FR") -> tuple[object, str, object]:
    row = classify(pd.Series([raw], dtype=object), region).iloc[0]
    return (
        None if row.e164 is pd.NA else row.e164,
        row.status,
        None if row.country is pd.NA else row.country,
    )


def test_french_mobile_is_valid() -> None:
    assert _one("+33787798753") == ("+33787798753", MsisdnStatus.MOBILE, "FR")


@pytest.mark.parametrize(
    "raw",
    [
        "+33 6 12 34 56 78",
        "+33612345678",
        "0033612345678",
        "06 12 34 56 78",
        "+33 (0)6 12 34 56 78",
        "+330612345678",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "(06) 12 34 56 78",
        "\u00a006\u00a012\u00a034\u00a056\u00a078 ",
        "\t0612345678\n",
        "06\u202f12\u202f34\u202f56\u202f78",
        "33612345678",
        "0612345678",
    ],
)
def test_formats_normalise(raw: str) -> None:
    assert _one(raw) == ("+33612345678", MsisdnStatus.MOBILE, "FR")


def test_landline_is_not_mobile() -> None:
    assert _one("01 23 45 67 89") == ("+33123456789", MsisdnStatus.NOT_MOBILE, "FR")


@pytest.mark.parametrize(
    "raw",
    [
        "garbage",
        "06 12 AB 56 78",
        "",
        "   ",
        None,
        float("nan"),
        "+",
        "++33612345678",
        "06 12 34 56 78 ext 12",
        "tel:+33612345678",
        "0612345678901234567890123",
        "0",
        "+33",
        "06+12345678",
        "06;12",
        "1" * 300,
        "\uff10\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width digits
        "\u0660\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic
        "Tel: 06 12 34 56 78",
    ],
)
def test_garbage_is_invalid(raw: object) -> None:
    e164, status, country = _one(raw)
    assert status == MsisdnStatus.INVALID and country is None and e164 is None


def test_readable_but_invalid_keeps_e164() -> None:
    assert _one("06 12 34") == ("+33061234", MsisdnStatus.INVALID, None)


def test_italian_leading_zero_and_shared_codes() -> None:
    assert _one("+39 06 1234 5678") == ("+390612345678", MsisdnStatus.NOT_MOBILE, "IT")
    assert _one("+39 06 698 12345") == ("+390669812345", MsisdnStatus.NOT_MOBILE, "VA")
    assert _one("+1 204 555 0123")[2] == "CA"
    assert _one("+7 701 123 4567") == ("+77011234567", MsisdnStatus.MOBILE, "KZ")
    assert _one("0692 12 34 56", "RE") == ("+262692123456", MsisdnStatus.MOBILE, "RE")
    assert _one("0639 40 12 34", "RE") == ("+262639401234", MsisdnStatus.MOBILE, "YT")
    assert _one("+44 7781 123456") == ("+447781123456", MsisdnStatus.MOBILE, "GG")
    assert _one("461 2345", "AG") == ("+12684612345", MsisdnStatus.NOT_MOBILE, "AG")


def test_output_shape_and_index() -> None:
    raw = pd.Series(["0612345678", None, "+33123456789"], index=[10, 20, 30], name="MSISDN")
    out = classify(raw)
    assert list(out.columns) == ["e164", "status", "country"]
    assert out.index.tolist() == [10, 20, 30]
    assert out["e164"].dtype == pd.StringDtype("pyarrow")
    assert out["status"].tolist() == ["mobile", "invalid", "not_mobile"]
    assert (out["status"] == MsisdnStatus.MOBILE).tolist() == [True, False, False]
    assert classify(pd.Series([], dtype=object)).shape == (0, 3)


def test_input_dtypes() -> None:
    for raw in (
        pd.Series(["0612345678"], dtype="string[pyarrow]"),
        pd.Series(["0612345678"], dtype="string[python]"),
        pd.Series(["0612345678"], dtype=pd.ArrowDtype(pa.large_string())),
        pd.Series(["0612345678"]),
        pd.Series([612345678]),
    ):
        assert classify(raw)["e164"].tolist() == ["+33612345678"]
    mixed = classify(pd.Series(["0612345678", 612345678, 6.1e8, b"06", None], dtype=object))
    assert mixed["status"].tolist() == ["mobile", "mobile", "invalid", "invalid", "invalid"]


def test_unknown_default_region() -> None:
    with pytest.raises(ValueError, match="default region"):
        classify(pd.Series(["0612345678"]), "XX")
    assert classify(pd.Series(["0612345678"]), "fr")["status"].tolist() == ["mobile"]


# --------------------------------------------------------------------------------------------
# Agreement with phonenumbers.
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_agreement_with_phonenumbers() -> None:
    """(e164, status, country) equal phonenumbers' for every sample (run with -s for counts)."""
    started = time.perf_counter()
    sample = build_sample(SAMPLE_SIZE)
    built = time.perf_counter()
    ours = run_ours(sample)
    classified = time.perf_counter()
    bad = disagreements(sample, ours)
    done = time.perf_counter()
    print(
        f"\nagreement: {len(sample)} numbers, {len({r for _, r in sample})} default "
        f"regions, {ours['country'].nunique()} countries found, "
        f"status counts {ours['status'].value_counts().to_dict()}, "
        f"{len(bad)} disagreements; build {built - started:.1f} s, classify "
        f"{classified - built:.1f} s, phonenumbers {done - classified:.1f} s"
    )
    assert len(sample) >= 50_000
    assert ours["country"].nunique() >= 20
    assert not bad, bad[:20]


@pytest.mark.slow
def test_regex_fallback_gives_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every metadata pattern compiles under RE2 today; if one did not, Python re takes over."""
    sample = build_sample(2_000, seed=7)
    expected = run_ours(sample)
    monkeypatch.setattr(kernels, "_re2_ok", lambda pattern: False)
    pd.testing.assert_frame_equal(run_ours(sample), expected)


# --------------------------------------------------------------------------------------------
# Vectorised: no call into phonenumbers.parse.
# --------------------------------------------------------------------------------------------


def test_classify_does_not_parse_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(SEED)
    numbers = ["0" + str(d) for d in rng.integers(100_000_000, 999_999_999, 10_000)]
    numbers[::7] = ["+44 7400 123456"] * len(numbers[::7])

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers.parse called")

    monkeypatch.setattr(phonenumbers, "parse", boom)
    monkeypatch.setattr(phonenumbers.phonenumberutil, "parse", boom)
    out = classify(pd.Series(numbers))
    assert len(out) == 10_000
    assert out["status"].isin(list(MsisdnStatus)).all()


# --------------------------------------------------------------------------------------------
# Properties.
# --------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_E164), st.sampled_from(["FR", "US", "IT", "GB"]))
def test_normalising_e164_is_identity(e164: str, region: str) -> None:
    """For valid numbers. (Not for invalid ones: phonenumbers itself reads "+3300612345678"
    as +330612345678, whose own reading is +33612345678.)"""
    got = classify(pd.Series([e164]), region)
    assert got["e164"].tolist() == [e164]
    assert got["status"].tolist()[0] != MsisdnStatus.INVALID
