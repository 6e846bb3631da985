-- smsdrop warehouse, migration 007 (DuckDB and PostgreSQL alike): the send history that
-- frequency caps count (docs/PROTOCOL.md, "Frequency caps"). Documented in docs/WAREHOUSE.md.

-- Which numbers each SEND file holds, recorded when its name is planned (before the
-- upload: the ACK comes days later, and a cap must already see a campaign planned for
-- tomorrow). msisdn is the E.164 number as a BIGINT (at most 15 digits), the form the
-- preparation's anti-joins use; send_at is the file's slot. One row per file and number:
-- recording a file again adds nothing.
CREATE TABLE IF NOT EXISTS sms_send_history (
    send_file TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    msisdn BIGINT NOT NULL,
    send_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (send_file, msisdn)
);

CREATE INDEX IF NOT EXISTS sms_send_history_by_time ON sms_send_history (send_at);
