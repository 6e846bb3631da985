"""Costs in the warehouse: the prices a campaign used, its estimate, and what it spent."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
from reportdata import ACK, SEND, ack_frame

from smsdrop.pricing import PriceList, SegmentTally

PRICES = PriceList("EUR", {"FR": Decimal("0.045"), "BE": Decimal("0.07")}, Decimal("0.10"))


def test_the_cost_of_what_was_sent_uses_the_campaigns_prices(warehouse) -> None:
    warehouse.record_campaign("promo", "12345", status="submitted")
    assert warehouse.record_campaign_prices("promo", PRICES) == 3
    cheaper = PriceList("EUR", {"FR": Decimal("0.01")})
    assert warehouse.record_campaign_prices("promo", cheaper) == 0  # the first list stays
    warehouse.record_file_state(SEND, "done", campaign_id="promo", row_count=10)
    warehouse.load_acks(ack_frame(), ACK)
    # Billed: FR 6 segments (one long message counts 2; the not-sent one nothing), BE 2.
    assert warehouse.sent_cost("promo") == {"BE": Decimal("0.14"), "FR": Decimal("0.27")}


def test_a_country_without_its_own_price_takes_the_default(warehouse) -> None:
    warehouse.record_campaign("promo", "12345", status="submitted")
    warehouse.record_campaign_prices("promo", PriceList("EUR", {"FR": Decimal("0.05")}, Decimal(1)))
    warehouse.record_file_state(SEND, "done", campaign_id="promo", row_count=10)
    warehouse.load_acks(ack_frame(), ACK)
    assert warehouse.sent_cost("promo") == {"BE": Decimal(2), "FR": Decimal("0.30")}


def test_no_prices_recorded_is_no_cost(warehouse) -> None:
    warehouse.record_campaign("promo", "12345", status="submitted")
    warehouse.record_file_state(SEND, "done", campaign_id="promo", row_count=10)
    warehouse.load_acks(ack_frame(), ACK)
    assert warehouse.sent_cost("promo") == {"BE": None, "FR": None}


def test_the_estimate_is_kept_with_the_campaign(warehouse) -> None:
    warehouse.record_campaign("promo", "12345", status="planned")
    tally = SegmentTally()
    tally.add(pa.array(["FR", "BE"]), pa.array(["gsm7", "ucs2"]), pa.array([100, 10]))
    warehouse.record_estimate("promo", PRICES.cost(tally))
    frame = warehouse.query_frame(
        "SELECT estimated_cost, cost_currency FROM sms_campaigns WHERE campaign_id = 'promo'"
    )
    assert Decimal(str(frame.iloc[0, 0])) == Decimal("5.2")
    assert frame.iloc[0, 1] == "EUR"
