"""Numbers a deployment sets in its environment (``SMSDROP_*_SECONDS``, batch sizes).

They are read once, when a DAG file or a task module is imported, so a bad value cannot be
refused per run: it is refused there, in one line that names the variable and the range,
and Airflow shows that line as the DAG's import error. ``float()`` alone said only "could
not convert string to float", and took ``nan``, ``inf`` or ``-5`` (a poll that never waits).
"""

from __future__ import annotations

import math
import os

from smsdrop.errors import InputError, printable


def number_setting(
    name: str,
    default: float,
    *,
    minimum: float,
    maximum: float = math.inf,
    whole: bool = False,
) -> float:
    """``name``'s value in the environment (``default`` when unset or blank), refused with
    an :class:`InputError` naming ``name`` unless it is a finite number (a whole one when
    ``whole``) within ``minimum``..``maximum``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    kind = "a whole number" if whole else "a number"
    bounds = f"at least {minimum:g}" if maximum == math.inf else f"{minimum:g}..{maximum:g}"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (whole and not value.is_integer()):
        raise InputError(f"must be {kind}, {bounds}; not {printable(text, 40)!r}", field=name)
    if not minimum <= value <= maximum:
        raise InputError(f"must be {bounds}, not {text}", field=name)
    return int(value) if whole else value
