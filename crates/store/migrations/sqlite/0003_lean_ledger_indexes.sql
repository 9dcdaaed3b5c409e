-- The ledger is written far more than it is read: keep only the indexes
-- reads need. Reports and budgets read the rollups; ids start with the
-- settle time, so the primary key already orders rows by time.
-- `ledger_request_id` took random inserts (request ids come from callers)
-- that dirtied a different index page per row and cost more CPU than all
-- of metering; a lookup by request id now scans, which is fine for
-- debugging and tests, the only readers.
DROP INDEX IF EXISTS ledger_at;
DROP INDEX IF EXISTS ledger_request_id;
