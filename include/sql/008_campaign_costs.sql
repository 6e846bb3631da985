-- smsdrop warehouse, migration 008 (DuckDB and PostgreSQL alike): what campaigns cost.
-- Documented in docs/WAREHOUSE.md.

-- The price list a campaign was planned with (include/prices.yaml or the deployment's),
-- one row per country; country '*' is the list's default. Recorded once per campaign: the
-- analysts' cost of what was sent uses the prices the estimate used.
CREATE TABLE IF NOT EXISTS sms_campaign_prices (
    campaign_id TEXT NOT NULL,
    country TEXT NOT NULL,
    price NUMERIC(12, 6) NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (campaign_id, country)
);

-- The estimate made before the upload (smsdrop.pricing), with the campaign.
ALTER TABLE sms_campaigns ADD COLUMN IF NOT EXISTS estimated_cost NUMERIC(14, 4);
ALTER TABLE sms_campaigns ADD COLUMN IF NOT EXISTS cost_currency TEXT;

-- The cost of what was actually sent: billed segments of the ACK (sms_delivery_outcomes)
-- times the campaign's price for the destination country, else its default price. cost is
-- NULL where no price was recorded (a campaign planned before this migration).
CREATE OR REPLACE VIEW sms_campaign_sent_cost AS
SELECT
    d.campaign_id,
    d.country,
    COALESCE(p.currency, dp.currency) AS currency,
    CAST(COALESCE(SUM(d.segments) FILTER (WHERE d.billed), 0) AS BIGINT) AS billed_segments,
    CAST(SUM(d.segments * COALESCE(p.price, dp.price)) FILTER (WHERE d.billed)
        AS NUMERIC(14, 4)) AS cost
FROM sms_delivery_outcomes AS d
LEFT JOIN sms_campaign_prices AS p
    ON p.campaign_id = d.campaign_id AND p.country = d.country
LEFT JOIN sms_campaign_prices AS dp
    ON dp.campaign_id = d.campaign_id AND dp.country = '*'
WHERE d.campaign_id IS NOT NULL
GROUP BY d.campaign_id, d.country, COALESCE(p.currency, dp.currency);
