-- smsdrop warehouse, migration 001: the tables (DuckDB and PostgreSQL alike).
-- Documented table by table in docs/WAREHOUSE.md. Applied once by
-- smsdrop.warehouse.migrations; never edit after release: add a new numbered file.

-- ACK statuses as data: the provider does not publish its list (docs/SANDBOX.md has the
-- sandbox's). outcome is what the analysts' views count.
CREATE TABLE IF NOT EXISTS sms_ack_statuses (
    idstatus INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'unconfirmed', 'failed', 'not_sent')),
    billed BOOLEAN NOT NULL,
    meaning TEXT NOT NULL
);
INSERT INTO sms_ack_statuses (idstatus, status, outcome, billed, meaning) VALUES
    (1, 'delivered', 'delivered', TRUE, 'the operator confirmed delivery to the handset'),
    (2, 'sent', 'unconfirmed', TRUE, 'handed to the operator; no delivery receipt came back'),
    (3, 'failed', 'failed', TRUE, 'the operator refused it (unknown or non-mobile number)'),
    (4, 'expired', 'failed', TRUE, 'the handset stayed unreachable for the validity period'),
    (5, 'rejected', 'not_sent', FALSE, 'not sent: marketing SMS due on a Sunday or public holiday'),
    (6, 'no_credit', 'not_sent', FALSE, 'not sent: the account balance ran out')
ON CONFLICT DO NOTHING;

-- The suppression list: one row per E.164 number; the earliest opt-out wins.
CREATE TABLE IF NOT EXISTS sms_optouts (
    msisdn TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    received_at TIMESTAMPTZ,
    keyword TEXT,
    file TEXT,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS sms_campaigns (
    campaign_id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    parameters JSON,
    status TEXT NOT NULL,
    recipients BIGINT,
    valid BIGINT,
    rejected BIGINT,
    opted_out BIGINT,
    segments BIGINT,
    files BIGINT,
    send_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- One row per SEND file, under its .csv name; state follows the provider's extensions.
CREATE TABLE IF NOT EXISTS sms_campaign_files (
    name TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    row_count BIGINT,
    byte_count BIGINT,
    sha256 TEXT,
    state TEXT NOT NULL CHECK (state IN ('planned', 'tmp', 'csv', 'lock', 'done', 'reject')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at TIMESTAMPTZ
);

-- Audience rows that were not sent, with the reason; the number is masked (+33*******78).
CREATE TABLE IF NOT EXISTS sms_rejected_rows (
    campaign_id TEXT NOT NULL,
    source_row BIGINT NOT NULL,
    idremote TEXT,
    msisdn_masked TEXT,
    reason TEXT NOT NULL,
    field TEXT,
    detail TEXT,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (campaign_id, source_row)
);

-- ACK lines. The message body (MSG) is not stored: its facts are (docs/WAREHOUSE.md).
CREATE TABLE IF NOT EXISTS sms_deliveries (
    file TEXT NOT NULL,
    send_file TEXT,
    campaign_id TEXT,
    msisdn TEXT NOT NULL,
    idremote TEXT,
    oadc TEXT,
    idstatus INTEGER NOT NULL,
    status TEXT,
    ackoperator TEXT,
    country TEXT,
    encoding TEXT,
    segments INTEGER,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (file, msisdn)
);

-- MO replies (SMSMO files); is_stop when the first word is an opt-out keyword.
CREATE TABLE IF NOT EXISTS sms_replies (
    msisdn TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    idremote TEXT NOT NULL,
    message TEXT,
    file TEXT,
    campaign_id TEXT,
    country TEXT,
    is_stop BOOLEAN NOT NULL,
    keyword TEXT,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (msisdn, received_at, idremote)
);

-- Where the next incremental read of a growing STOP/SMSMO file starts.
CREATE TABLE IF NOT EXISTS sms_report_offsets (
    report_name TEXT PRIMARY KEY,
    byte_offset BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
