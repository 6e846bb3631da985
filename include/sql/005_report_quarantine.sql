-- smsdrop warehouse, migration 005 (DuckDB and PostgreSQL alike): provider report records
-- set aside, and when the opt-outs were last loaded. Documented in docs/WAREHOUSE.md.

-- A STOP/SMSMO record that could not be loaded (it does not parse, a field is invalid, a
-- STOP number cannot be normalised): kept here, in the transaction that moves the file's
-- offset past it, so one bad record never stops the rest and none is lost. raw_masked is
-- the record as received with its phone numbers masked, NUL and invalid UTF-8 bytes
-- replaced by '?', cut at 1,000 characters. Keyed by the record's place in its file: a
-- re-read of the same bytes adds nothing.
CREATE TABLE IF NOT EXISTS sms_report_quarantine (
    file TEXT NOT NULL,
    byte_offset BIGINT NOT NULL,
    byte_length BIGINT NOT NULL,
    field TEXT,
    reason TEXT NOT NULL,
    raw_masked TEXT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (file, byte_offset)
);

-- One row per opt-out refresh that read every STOP and SMSMO report without a failure
-- (smsdrop.airflow.reports_task.refresh_optouts): a campaign checks how fresh its
-- suppression list is with Warehouse.last_optout_load().
CREATE TABLE IF NOT EXISTS sms_optout_loads (
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    files BIGINT NOT NULL,
    files_read BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    records BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    replies BIGINT NOT NULL,
    optouts BIGINT NOT NULL
);
