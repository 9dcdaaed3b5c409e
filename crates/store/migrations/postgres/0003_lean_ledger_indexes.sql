-- Ids start with the settle time, so the primary key already orders rows
-- by time and `ledger_at` only cost writes. PostgreSQL keeps the request
-- id index: a cluster's store has its own machine and buffer pool, and a
-- scan of a large shared ledger would be slow.
DROP INDEX IF EXISTS ledger_at;
