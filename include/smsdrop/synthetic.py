"""Synthetic audiences with the faults real ones have, for the demo, tests and benchmarks.

Deterministic for a seed and built with vectorised numpy/pyarrow, so ten million rows take
seconds. The numbers are in the ranges libphonenumber calls French mobiles (06/07) and
landlines (01–05), written the ways people type them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FIRST_NAMES = (
    "Marie",
    "Jean",
    "Hélène",
    "Anaïs",
    "Françoise",
    "Léa",
    "Chloé",
    "Zoé",
    "Noël",
    "Inès",
    "Lucas",
    "Hugo",
    "Jérôme",
    "Benoît",
    "Gaëlle",
    "Maëlys",
    "Paul",
    "Emma",
    "Louis",
    "Jade",
)
#: Metropolitan French mobile ranges (06 39, 06 9x and 07 0x–2x are overseas or unallocated).
MOBILE_PREFIXES = (
    "60",
    "61",
    "62",
    "64",
    "65",
    "66",
    "67",
    "68",
    "73",
    "74",
    "75",
    "76",
    "77",
    "78",
)
CITIES = ("Paris", "Lyon", "Marseille", "Nantes", "Besançon", "Nîmes", "Orléans", "Brest")


@dataclass(frozen=True)
class Faults:
    """Share of rows with each fault (the rest are clean French mobiles)."""

    invalid: float = 0.02  # not a phone number at all, or too short
    landline: float = 0.02  # a valid French fixed line: not a mobile
    duplicate: float = 0.01  # the number of an earlier row
    bad_idremote: float = 0.005  # a customer key with characters the provider refuses


def audience(rows: int, seed: int = 7, faults: Faults = Faults()) -> pd.DataFrame:
    """An audience frame: idremote, msisdn, first_name, city (pyarrow strings)."""
    rng = np.random.default_rng(seed)
    index = np.arange(rows)
    prefix = rng.choice(np.array(MOBILE_PREFIXES), rows)
    subscriber = rng.integers(1_000_000, 9_999_999, rows).astype(str)
    national = pd.Series(np.char.add(prefix, subscriber), dtype="string[pyarrow]")

    kind = rng.random(rows)
    landline = kind < faults.landline
    national = national.mask(landline, "1" + national.str.slice(1))
    written = _formats(national, rng)
    invalid = (kind >= faults.landline) & (kind < faults.landline + faults.invalid)
    written = written.mask(invalid, pd.Series(rng.integers(1000, 99999, rows).astype(str)))

    duplicate = rng.random(rows) < faults.duplicate
    duplicate[0] = False
    earlier = (index * rng.random(rows)).astype(np.int64)
    written = pd.Series(
        np.where(duplicate, written.to_numpy()[earlier], written.to_numpy()),
        dtype="string[pyarrow]",
    )

    idremote = pd.Series(
        np.char.add("C", np.char.zfill(index.astype(str), 9)), dtype="string[pyarrow]"
    )
    bad_id = rng.random(rows) < faults.bad_idremote
    idremote = idremote.mask(bad_id, idremote + "-X")
    return pd.DataFrame(
        {
            "idremote": idremote,
            "msisdn": written,
            "first_name": pd.Series(
                rng.choice(np.array(FIRST_NAMES), rows), dtype="string[pyarrow]"
            ),
            "city": pd.Series(rng.choice(np.array(CITIES), rows), dtype="string[pyarrow]"),
        }
    )


def _formats(national: pd.Series, rng: np.random.Generator) -> pd.Series:
    """The same national numbers written as people do: +33…, 0033…, 06 …, +33 6 12 …"""
    style = rng.integers(0, 4, len(national))
    spaced = (
        national.str.slice(0, 1)
        + " "
        + national.str.slice(1, 3)
        + " "
        + national.str.slice(3, 5)
        + " "
        + national.str.slice(5, 7)
        + " "
        + national.str.slice(7, 9)
    )
    choices = [
        "+33" + national,
        "0033" + national,
        "0" + spaced,
        "+33 " + spaced,
    ]
    out = choices[0]
    for number, written in enumerate(choices[1:], start=1):
        out = out.mask(style == number, written)
    return out


def optouts_for(frame: pd.DataFrame, share: float = 0.01, seed: int = 11) -> pd.Series:
    """A sample of the audience's numbers that 'opted out earlier' (as written)."""
    rng = np.random.default_rng(seed)
    return frame["msisdn"][rng.random(len(frame)) < share].reset_index(drop=True)


def write_audience(frame: pd.DataFrame, path: Path) -> Path:
    """Write an audience as Parquet or CSV, by the path's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path
