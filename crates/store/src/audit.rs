//! The audit store: an append-only log of admin actions.

use std::future::Future;

use crate::{AuditEntry, Result};

pub trait AuditStore: Send + Sync {
    /// Appends an entry; returns its sequence number.
    fn append_audit(&self, entry: &AuditEntry) -> impl Future<Output = Result<i64>> + Send;

    /// Entries at or after `since` (unix ms), newest first, at most `limit`.
    fn list_audit(
        &self,
        since: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;
}
