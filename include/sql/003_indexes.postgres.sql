-- smsdrop warehouse, migration 003 (PostgreSQL): secondary indexes for the views' joins
-- and per-campaign filters. DuckDB has its own 003 (none needed: min-max zone maps).
CREATE INDEX IF NOT EXISTS sms_deliveries_campaign_idx ON sms_deliveries (campaign_id);
CREATE INDEX IF NOT EXISTS sms_deliveries_send_file_idx ON sms_deliveries (send_file);
CREATE INDEX IF NOT EXISTS sms_replies_campaign_idx ON sms_replies (campaign_id, msisdn);
CREATE INDEX IF NOT EXISTS sms_campaign_files_campaign_idx ON sms_campaign_files (campaign_id);
CREATE INDEX IF NOT EXISTS sms_rejected_rows_reason_idx ON sms_rejected_rows (campaign_id, reason);
