"""Argument types shared by the ``smsdrop`` subcommands: each refuses bad text clearly."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, time, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def aware_datetime(text: str) -> datetime:
    """An ISO 8601 date-time with a time zone: a send time means nothing without one."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add one, e.g. {text}+01:00 or {text}Z"
        )
    return value


def time_of_day(text: str) -> time:
    """``HH:MM`` (a window's end, say)."""
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time of day HH:MM: {text!r}") from None


def duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``4d`` (one number and one unit) → timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration like 90s, 30m, 2h or 4d: {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
