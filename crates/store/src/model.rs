//! Records as the store holds them. Times are unix milliseconds; money and
//! secrets never appear as floats or plain text.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

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

/// One admitted request, as the ledger keeps it. Money is integer
/// micro-dollars; `units` are whole amounts (tokens, images, seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRecord {
    /// Unique per request, assigned by the gateway (not the caller's
    /// request id, which callers choose): inserts are idempotent on it.
    pub id: String,
    /// When the request started, unix milliseconds.
    pub at: i64,
    pub request_id: String,
    pub trace_id: String,
    /// Who started the call chain.
    pub origin: String,
    pub consumer: String,
    pub key_id: String,
    pub team: String,
    pub service: String,
    pub operation: String,
    pub method: String,
    pub status: u16,
    /// The gateway's error code, when the gateway answered.
    pub error: Option<String>,
    /// The response reached its end (false: caller gone, stream broken).
    pub complete: bool,
    pub latency_ms: u64,
    pub model: Option<String>,
    pub units: BTreeMap<String, u64>,
    pub cost_micros: i64,
    /// Why part of the usage could not be priced; never a silent $0.
    pub unpriced: Option<String>,
}

/// A [`LedgerRecord`] as the request path writes it to the spool: its
/// text borrowed from the request, so settling one copies no strings.
/// Serializes exactly as the record does (a test holds them together).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LedgerEntry<'a> {
    pub id: &'a str,
    pub at: i64,
    pub request_id: &'a str,
    pub trace_id: &'a str,
    pub origin: &'a str,
    pub consumer: &'a str,
    pub key_id: &'a str,
    pub team: &'a str,
    pub service: &'a str,
    pub operation: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub error: Option<&'a str>,
    pub complete: bool,
    pub latency_ms: u64,
    pub model: Option<&'a str>,
    pub units: &'a BTreeMap<String, u64>,
    pub cost_micros: i64,
    pub unpriced: Option<&'a str>,
}

impl LedgerRecord {
    pub fn entry(&self) -> LedgerEntry<'_> {
        LedgerEntry {
            id: &self.id,
            at: self.at,
            request_id: &self.request_id,
            trace_id: &self.trace_id,
            origin: &self.origin,
            consumer: &self.consumer,
            key_id: &self.key_id,
            team: &self.team,
            service: &self.service,
            operation: &self.operation,
            method: &self.method,
            status: self.status,
            error: self.error.as_deref(),
            complete: self.complete,
            latency_ms: self.latency_ms,
            model: self.model.as_deref(),
            units: &self.units,
            cost_micros: self.cost_micros,
            unpriced: self.unpriced.as_deref(),
        }
    }
}

/// What a usage report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Team,
    Consumer,
    Service,
    Operation,
    Origin,
    Key,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] = [
        GroupBy::Team,
        GroupBy::Consumer,
        GroupBy::Service,
        GroupBy::Operation,
        GroupBy::Origin,
        GroupBy::Key,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Team => "team",
            GroupBy::Consumer => "consumer",
            GroupBy::Service => "service",
            GroupBy::Operation => "operation",
            GroupBy::Origin => "origin",
            GroupBy::Key => "key",
        }
    }

    pub fn parse(s: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// One group of a usage report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub group: String,
    pub requests: u64,
    pub cost_micros: i64,
    pub unpriced_requests: u64,
    pub units: BTreeMap<String, u64>,
}

/// One group's traffic in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourRow {
    /// Unix milliseconds at the start of the hour (UTC).
    pub hour: i64,
    pub group: String,
    pub requests: u64,
    pub cost_micros: i64,
}

/// Calls from a team to a service over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeRow {
    pub service: String,
    pub team: String,
    pub requests: u64,
    pub cost_micros: i64,
    /// The last hour (unix ms) with a call.
    pub last_hour: i64,
}

/// Calls to one operation of a service over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationRow {
    pub service: String,
    pub operation: String,
    pub requests: u64,
    pub cost_micros: i64,
    /// The last hour (unix ms) with a call.
    pub last_hour: i64,
}

/// What a budget applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    Key,
    Team,
    Service,
}

impl BudgetScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Key => "key",
            BudgetScope::Team => "team",
            BudgetScope::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<BudgetScope> {
        [BudgetScope::Key, BudgetScope::Team, BudgetScope::Service]
            .into_iter()
            .find(|b| b.as_str() == s)
    }
}

/// A stored budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRecord {
    pub scope: BudgetScope,
    pub target: String,
    pub amount_micros: i64,
    /// day | week | month | total
    pub period: String,
    /// hard | soft
    pub mode: String,
    /// Percentages of the amount at which an alert is raised.
    pub alerts: Vec<u32>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(full: bool) -> LedgerRecord {
        LedgerRecord {
            id: "0193a1b2c3d4e5f6a7b8c9d0e1f2".into(),
            at: 1_790_000_000_000,
            request_id: "req \"1\"".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            origin: "alice".into(),
            consumer: "alice".into(),
            key_id: "k1".into(),
            team: if full { "media".into() } else { String::new() },
            service: "chat".into(),
            operation: "createImage".into(),
            method: "POST".into(),
            status: 502,
            error: full.then(|| "upstream_unavailable".into()),
            complete: !full,
            latency_ms: 3,
            model: full.then(|| "gpt-image-1".into()),
            units: if full {
                BTreeMap::from([("image".into(), 2), ("input_tokens".into(), 17)])
            } else {
                BTreeMap::new()
            },
            cost_micros: 40_000,
            unpriced: full.then(|| "model gpt-image-1 has no price".into()),
        }
    }

    #[test]
    fn an_entry_is_written_as_its_record_is() {
        for full in [true, false] {
            let r = record(full);
            let from_entry = serde_json::to_string(&r.entry()).unwrap();
            assert_eq!(from_entry, serde_json::to_string(&r).unwrap());
            let back: LedgerRecord = serde_json::from_str(&from_entry).unwrap();
            assert_eq!(back, r);
        }
    }
}
