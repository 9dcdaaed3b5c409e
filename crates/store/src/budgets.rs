//! The budget store: spending limits, set by admins, read by every node.

use std::future::Future;

use crate::{BudgetRecord, BudgetScope, Result};

pub trait BudgetStore: Send + Sync {
    /// Creates or replaces the budget of `(scope, target)`.
    fn put_budget(&self, budget: &BudgetRecord) -> impl Future<Output = Result<()>> + Send;

    fn list_budgets(&self) -> impl Future<Output = Result<Vec<BudgetRecord>>> + Send;

    /// Removes a budget; false if there was none.
    fn delete_budget(
        &self,
        scope: BudgetScope,
        target: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
}
