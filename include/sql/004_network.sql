-- smsdrop warehouse, migration 004: the mobile network of each ACK line (DuckDB and
-- PostgreSQL alike), and sms_campaign_stats_by_operator grouped by it.
-- ACKOPERATOR is a per-message acknowledgement id (a UUID per message), not a network:
-- grouping by it gave one row per message. network is the original network of the
-- number's range (libphonenumber's carrier data), stored at load time; rows loaded before
-- this migration have NULL. Definitions in docs/WAREHOUSE.md.

ALTER TABLE sms_deliveries ADD COLUMN network TEXT;

-- As in 002, plus network, last: PostgreSQL's CREATE OR REPLACE VIEW may only append
-- columns, and the views reading this one stay as they are.
CREATE OR REPLACE VIEW sms_delivery_outcomes AS
SELECT
    d.campaign_id, d.file, d.send_file, d.msisdn, d.idremote, d.oadc, d.idstatus, d.status,
    d.ackoperator, d.country, d.encoding, d.segments, d.loaded_at,
    s.outcome, COALESCE(s.billed, FALSE) AS billed, d.network
FROM sms_deliveries AS d
LEFT JOIN sms_ack_statuses AS s ON s.idstatus = d.idstatus;

-- Its grouping column changes (ackoperator -> network), which CREATE OR REPLACE VIEW
-- refuses in PostgreSQL: dropped and created again (no view reads it).
DROP VIEW sms_campaign_stats_by_operator;

-- Per campaign and mobile network (NULL: unknown range, or not a mobile number).
CREATE VIEW sms_campaign_stats_by_operator AS
SELECT
    d.campaign_id,
    d.network,
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
GROUP BY d.campaign_id, d.network;
