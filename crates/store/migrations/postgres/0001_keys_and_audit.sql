-- API keys: only a hash of the secret is stored.
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL,
    name            TEXT NOT NULL,
    team            TEXT,
    services        TEXT NOT NULL DEFAULT '[]',   -- JSON array; empty: every service
    methods         TEXT NOT NULL DEFAULT '[]',   -- JSON array; empty: every method
    created_at      BIGINT NOT NULL,              -- unix milliseconds
    expires_at      BIGINT,
    revoked_at      BIGINT,
    previous_hash   TEXT,                         -- the secret before the last rotation
    previous_until  BIGINT,                       -- ... accepted until then (grace)
    updated_at      BIGINT NOT NULL
);
CREATE INDEX api_keys_updated_at ON api_keys (updated_at);

-- Every admin action, append-only.
CREATE TABLE audit_log (
    seq     BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
