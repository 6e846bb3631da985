"""Campaign costs in the warehouse: the price list a campaign used, and what it spent.

A mixin of :class:`~smsdrop.warehouse.base.Warehouse` (migration 008): the estimate is
:mod:`smsdrop.pricing`'s, the actual cost a view over the ACK's billed segments.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pyarrow as pa

from smsdrop.pricing import Cost, PriceList

if TYPE_CHECKING:
    from smsdrop.warehouse.base import Warehouse

__all__ = ["DEFAULT_COUNTRY", "CampaignCosts"]

#: The country key of a price list's default price.
DEFAULT_COUNTRY = "*"


class CampaignCosts:
    def record_campaign_prices(self: Warehouse, campaign_id: str, prices: PriceList) -> int:
        """Keep the prices a campaign is planned with; the first recording wins."""
        rows = dict(prices.countries)
        if prices.default is not None:
            rows[DEFAULT_COUNTRY] = prices.default
        data = pa.table(
            {
                "campaign_id": pa.array([campaign_id] * len(rows), pa.string()),
                "country": pa.array(list(rows), pa.string()),
                "price": pa.array(list(rows.values()), pa.decimal128(12, 6)),
                "currency": pa.array([prices.currency] * len(rows), pa.string()),
            }
        )
        with self.transaction():
            return self._insert_select(
                "sms_campaign_prices", data, "ON CONFLICT (campaign_id, country) DO NOTHING"
            )

    def record_estimate(self: Warehouse, campaign_id: str, cost: Cost) -> None:
        """The estimate of a recorded campaign (its row of ``sms_campaigns``)."""
        with self.transaction():
            self._execute(
                "UPDATE sms_campaigns SET estimated_cost = %s, cost_currency = %s"
                " WHERE campaign_id = %s",
                (round(cost.total, 4), cost.currency, campaign_id),
            )

    def sent_cost(self: Warehouse, campaign_id: str) -> dict[str, Decimal | None]:
        """Country → cost of the billed segments (``sms_campaign_sent_cost``)."""
        _, rows = self._query(
            "SELECT country, cost FROM sms_campaign_sent_cost WHERE campaign_id = %s"
            " ORDER BY country",
            (campaign_id,),
        )
        return {country: None if cost is None else Decimal(str(cost)) for country, cost in rows}
