//! Records as the store holds them. Times are unix milliseconds; money and
//! secrets never appear as floats or plain text.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A key to create. `secret_hash` is the hex SHA-256 of the secret; the
/// secret itself is never given to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub id: String,
    pub secret_hash: String,
    pub name: String,
    pub team: Option<String>,
    /// Services the key may call; empty means every service.
    pub services: Vec<String>,
    /// HTTP methods the key may use; empty means every method.
    pub methods: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub secret_hash: String,
    pub name: String,
    pub team: Option<String>,
    pub services: Vec<String>,
    pub methods: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The hash before the last rotation, still accepted until
    /// `previous_until`.
    pub previous_hash: Option<String>,
    pub previous_until: Option<i64>,
    /// Last change; caches poll for changes after their last seen value.
    pub updated_at: i64,
}

/// One admin action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Assigned by the store; 0 in entries not yet stored.
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// "ok", or what went wrong.
    pub outcome: String,
    pub detail: String,
}
