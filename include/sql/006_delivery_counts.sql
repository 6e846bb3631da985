-- smsdrop warehouse, migration 006 (DuckDB and PostgreSQL alike): the per-group ACK counts
-- written once. 002 and 004 spelled the same aggregate (acked, sent, delivered, …, stop
-- replies, segments) in sms_campaign_stats_by_operator (twice) and
-- sms_campaign_stats_by_country; now sms_delivery_counts holds it at the finest grain they
-- use (campaign, country, network) and both add its rows up. Their columns, types and
-- figures are unchanged, so CREATE OR REPLACE VIEW keeps any view built on them.
-- sms_campaign_stats keeps its own per-campaign counts: it needs no STOP join per ACK line,
-- and reading this view would make it pay for one. Definitions in docs/WAREHOUSE.md.

-- The counts of the by-operator and by-country views, per campaign, destination country
-- and mobile network.
-- stop_replies: ACK lines whose number replied STOP to the campaign.
CREATE OR REPLACE VIEW sms_delivery_counts AS
SELECT
    d.campaign_id,
    d.country,
    d.network,
    COUNT(*) AS acked,
    COUNT(*) FILTER (WHERE d.billed) AS sent,
    COUNT(*) FILTER (WHERE d.outcome = 'delivered') AS delivered,
    COUNT(*) FILTER (WHERE d.outcome = 'unconfirmed') AS unconfirmed,
    COUNT(*) FILTER (WHERE d.outcome = 'failed') AS failed,
    COUNT(*) FILTER (WHERE d.outcome = 'not_sent') AS not_sent,
    COUNT(st.msisdn) AS stop_replies,
    CAST(COALESCE(SUM(d.segments) FILTER (WHERE d.billed), 0) AS BIGINT) AS segments
FROM sms_delivery_outcomes AS d
LEFT JOIN sms_campaign_stop_numbers AS st
    ON st.campaign_id = d.campaign_id AND st.msisdn = d.msisdn
GROUP BY d.campaign_id, d.country, d.network;

-- Per campaign and mobile network (NULL: unknown range, or not a mobile number).
CREATE OR REPLACE VIEW sms_campaign_stats_by_operator AS
SELECT
    campaign_id,
    network,
    CAST(SUM(acked) AS BIGINT) AS acked,
    CAST(SUM(sent) AS BIGINT) AS sent,
    CAST(SUM(delivered) AS BIGINT) AS delivered,
    CAST(SUM(unconfirmed) AS BIGINT) AS unconfirmed,
    CAST(SUM(failed) AS BIGINT) AS failed,
    CAST(SUM(not_sent) AS BIGINT) AS not_sent,
    CAST(SUM(stop_replies) AS BIGINT) AS stop_replies,
    CAST(SUM(segments) AS BIGINT) AS segments,
    CAST(SUM(delivered) AS DOUBLE PRECISION) / NULLIF(SUM(sent), 0) AS delivery_rate,
    CAST(SUM(stop_replies) AS DOUBLE PRECISION) / NULLIF(SUM(sent), 0) AS stop_rate
FROM sms_delivery_counts
GROUP BY campaign_id, network;

-- Per campaign and destination country (ISO region stored at load time; NULL: not valid).
CREATE OR REPLACE VIEW sms_campaign_stats_by_country AS
SELECT
    campaign_id,
    country,
    CAST(SUM(acked) AS BIGINT) AS acked,
    CAST(SUM(sent) AS BIGINT) AS sent,
    CAST(SUM(delivered) AS BIGINT) AS delivered,
    CAST(SUM(unconfirmed) AS BIGINT) AS unconfirmed,
    CAST(SUM(failed) AS BIGINT) AS failed,
    CAST(SUM(not_sent) AS BIGINT) AS not_sent,
    CAST(SUM(stop_replies) AS BIGINT) AS stop_replies,
    CAST(SUM(segments) AS BIGINT) AS segments,
    CAST(SUM(delivered) AS DOUBLE PRECISION) / NULLIF(SUM(sent), 0) AS delivery_rate,
    CAST(SUM(stop_replies) AS DOUBLE PRECISION) / NULLIF(SUM(sent), 0) AS stop_rate
FROM sms_delivery_counts
GROUP BY campaign_id, country;
