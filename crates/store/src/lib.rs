//! blastdoor's storage: narrow traits ([`KeyStore`], [`AuditStore`],
//! [`LedgerStore`], [`BudgetStore`]) over
//! one SQL implementation that runs on the embedded SQLite (default) and on
//! PostgreSQL (for replicas), with versioned migrations for each.
//!
//! The request path never waits on the store: keys are served from an
//! in-memory cache fed by [`KeyStore::keys_changed_since`], and writes
//! happen on admin actions or in background writers.

mod audit;
mod budgets;
mod keys;
mod ledger;
mod migrate;
mod model;
mod sql;
mod sql_ledger;

pub use audit::AuditStore;
pub use budgets::BudgetStore;
pub use keys::KeyStore;
pub use ledger::{LedgerStore, hour_of};
pub use migrate::Migration;
pub use model::{
    AuditEntry, BudgetRecord, BudgetScope, EdgeRow, GroupBy, HourRow, KeyRecord, LedgerEntry,
    LedgerRecord, NewKey, OperationRow, UsageRow, now_ms,
};
pub use sql::SqlStore;

/// What can go wrong talking to the store. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported store url {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot open the store: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the store was migrated by a newer blastdoor (schema {found}, this binary knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("a key with id {0} already exists")]
    Duplicate(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;
