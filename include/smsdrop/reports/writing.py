"""Report lines as the provider writes them, for the sandbox that plays the provider.

What our sandbox writes is in docs/PROTOCOL.md: DATE ``YYYYMMDD``, HOUR ``HHMMSS``, CRLF
line ends, fields quoted only when they must be (the dialect of :mod:`smsdrop.csvfile`).
"""

from __future__ import annotations

from datetime import datetime

from smsdrop.csvfile import format_record
from smsdrop.naming import PARIS, require_aware
from smsdrop.reports.columns import REPLY_DATE_FORMAT, REPLY_HOUR_FORMAT


def format_reply_date(dt: datetime) -> str:
    """DATE as our sandbox writes it: Paris local date, ``YYYYMMDD`` (like file names)."""
    return require_aware(dt, "dt").astimezone(PARIS).strftime(REPLY_DATE_FORMAT)


def format_reply_hour(dt: datetime) -> str:
    """HOUR as our sandbox writes it: Paris local time, ``HHMMSS`` (file names' HHMM plus
    seconds, so a STOP can be ordered against a send in the same minute)."""
    return require_aware(dt, "dt").astimezone(PARIS).strftime(REPLY_HOUR_FORMAT)


def write_ack_line(
    idremote: str,
    msisdn: str,
    oadc: str,
    msg: str,
    idstatus: int,
    status: str,
    ackoperator: str,
) -> bytes:
    """One ACK record, as :func:`smsdrop.reports.parse_ack` reads it back."""
    return format_record([idremote, msisdn, oadc, msg, str(idstatus), status, ackoperator])


def write_reply_line(msisdn: str, at: datetime, message: str, idremote: str) -> bytes:
    """One STOP/SMSMO record received at ``at`` (aware), as
    :func:`smsdrop.reports.parse_replies` reads it."""
    return format_record([msisdn, format_reply_date(at), format_reply_hour(at), message, idremote])
