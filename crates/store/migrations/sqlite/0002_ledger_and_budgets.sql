-- The usage ledger: one row per admitted request. `id` is assigned by the
-- gateway when the request settles (time first, so inserts append to the
-- index), and replaying a spool after a crash inserts nothing twice.
CREATE TABLE ledger (
    id          TEXT PRIMARY KEY,
    at          INTEGER NOT NULL,                -- request start, unix milliseconds
    request_id  TEXT NOT NULL,
    trace_id    TEXT NOT NULL,
    origin      TEXT NOT NULL DEFAULT '',     -- who started the call chain
    consumer    TEXT NOT NULL DEFAULT '',
    key_id      TEXT NOT NULL DEFAULT '',
    team        TEXT NOT NULL DEFAULT '',
    service     TEXT NOT NULL,
    operation   TEXT NOT NULL DEFAULT '',
    method      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT,                         -- the gateway's error code, if any
    complete    INTEGER NOT NULL,                -- 1: the response reached its end
    latency_ms  INTEGER NOT NULL,
    model       TEXT,
    units       TEXT NOT NULL DEFAULT '{}',   -- JSON object: unit -> amount
    cost_micros INTEGER NOT NULL,
    unpriced    TEXT                          -- why (part of) the usage has no price
);
CREATE INDEX ledger_at ON ledger (at);
CREATE INDEX ledger_request_id ON ledger (request_id);
CREATE INDEX ledger_unpriced ON ledger (service, model) WHERE unpriced IS NOT NULL;

-- Hourly rollups of the ledger, one series per report dimension (team,
-- consumer, service, operation, origin, key), kept in the same transaction
-- as the rows they sum: reports and budget spend read these, never
-- millions of ledger rows.
CREATE TABLE usage_rollup (
    dim               TEXT NOT NULL,          -- team | consumer | service | operation | origin | key
    value             TEXT NOT NULL,
    hour              INTEGER NOT NULL,          -- unix milliseconds, floored to the hour (UTC)
    requests          INTEGER NOT NULL,
    cost_micros       INTEGER NOT NULL,
    unpriced_requests INTEGER NOT NULL,
    PRIMARY KEY (dim, value, hour)
);
CREATE INDEX usage_rollup_hour ON usage_rollup (dim, hour);

CREATE TABLE usage_rollup_units (
    dim    TEXT NOT NULL,
    value  TEXT NOT NULL,
    hour   INTEGER NOT NULL,
    unit   TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (dim, value, hour, unit)
);
CREATE INDEX usage_rollup_units_hour ON usage_rollup_units (dim, hour);

-- Spending limits on a key, a team or a service; one per target.
CREATE TABLE budgets (
    scope         TEXT NOT NULL,              -- key | team | service
    target        TEXT NOT NULL,              -- the key id, team or service name
    amount_micros INTEGER NOT NULL,
    period        TEXT NOT NULL,              -- day | week | month | total (UTC calendar)
    mode          TEXT NOT NULL,              -- hard | soft
    alerts        TEXT NOT NULL DEFAULT '[50,80,100]',  -- JSON array of percentages
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (scope, target)
);
