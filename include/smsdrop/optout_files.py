"""Opt-out files (CSV or Parquet, with or without a header) read as E.164 numbers.

An entry that is not a phone number is counted and reported, never dropped silently: a user
must know that a STOP list did not stop somebody.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from smsdrop.audience_files import (
    DEFAULT_BATCH,
    CsvLayout,
    as_frame,
    column_key,
    csv_layout,
    fault_kind,
    read_csv,
    read_parquet,
    resolve_columns,
    shown_names,
)
from smsdrop.errors import InputError, printable
from smsdrop.msisdn import classify

#: Names an opt-out file's number column goes by (compared by :func:`column_key`, accents
#: removed), in order of preference.
OPTOUT_COLUMNS = ("msisdn", "e164", "phone", "mobile", "numero", "telephone", "tel", "number")
#: A first field that reads as a phone number (8+ digits): the file has no header.
_LOOKS_LIKE_NUMBER = re.compile(r"\+?(?:[0-9][ ().\-/]*){8,}")
#: How many unreadable entries a report lists by record number.
SHOWN_UNREADABLE = 10


@dataclass
class OptOutList:
    """An opt-out file read: its numbers (E.164) and what could not be read as one."""

    source: str
    numbers: pd.Series
    entries: int = 0
    unreadable: int = 0
    unreadable_records: list[int] = field(default_factory=list)  # the first few, from 1

    def report(self) -> dict[str, object]:
        return {
            "file": self.source,
            "entries": self.entries,
            "numbers": int(self.numbers.nunique()),
            "unreadable": self.unreadable,
            "unreadable_records": self.unreadable_records,
        }

    def warning(self) -> str | None:
        if not self.unreadable:
            return None
        shown = ", ".join(map(str, self.unreadable_records))
        more = ", …" if self.unreadable > len(self.unreadable_records) else ""
        return (
            f"opt-out file {Path(self.source).name}: {self.unreadable} of {self.entries} "
            f"entries are not phone numbers (records {shown}{more}; header not counted): "
            "they opt nobody out"
        )


def read_optouts(path: Path, default_region: str = "FR") -> pd.Series:
    """Opted-out numbers as E.164 (see :func:`load_optouts`)."""
    return load_optouts(path, default_region).numbers


def load_optouts(
    path: Path, default_region: str = "FR", batch_size: int = DEFAULT_BATCH
) -> OptOutList:
    """An opt-out file (CSV or Parquet) as E.164 numbers, read as text (never type-guessed).

    The number column is the one named like :data:`OPTOUT_COLUMNS` (``MSISDN``, ``phone``,
    ``numéro``, …) or the only column; a CSV whose first line is a phone number has no
    header. ``,`` or ``;``, a UTF-8 BOM, CR/LF/CRLF line ends are read. An entry that is not
    a phone number (an empty one included) is counted and reported, never dropped silently.
    """
    if not path.exists():
        raise InputError("no such opt-out file", file=str(path))
    if not path.is_file():
        raise InputError("not a regular file", file=str(path))
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"not a readable Parquet file ({fault_kind(error)})", file=str(path)
            ) from None
        column = _optout_column(path, names)
        batches = read_parquet(path, [column], batch_size, "opt-out", (column,))
    else:
        layout = csv_layout(path)
        first = layout.names[0] if layout.names else ""
        if _LOOKS_LIKE_NUMBER.fullmatch(first):  # no header: the numbers are the first column
            others = [f"column{i + 1}" for i in range(1, len(layout.names))]
            layout = CsvLayout(layout.delimiter, ["msisdn", *others], header=False)
        column = _optout_column(path, layout.names)
        positions = {column: resolve_columns(path, layout.names, [column])[column]}
        batches = read_csv(path, layout, positions, batch_size)
    result = OptOutList(str(path), pd.Series([], dtype="string[pyarrow]", name="e164"))
    kept = []
    for batch in batches:
        numbers = classify(as_frame(batch)[column], default_region)["e164"]
        bad = np.flatnonzero(numbers.isna().to_numpy())
        room = SHOWN_UNREADABLE - len(result.unreadable_records)
        result.unreadable_records += (bad[:room] + result.entries + 1).tolist()
        result.unreadable += len(bad)
        result.entries += batch.num_rows
        kept.append(numbers.dropna())
    if kept:
        result.numbers = pd.concat(kept, ignore_index=True)
    return result


def _optout_column(path: Path, names: list[str]) -> str:
    keys = [_unaccented(column_key(name)) for name in names]
    known = [names[keys.index(key)] for key in OPTOUT_COLUMNS if key in keys]
    if len(known) > 1:
        raise InputError(
            f"opt-out file has several number columns ({', '.join(map(printable, known))}): "
            "keep one",
            file=str(path),
        )
    if known:
        return known[0]
    if len(names) == 1:
        return names[0]
    raise InputError(
        f"opt-out file needs a number column named one of {', '.join(OPTOUT_COLUMNS)} "
        f"(has: {shown_names(names)})",
        file=str(path),
    )


def _unaccented(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
