-- smsdrop warehouse, migration 002: the analysts' views (DuckDB and PostgreSQL alike).
-- Counts are BIGINT and rates DOUBLE PRECISION in both engines; a rate is NULL when its
-- denominator is 0. Definitions in docs/WAREHOUSE.md.

-- Every ACK line with its status mapped through sms_ack_statuses (outcome NULL: unknown).
CREATE OR REPLACE VIEW sms_delivery_outcomes AS
SELECT
    d.campaign_id, d.file, d.send_file, d.msisdn, d.idremote, d.oadc, d.idstatus, d.status,
    d.ackoperator, d.country, d.encoding, d.segments, d.loaded_at,
    s.outcome, COALESCE(s.billed, FALSE) AS billed
FROM sms_deliveries AS d
LEFT JOIN sms_ack_statuses AS s ON s.idstatus = d.idstatus;

-- One row per campaign known to the warehouse (recorded, with files, or with ACK lines).
CREATE OR REPLACE VIEW sms_campaign_stats AS
WITH campaigns AS (
    SELECT campaign_id FROM sms_campaigns
    UNION
    SELECT campaign_id FROM sms_campaign_files
    UNION
    SELECT campaign_id FROM sms_deliveries WHERE campaign_id IS NOT NULL
),
submitted AS (
    SELECT
        f.campaign_id,
        CAST(SUM(f.row_count) AS BIGINT) AS submitted,
        CAST(SUM(GREATEST(f.row_count - COALESCE(a.acked, 0), 0)) AS BIGINT) AS pending
    FROM sms_campaign_files AS f
    LEFT JOIN (
        SELECT send_file, COUNT(*) AS acked FROM sms_deliveries GROUP BY send_file
    ) AS a ON a.send_file = f.name
    WHERE f.state IN ('csv', 'lock', 'done')
    GROUP BY f.campaign_id
),
acks AS (
    SELECT
        campaign_id,
        COUNT(*) AS acked,
        COUNT(*) FILTER (WHERE billed) AS sent,
        COUNT(*) FILTER (WHERE outcome = 'delivered') AS delivered,
        COUNT(*) FILTER (WHERE outcome = 'unconfirmed') AS unconfirmed,
        COUNT(*) FILTER (WHERE outcome = 'failed') AS failed,
        COUNT(*) FILTER (WHERE outcome = 'not_sent') AS not_sent,
        COUNT(*) FILTER (WHERE outcome IS NULL) AS unknown_status,
        CAST(COALESCE(SUM(segments) FILTER (WHERE billed), 0) AS BIGINT) AS segments
    FROM sms_delivery_outcomes
    GROUP BY campaign_id
),
stops AS (
    SELECT
        campaign_id,
        COUNT(*) AS replies,
        COUNT(DISTINCT msisdn) FILTER (WHERE is_stop) AS stop_replies
    FROM sms_replies
    GROUP BY campaign_id
)
SELECT
    c.campaign_id,
    CAST(COALESCE(s.submitted, 0) AS BIGINT) AS submitted,
    CAST(COALESCE(a.acked, 0) AS BIGINT) AS acked,
    CAST(COALESCE(a.sent, 0) AS BIGINT) AS sent,
    CAST(COALESCE(a.delivered, 0) AS BIGINT) AS delivered,
    CAST(COALESCE(a.unconfirmed, 0) AS BIGINT) AS unconfirmed,
    CAST(COALESCE(a.failed, 0) AS BIGINT) AS failed,
    CAST(COALESCE(a.not_sent, 0) AS BIGINT) AS not_sent,
    CAST(COALESCE(a.unknown_status, 0) AS BIGINT) AS unknown_status,
    CAST(COALESCE(s.pending, 0) AS BIGINT) AS pending,
    CAST(COALESCE(r.replies, 0) AS BIGINT) AS replies,
    CAST(COALESCE(r.stop_replies, 0) AS BIGINT) AS stop_replies,
    CAST(COALESCE(a.segments, 0) AS BIGINT) AS segments,
    CAST(a.delivered AS DOUBLE PRECISION) / NULLIF(a.sent, 0) AS delivery_rate,
    CAST(COALESCE(r.stop_replies, 0) AS DOUBLE PRECISION) / NULLIF(a.sent, 0) AS stop_rate
