"""Benchmark: smsdrop.msisdn.classify vs phonenumbers row by row, French audience.

Generates 1,000,000 French recipient numbers in the formats seen in customer files (about
5 % faulty), times ``classify`` (median of several runs) and phonenumbers' per-row
``parse`` + ``is_valid_number`` + ``number_type`` + ``format_number`` on a 20,000-row
sample, extrapolated to the full size (running it on a million rows takes minutes).

Run: ``cd /work/main && PYTHONPATH=include .venv/bin/python bench/bench_msisdn.py [rows]``
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from smsdrop.msisdn import classify

ROWS = 1_000_000
PHONENUMBERS_SAMPLE = 20_000
RUNS = 5
SEED = 42


def generate(rows: int, seed: int = SEED) -> pd.Series:
    """French numbers: mostly mobiles in national or E.164 form, some spaced, ~5 % faults."""
    rng = np.random.default_rng(seed)
    lead = rng.choice(np.array(["6", "7"]), rows, p=[0.8, 0.2])
    second = np.where(lead == "6", rng.integers(0, 10, rows), rng.integers(3, 10, rows))
    tail = rng.integers(0, 10_000_000, rows)
    nsn = pd.Series(lead).str.cat(
        [pd.Series(second.astype(str)), pd.Series(tail.astype(str)).str.zfill(7)]
    )
    landline = pd.Series(rng.integers(1, 6, rows).astype(str)).str.cat(
        pd.Series(rng.integers(0, 100_000_000, rows).astype(str)).str.zfill(8)
    )
    nsn = nsn.where(rng.random(rows) >= 0.03, landline)
    spaced = (
        "0"
        + nsn.str[0]
        + " "
        + nsn.str[1:3]
        + " "
        + nsn.str[3:5]
        + " "
        + nsn.str[5:7]
        + " "
        + nsn.str[7:9]
    )
    form = rng.choice(4, rows, p=[0.5, 0.3, 0.15, 0.05])
    out = pd.Series(
        np.select(
            [form == 0, form == 1, form == 2, form == 3],
            ["0" + nsn, "+33" + nsn, spaced, "0033" + nsn],
            "",
        ),
        dtype="str",
    )
    faults = rng.random(rows) < 0.05
    kinds = rng.choice(np.array(["short", "long", "letters", "empty", "prefix"]), rows)
    bad = np.select(
        [kinds == "short", kinds == "long", kinds == "letters", kinds == "empty"],
        ["0" + nsn.str[:6], "0" + nsn + "12", "06 12 AB 34 56", ""],
        "08" + nsn.str[1:],
    )
    return out.where(~faults, pd.Series(bad, dtype="str"))


def time_classify(raw: pd.Series) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        classify(raw)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_one_regex_pass(raw: pd.Series) -> float:
    """One RE2 pass over the column: the yardstick of the field notes (0.041 s there)."""
    strings = pa.array(raw, from_pandas=True)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        pc.match_substring_regex(strings, r"^(?:0|\+33)[67][0-9]{8}$")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_phonenumbers(raw: pd.Series) -> float:
    values = raw.tolist()
    started = time.perf_counter()
    for value in values:
        try:
            number = phonenumbers.parse(value, "FR")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            phonenumbers.number_type(number)
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return time.perf_counter() - started


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    raw = generate(rows)
    status = classify(raw)["status"].value_counts(normalize=True).round(3).to_dict()
    ours = time_classify(raw)
    yardstick = time_one_regex_pass(raw)
    sample = raw.sample(PHONENUMBERS_SAMPLE, random_state=SEED)
    theirs = time_phonenumbers(sample) * rows / PHONENUMBERS_SAMPLE
    print(f"rows: {rows:,} (status shares {status})")
    print(f"classify, median of {RUNS}: {ours:.3f} s")
    print(f"one RE2 pass over the same column, for scale: {yardstick:.3f} s")
    print(
        f"phonenumbers per row: {theirs:.1f} s (measured on {PHONENUMBERS_SAMPLE:,} rows, "
        f"extrapolated)"
    )
    print(f"ratio: {theirs / ours:.0f}x")


if __name__ == "__main__":
    main()
