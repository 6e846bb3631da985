-- smsdrop warehouse, migration 003 (DuckDB): no secondary index on purpose. DuckDB scans
-- columns with min-max zone maps; ART indexes would slow the bulk ACK loads and hold
-- memory, for joins its hash joins do without.
SELECT 1;
