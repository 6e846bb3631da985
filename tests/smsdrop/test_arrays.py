"""smsdrop.arrays answers as np.unique does (only faster on millions of int64 values)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smsdrop.arrays import unique, unique_first_index

VALUES = arrays(
    np.int64, st.integers(0, 300), elements=st.integers(-5, 5) | st.integers(-(2**63), 2**63 - 1)
)


@given(VALUES)
def test_unique_is_np_unique(values: np.ndarray) -> None:
    assert np.array_equal(unique(values), np.unique(values))


@given(VALUES)
def test_unique_first_index_is_np_unique_with_return_index(values: np.ndarray) -> None:
    expected, first = np.unique(values, return_index=True)
    got, index = unique_first_index(values)
    assert np.array_equal(got, expected) and np.array_equal(index, first)


def test_numbers_at_scale() -> None:
    numbers = np.random.default_rng(3).integers(33600000000, 33799999999, 300_000)
    numbers[::7] = numbers[0]
    assert np.array_equal(unique(numbers), np.unique(numbers))