FROM campaigns AS c
LEFT JOIN submitted AS s ON s.campaign_id = c.campaign_id
LEFT JOIN acks AS a ON a.campaign_id = c.campaign_id
LEFT JOIN stops AS r ON r.campaign_id = c.campaign_id;

-- The people who replied STOP to a campaign, once each.
CREATE OR REPLACE VIEW sms_campaign_stop_numbers AS
SELECT DISTINCT campaign_id, msisdn FROM sms_replies WHERE is_stop AND campaign_id IS NOT NULL;

-- Per campaign and operator (ACKOPERATOR; NULL for messages that were not sent).
CREATE OR REPLACE VIEW sms_campaign_stats_by_operator AS
SELECT
    d.campaign_id,
    d.ackoperator,
    COUNT(*) AS acked,
    COUNT(*) FILTER (WHERE d.billed) AS sent,
    COUNT(*) FILTER (WHERE d.outcome = 'delivered') AS delivered,
    COUNT(*) FILTER (WHERE d.outcome = 'unconfirmed') AS unconfirmed,
    COUNT(*) FILTER (WHERE d.outcome = 'failed') AS failed,
    COUNT(*) FILTER (WHERE d.outcome = 'not_sent') AS not_sent,
    COUNT(st.msisdn) AS stop_replies,
    CAST(COALESCE(SUM(d.segments) FILTER (WHERE d.billed), 0) AS BIGINT) AS segments,
    CAST(COUNT(*) FILTER (WHERE d.outcome = 'delivered') AS DOUBLE PRECISION)
        / NULLIF(COUNT(*) FILTER (WHERE d.billed), 0) AS delivery_rate,
    CAST(COUNT(st.msisdn) AS DOUBLE PRECISION)
        / NULLIF(COUNT(*) FILTER (WHERE d.billed), 0) AS stop_rate
FROM sms_delivery_outcomes AS d
LEFT JOIN sms_campaign_stop_numbers AS st
    ON st.campaign_id = d.campaign_id AND st.msisdn = d.msisdn
GROUP BY d.campaign_id, d.ackoperator;

-- Per campaign and destination country (ISO region stored at load time; NULL: not valid).
CREATE OR REPLACE VIEW sms_campaign_stats_by_country AS
SELECT
    d.campaign_id,
    d.country,
    COUNT(*) AS acked,
    COUNT(*) FILTER (WHERE d.billed) AS sent,
    COUNT(*) FILTER (WHERE d.outcome = 'delivered') AS delivered,
    COUNT(*) FILTER (WHERE d.outcome = 'unconfirmed') AS unconfirmed,
    COUNT(*) FILTER (WHERE d.outcome = 'failed') AS failed,
    COUNT(*) FILTER (WHERE d.outcome = 'not_sent') AS not_sent,
    COUNT(st.msisdn) AS stop_replies,
    CAST(COALESCE(SUM(d.segments) FILTER (WHERE d.billed), 0) AS BIGINT) AS segments,
    CAST(COUNT(*) FILTER (WHERE d.outcome = 'delivered') AS DOUBLE PRECISION)
        / NULLIF(COUNT(*) FILTER (WHERE d.billed), 0) AS delivery_rate,
    CAST(COUNT(st.msisdn) AS DOUBLE PRECISION)
        / NULLIF(COUNT(*) FILTER (WHERE d.billed), 0) AS stop_rate
FROM sms_delivery_outcomes AS d
LEFT JOIN sms_campaign_stop_numbers AS st
    ON st.campaign_id = d.campaign_id AND st.msisdn = d.msisdn
GROUP BY d.campaign_id, d.country;
