"""What of a report's content may be shown: values in error messages, records set aside.

A report holds phone numbers and message texts. An error or a quarantined record must say
enough to fix the file and never show a whole number, so values are shown only when they
are short and date/time-like, and digit runs are masked to their last two digits. Bytes a
warehouse refuses (NUL, invalid UTF-8) are replaced one for one, so offsets hold.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

import numpy as np

#: Characters of a record kept in :attr:`Quarantined.raw`.
MAX_RAW_CHARS: Final = 1000
#: What replaces each NUL or invalid UTF-8 byte (one byte for one: offsets do not move).
CLEAN_BYTE: Final = "?"
#: Values shown as they are in messages: short, date/time-like, not a phone number.
_SAFE_VALUE: Final = re.compile(r"[0-9 :/.+\-]{0,12}")
#: Digit runs that may be a phone number (separators allowed inside).
_NUMBER_RUN: Final = re.compile(r"\+?[0-9](?:[ .\-]?[0-9]){5,}")
_NUMBERISH: Final = re.compile(r"[0-9 .()+/\-]{0,40}")
_DATE_OR_HOUR: Final = re.compile(
    r"[0-9]{6}|[0-9]{8}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}/[0-9]{2}/[0-9]{4}"
)


def _clean_handler(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    return CLEAN_BYTE * (error.end - error.start), error.end


codecs.register_error("smsdrop-clean", _clean_handler)


def clean_bytes(data: bytes) -> tuple[bytes, int]:
    """``data`` with each NUL and each byte of an invalid UTF-8 sequence replaced by ``?``
    (PostgreSQL refuses both in text, DuckDB the latter), and how many were replaced.

    One byte for one, so offsets and line structure stay as they are (none of these bytes
    is ``;``, ``"``, CR or LF).
    """
    if b"\0" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return data, 0
    cleaned = data.decode("utf-8", errors="smsdrop-clean").replace("\0", CLEAN_BYTE).encode()
    assert len(cleaned) == len(data)
    before, after = np.frombuffer(data, np.uint8), np.frombuffer(cleaned, np.uint8)
    return cleaned, int(np.count_nonzero(before != after))


def shown(value: object) -> str:
    """A field value for an error message: as it is when short and date/time-like, else
    only its length (it may be a phone number or a message)."""
    text = "" if value is None else str(value)
    if _SAFE_VALUE.fullmatch(text) and sum(c.isdigit() for c in text) <= 8:
        return repr(text)
    plural = "" if len(text) == 1 else "s"
    return f"a value of {len(text)} character{plural} (not shown)"


def shown_number(value: object) -> str:
    """An MSISDN value for an error message: digits and separators only (a number, badly
    written) are shown masked like the quarantine's raw text (``'+*** * ** ** ** 02'``),
    anything else as :func:`shown` does."""
    text = "" if value is None else str(value)
    if _NUMBERISH.fullmatch(text) and sum(c.isdigit() for c in text) >= 6:
        return repr(_NUMBER_RUN.sub(_mask_run, text))
    return shown(text)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    if _DATE_OR_HOUR.fullmatch(run):
        return run
    digits = sum(c.isdigit() for c in run)
    seen, out = 0, []
    for c in run:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - 2 else "*")
        else:
            out.append(c)
    return "".join(out)


def mask_raw(raw: bytes) -> str:
    """A record's text for the quarantine: every run of 6 or more digits (a phone number,
    written any way) keeps its last two digits only, except a lone DATE or HOUR value;
    cut at :data:`MAX_RAW_CHARS`. ``raw`` must be clean (:func:`clean_bytes`)."""
    text = raw.decode("utf-8", errors="replace")
    if len(text) > MAX_RAW_CHARS:
        text = text[:MAX_RAW_CHARS] + f"… ({len(raw)} bytes)"
    return _NUMBER_RUN.sub(_mask_run, text)
