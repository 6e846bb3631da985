"""Opt-out keywords in replies, as data, matched vectorised.

A reply opts out when its **first word** is a keyword, case and accents ignored: ``STOP``,
``stop merci``, ``Arrêt`` do; ``non stop`` does not (people add politeness before or after;
operators match the keyword). The same rule as the sandbox's (``smsdrop.sandbox.replies``).
The first word is cut out by one RE2 regex over the whole column; accents are folded once
per *distinct* first word (a handful), so the cost does not grow with Python loops per row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["OPTOUT_KEYWORDS", "fold", "optout_keyword"]

#: Keywords seen in the field (docs/FIELD-NOTES); ``ARRÊT`` folds to ``ARRET``.
OPTOUT_KEYWORDS: Final = (
    "STOP",
    "ARRET",
    "ARRÊT",
    "STOPALL",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "CANCEL",
    "OPTOUT",
    "REVOKE",
)

# Letters, digits and combining marks make a word (Python's [^\W_] plus marks, so a
# decomposed "E + COMBINING CIRCUMFLEX" stays inside the word).
_FIRST_WORD: Final = r"^[^\pL\pN]*(?P<word>[\pL\pN\pM]+)"


def fold(text: str) -> str:
    """Upper case without accents: ``Arrêt`` → ``ARRET``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def optout_keyword(messages: pd.Series, keywords: Iterable[str] = OPTOUT_KEYWORDS) -> pd.Series:
    """The folded keyword when a message opts out, else null (same index as ``messages``)."""
    wanted = pa.array(sorted({fold(k) for k in keywords}), pa.string())
    arr = pa.array(messages.astype("string[pyarrow]")).cast(pa.string())
    first = pc.struct_field(pc.extract_regex(arr, _FIRST_WORD), "word")
    encoded = pc.dictionary_encode(first)
    folded = pa.array([fold(w) for w in encoded.dictionary.to_pylist()], pa.string())
    hit = pc.is_in(folded, value_set=wanted)
    keyword = pc.if_else(hit, folded, pa.scalar(None, pa.string()))
    values = pc.take(keyword, encoded.indices)
    return pd.Series(pd.array(values, dtype="string[pyarrow]"), index=messages.index)
