"""Campaign-wide dedupe and opt-outs (``validation.Dedupe``) against the plain reading of
the rule: across all batches, in row order, an opted-out number is rejected OPTED_OUT, a
number already kept is rejected MSISDN_DUPLICATE, any other is kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from smsdrop.record_rules import Dedupe

NUMBERS = st.integers(0, 30).map(lambda i: f"+336{12345600 + i:08d}")


def _frame(numbers: list[str], start: int) -> pa.Table:
    return pa.table(
        {
            "msisdn": pa.array(numbers, pa.string()),
            "idremote": pa.array([f"C{start + i}" for i in range(len(numbers))], pa.string()),
            "row": np.arange(start, start + len(numbers)),
        }
    )


@given(
    batches=st.lists(st.lists(NUMBERS, max_size=40), max_size=6),
    optouts=st.lists(NUMBERS, max_size=8),
    skipped=st.sets(st.integers(0, 39), max_size=10),
)
def test_dedupe_keeps_first_occurrences_of_numbers_not_opted_out(
    batches: list[list[str]], optouts: list[str], skipped: set[int]
) -> None:
    dedupe = Dedupe(pd.Series(optouts, dtype="string[pyarrow]"))
    seen: set[str] = set()
    start = 0
    for numbers in batches:
        frame = _frame(numbers, start)
        ok = np.array([i not in skipped for i in range(len(numbers))], dtype=bool)
        keep, rejects = dedupe.select(frame, ok)
        expected_keep, expected_reasons = [], {}
        for i, number in enumerate(numbers):
            if not ok[i]:
                expected_keep.append(False)
            elif number in optouts:
                expected_keep.append(False)
                expected_reasons[start + i] = "OPTED_OUT"
            elif number in seen:
                expected_keep.append(False)
                expected_reasons[start + i] = "MSISDN_DUPLICATE"
            else:
                expected_keep.append(True)
                seen.add(number)
        assert keep.tolist() == expected_keep
        assert dict(
            zip(rejects["row"].to_pylist(), rejects["reason"].to_pylist(), strict=True)
        ) == (expected_reasons)
        start += len(numbers)
    assert dedupe.kept == len(seen)
