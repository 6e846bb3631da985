-- smsdrop warehouse, migration 006 (DuckDB and PostgreSQL alike): what an ACK line counts
-- for, written once. 002 and 004 spelled the same aggregate (acked, sent, delivered, …,
-- stop replies, segments) in sms_campaign_stats_by_operator (twice) and
-- sms_campaign_stats_by_country; now sms_delivery_flags says per line what is counted and
-- both views add it up by their key, in one aggregation as before. Their columns, types and
-- figures are unchanged, so CREATE OR REPLACE VIEW keeps any view built on them.
-- sms_campaign_stats keeps its own per-campaign counts: it needs no STOP join per ACK line,
-- and reading this view would make it pay for one. Definitions in docs/WAREHOUSE.md.

-- Every ACK line with what the by-operator and by-country views count, as 0 or 1 (segments:
-- the line's when billed): the one place that says which line is sent, delivered, …, and
-- whose number replied STOP to the campaign.
CREATE OR REPLACE VIEW sms_delivery_flags AS
SELECT
    d.campaign_id,
    d.country,
    d.network,
    CASE WHEN d.billed THEN 1 ELSE 0 END AS sent,
    CASE WHEN d.outcome = 'delivered' THEN 1 ELSE 0 END AS delivered,
    CASE WHEN d.outcome = 'unconfirmed' THEN 1 ELSE 0 END AS unconfirmed,
    CASE WHEN d.outcome = 'failed' THEN 1 ELSE 0 END AS failed,
    CASE WHEN d.outcome = 'not_sent' THEN 1 ELSE 0 END AS not_sent,
    CASE WHEN st.msisdn IS NULL THEN 0 ELSE 1 END AS stop_replies,
    CASE WHEN d.billed THEN d.segments ELSE 0 END AS segments
FROM sms_delivery_outcomes AS d
LEFT JOIN sms_campaign_stop_numbers AS st
    ON st.campaign_id = d.campaign_id AND st.msisdn = d.msisdn;

-- Per campaign and mobile network (NULL: unknown range, or not a mobile number).
CREATE OR REPLACE VIEW sms_campaign_stats_by_operator AS
SELECT
    campaign_id,
    network,
    COUNT(*) AS acked,
    CAST(SUM(sent) AS BIGINT) AS sent,
    CAST(SUM(delivered) AS BIGINT) AS delivered,
    CAST(SUM(unconfirmed) AS BIGINT) AS unconfirmed,
    CAST(SUM(failed) AS BIGINT) AS failed,
    CAST(SUM(not_sent) AS BIGINT) AS not_sent,
    CAST(SUM(stop_replies) AS BIGINT) AS stop_replies,
    CAST(COALESCE(SUM(segments), 0) AS BIGINT) AS segments,
    CAST(SUM(delivered) AS DOUBLE PRECISION) / NULLIF(SUM(sent), 0) AS delivery_rate,
    CAST(SUM(stop_replies) AS DOUBLE PRECISION) / NULLIF(SUM(sent), 0) AS stop_rate
FROM sms_delivery_flags
GROUP BY campaign_id, network;

-- Per campaign and destination country (ISO region stored at load time; NULL: not valid).
CREATE OR REPLACE VIEW sms_campaign_stats_by_country AS
SELECT
    campaign_id,
    country,
    COUNT(*) AS acked,
    CAST(SUM(sent) AS BIGINT) AS sent,
    CAST(SUM(delivered) AS BIGINT) AS delivered,
    CAST(SUM(unconfirmed) AS BIGINT) AS unconfirmed,
    CAST(SUM(failed) AS BIGINT) AS failed,
    CAST(SUM(not_sent) AS BIGINT) AS not_sent,
    CAST(SUM(stop_replies) AS BIGINT) AS stop_replies,
    CAST(COALESCE(SUM(segments), 0) AS BIGINT) AS segments,
    CAST(SUM(delivered) AS DOUBLE PRECISION) / NULLIF(SUM(sent), 0) AS delivery_rate,
    CAST(SUM(stop_replies) AS DOUBLE PRECISION) / NULLIF(SUM(sent), 0) AS stop_rate
FROM sms_delivery_flags
GROUP BY campaign_id, country;
