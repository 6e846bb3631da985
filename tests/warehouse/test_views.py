"""The analysts' views on a hand-made campaign, numbers asserted exactly.

10 rows submitted in one SEND file, 8 acknowledged (so 2 pending): 4 delivered, 1 sent
without receipt, 1 failed + 1 expired, 1 not sent (no credit); 2 people replied STOP
(one of them twice), 1 replied something else. Segments: the long message counts 2.
"""

from __future__ import annotations

import pandas as pd
import pytest
from reportdata import ACK, SEND, SMSMO, ack_frame, replies_frame


@pytest.fixture
def loaded(warehouse):
    warehouse.record_campaign("promo", "12345", status="submitted")
    warehouse.record_file_state(SEND, "done", campaign_id="promo", row_count=10)
    warehouse.load_acks(ack_frame(), ACK)
    warehouse.load_replies(replies_frame(), SMSMO)
    return warehouse


def _none(value):
    """NULL as None whatever the driver gives (None, NaN, pd.NA)."""
    return None if pd.isna(value) else value


def _rows(wh, view: str, key: str) -> dict:
    frame = wh.query_frame(f"SELECT * FROM {view} WHERE campaign_id = 'promo'")
    out = {}
    for row in frame.to_dict("records"):
        k = row.pop(key)
        out[_none(k)] = {c: _none(v) for c, v in row.items() if c != "campaign_id"}
    return out


def test_campaign_stats(loaded) -> None:
    assert loaded.campaign_stats("promo") == {
        "campaign_id": "promo",
        "submitted": 10,
        "acked": 8,
        "sent": 7,
        "delivered": 4,
        "unconfirmed": 1,
        "failed": 2,
        "not_sent": 1,
        "unknown_status": 0,
        "pending": 2,
        "replies": 4,
        "stop_replies": 2,
        "segments": 8,
        "delivery_rate": 4 / 7,
        "stop_rate": 2 / 7,
    }


def test_stats_by_operator(loaded) -> None:
    def row(acked, sent, delivered, unconfirmed, failed, not_sent, stops, segments, dr, sr):
        return {
            "acked": acked,
            "sent": sent,
            "delivered": delivered,
            "unconfirmed": unconfirmed,
            "failed": failed,
            "not_sent": not_sent,
            "stop_replies": stops,
            "segments": segments,
            "delivery_rate": dr,
            "stop_rate": sr,
        }

    # grouped by the mobile network of the number's range, not by ACKOPERATOR (an id per
    # message); C8's range has no known network
    assert _rows(loaded, "sms_campaign_stats_by_operator", "network") == {
        "SFR": row(3, 3, 2, 0, 1, 0, 1, 3, 2 / 3, 1 / 3),
        "Orange France": row(2, 2, 1, 1, 0, 0, 0, 3, 1 / 2, 0.0),
        "Proximus": row(2, 2, 1, 0, 1, 0, 1, 2, 1 / 2, 1 / 2),
        None: row(1, 0, 0, 0, 0, 1, 0, 0, None, None),
    }


def test_stats_by_country(loaded) -> None:
    got = _rows(loaded, "sms_campaign_stats_by_country", "country")
    assert got == {
        "FR": {
            "acked": 6,
            "sent": 5,
            "delivered": 3,
            "unconfirmed": 1,
            "failed": 1,
            "not_sent": 1,
            "stop_replies": 1,
            "segments": 6,
            "delivery_rate": 3 / 5,
            "stop_rate": 1 / 5,
        },
        "BE": {
            "acked": 2,
            "sent": 2,
            "delivered": 1,
            "unconfirmed": 0,
            "failed": 1,
            "not_sent": 0,
            "stop_replies": 1,
            "segments": 2,
            "delivery_rate": 1 / 2,
            "stop_rate": 1 / 2,
        },
    }


def test_a_recorded_campaign_without_acks_has_zeros(warehouse) -> None:
    warehouse.record_campaign("later", "12345", status="prepared")
    warehouse.record_file_state(
        "SEND-12345-20261202-1000-later.csv", "lock", campaign_id="later", row_count=5
    )
    stats = warehouse.campaign_stats("later")
    assert stats["submitted"] == 5 and stats["pending"] == 5 and stats["sent"] == 0
    assert stats["delivery_rate"] is None and stats["stop_rate"] is None
    with pytest.raises(LookupError):
        warehouse.campaign_stats("nope")


def test_reloading_changes_no_number(loaded) -> None:
    before = loaded.campaign_stats("promo")
    loaded.load_acks(ack_frame(), ACK)
    loaded.load_replies(replies_frame(), SMSMO)
    assert loaded.campaign_stats("promo") == before
