"""Hand-made provider reports, as real bytes (smsdrop.reports writers) parsed back."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd

from smsdrop.reports import parse_ack, parse_replies, write_ack_line, write_reply_line

PARIS = ZoneInfo("Europe/Paris")
SEND = "SEND-12345-20261201-1000-promo.csv"
ACK = "ACK-12345-20261201-1000-promo.csv"
SMSMO = "SMSMO-12345-20261201-1000-promo.csv"
STOP = "STOP-12345-20261201-1000-promo.csv"
OP_A = "92c30692-1c1a-4d3e-8789-92a1e78104b4"
OP_B = "5b1f0c7e-3f44-4b51-a1d2-0e9d6c2f7a10"
SHORT = "Promo -20% ce samedi. STOP au 36111"
LONG = "Promo de Noel: " + "x" * 170 + " STOP au 36111"  # GSM-7, 2 segments

#: (idremote, msisdn, msg, idstatus, status, operator). 10 rows submitted, 8 acknowledged.
#: Networks of the number ranges: SFR (C1, C2, C5), Orange France (C3, C4), Proximus (C6,
#: C7), none known for C8's range (07 40).
ACK_LINES = [
    ("C1", "+33612345601", SHORT, 1, "delivered", OP_A),
    ("C2", "+33612345602", SHORT, 1, "delivered", OP_A),
    ("C3", "+33670123403", LONG, 1, "delivered", OP_B),
    ("C4", "+33670123404", SHORT, 2, "sent", OP_B),
    ("C5", "+33612345605", SHORT, 3, "failed", OP_A),
    ("C6", "+32470123456", SHORT, 4, "expired", OP_B),
    ("C7", "+32470123457", SHORT, 1, "delivered", OP_B),
    ("C8", "+33740123408", SHORT, 6, "no_credit", ""),
]


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=PARIS)


#: (msisdn, received_at, message, idremote): MO replies to the campaign.
REPLIES = [
    ("+33612345601", at(1, 10, 30), "STOP", "C1"),
    ("+33612345602", at(1, 10, 31), "Merci ; à samedi", "C2"),
    ("+32470123457", at(1, 11, 0, 5), "Arrêt svp", "C7"),
    ("+33612345601", at(1, 12, 0), "stop", "C1"),  # the same person, again
]


def ack_bytes(lines=ACK_LINES) -> bytes:
    return b"".join(write_ack_line(i, m, "SHOP", msg, s, st, op) for i, m, msg, s, st, op in lines)


def ack_frame(lines=ACK_LINES) -> pd.DataFrame:
    return parse_ack(ack_bytes(lines), ACK)


def reply_bytes(replies=REPLIES) -> bytes:
    return b"".join(write_reply_line(m, when, text, i) for m, when, text, i in replies)


def replies_frame(replies=REPLIES, name: str = SMSMO) -> pd.DataFrame:
    return parse_replies(reply_bytes(replies), name)
