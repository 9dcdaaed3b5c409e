//! The ledger store: usage records written in batches by the ledger
//! writer, hourly rollups kept with them, and reports read from those.

use std::future::Future;

use crate::{GroupBy, LedgerRecord, Result, UsageRow};

pub trait LedgerStore: Send + Sync {
    /// Stores a batch in one transaction, with its rollups. Records whose
    /// id is already stored are skipped (a replayed spool); returns how
    /// many were new.
    fn append_ledger(&self, batch: &[LedgerRecord]) -> impl Future<Output = Result<usize>> + Send;

    /// Usage between `from` and `to` (unix ms), grouped. Reports read the
    /// hourly rollups: `from` is floored and `to` rounded up to the hour.
    fn usage(
        &self,
        group_by: GroupBy,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<UsageRow>>> + Send;

    /// Requests and cost per hour and group between `from` and `to` (unix
    /// ms, whole hours), oldest first; hours without traffic are absent.
    fn hourly(
        &self,
        group_by: GroupBy,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<crate::HourRow>>> + Send;

    /// Who called which service between `from` and `to` (unix ms, whole
    /// hours): one row per (service, team); team "" is calls without one.
    fn edges(&self, from: i64, to: i64)
    -> impl Future<Output = Result<Vec<crate::EdgeRow>>> + Send;

    /// Calls per (service, operation) between `from` and `to`; operation ""
    /// is traffic no contract described.
    fn operation_traffic(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<crate::OperationRow>>> + Send;

    /// Cost since `from` (hour-aligned, unix ms) of everything matching
    /// `column = target`, for budgets.
    fn spend_since(
        &self,
        scope: crate::BudgetScope,
        target: &str,
        from: i64,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// (service, model) pairs seen since `since` whose usage had no price.
    fn unpriced_models(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;

    /// The records of one request id (callers may reuse ids: several). On
    /// SQLite this scans the ledger (no index slows every write for it):
    /// for debugging and tests, not for a request path.
    fn ledger_by_request(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>>> + Send;

    /// How many records the ledger holds.
    fn ledger_count(&self) -> impl Future<Output = Result<u64>> + Send;
}

/// Floors unix milliseconds to the hour.
pub fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(3_600_000)
}
