"""Tests of smsdrop.msisdn's network names (libphonenumber's carrier data)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from phonenumbers import carrier

from smsdrop.msisdn import classify, network_names
from tests.smsdrop.msisdn_sample import SEED, build_sample, mobile_sample, run_ours


def test_network_names_agree_with_phonenumbers() -> None:
    """name_for_number's answer (null for "") on valid mobiles and on the mixed sample."""
    sample = build_sample(3_000, seed=5)
    numbers = pd.concat(
        [
            run_ours(sample)["e164"].dropna(),
            pd.Series(mobile_sample(3_000, seed=5), dtype="string[pyarrow]"),
        ],
        ignore_index=True,
    )
    got = network_names(numbers)
    want = [carrier.name_for_number(phonenumbers.parse(n), "en") or None for n in numbers]
    bad = [
        (n, g, w)
        for n, g, w in zip(numbers, got.tolist(), want, strict=True)
        if (None if g is pd.NA else g) != w
    ]
    assert not bad, bad[:20]
    assert got.notna().sum() >= 2_000
    assert got.nunique() >= 50
    assert {n[:3] for n in numbers[got.notna()]} >= {"+33", "+44", "+49", "+32", "+39"}
    # the caller's status (classify's) gives the same answer without classifying again
    status = classify(numbers)["status"]
    pd.testing.assert_series_equal(network_names(numbers, status), got)


def test_network_names_examples() -> None:
    numbers = pd.Series(
        ["+33612345678", "+33670000003", "+32470123456", "+33740000000", "+33123456789"]
        + ["0612345678", "+33612", "", None],
        index=range(10, 19),
    )
    got = network_names(numbers)
    assert got.dtype == pd.StringDtype("pyarrow") and got.name == "network"
    assert got.index.equals(numbers.index)
    # an unknown range, a landline, no '+', too short, empty, null: no network
    assert got.tolist() == ["SFR", "Orange France", "Proximus"] + [pd.NA] * 6
    assert network_names(pd.Series([], dtype="string[pyarrow]")).tolist() == []


@pytest.mark.slow
def test_network_names_on_a_million_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-array lookups: a million numbers at least 10× faster than phonenumbers per
    row, timed on a sample in the same test (a ratio, not a wall-clock limit: the machine
    may be busy)."""
    rng = np.random.default_rng(SEED)
    ranges = (("+336", 10**7, 0.5), ("+337", 10**7, 0.2), ("+447", 10**8, 0.2), ("+1", 10**9, 0.1))
    numbers = pd.Series(
        np.concatenate(
            [
                np.char.add(prefix, rng.integers(low, 10 * low, int(1_000_000 * share)).astype(str))
                for prefix, low, share in ranges
            ]
        ),
        dtype="string[pyarrow]",
    )
    status = classify(numbers)["status"]
    network_names(numbers[:10], status[:10])  # the tables are built once, here
    sample = numbers[:: len(numbers) // 2000].tolist()
    started = time.perf_counter()
    for number in sample:
        carrier.name_for_number(phonenumbers.parse(number), "en")
    per_row = (time.perf_counter() - started) / len(sample) * len(numbers)

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers called per row")

    monkeypatch.setattr(carrier, "name_for_number", boom)
    monkeypatch.setattr(phonenumbers, "parse", boom)
    timings = []
    for _ in range(3):  # the best of three: the machine may be busy
        started = time.perf_counter()
        got = network_names(numbers, status)
        timings.append(time.perf_counter() - started)
    assert len(got) == 1_000_000 and got.notna().sum() > 500_000
    assert per_row / min(timings) >= 10, (per_row, timings)
