"""numpy set operations that stay fast on millions of values.

numpy 2.4's ``np.unique`` takes a hash-table path for integers that is pathologically slow
here: 2,000,000 random int64 numbers in 6.3 s, where sorting them and comparing
neighbours takes 0.05 s (``bench``-free evidence: ``tests/smsdrop/test_arrays.py`` checks
the answers against ``np.unique``; the timing is in docs/PERFORMANCE.md). Phone numbers as
int64 are exactly such values, so the bulk path uses these instead.
"""

from __future__ import annotations

import numpy as np


def unique(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (``np.unique(values)``)."""
    ordered = np.sort(values, kind="stable")
    return ordered[_firsts(ordered)]


def unique_first_index(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values and where each first occurs
    (``np.unique(values, return_index=True)``)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    firsts = _firsts(ordered)
    return ordered[firsts], order[firsts]


def _firsts(ordered: np.ndarray) -> np.ndarray:
    firsts = np.ones(len(ordered), dtype=bool)
    firsts[1:] = ordered[1:] != ordered[:-1]
    return firsts
