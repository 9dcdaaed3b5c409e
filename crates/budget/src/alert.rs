//! Budget alerts: raised once per threshold per period, to the log, a
//! metric, and (through a channel the binary drains) a webhook.

use blastdoor_store::BudgetScope;
use blastdoor_types::Money;
use serde::Serialize;

/// A budget crossed one of its thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub scope: BudgetScope,
    pub target: String,
    /// Percent of the amount.
    pub threshold: u32,
    pub mode: &'static str,
    pub period: &'static str,
    /// Unix milliseconds at which the period began.
    pub period_start: i64,
    pub spent_usd: String,
    pub amount_usd: String,
}

pub(crate) fn usd(micros: i64) -> String {
    Money(u64::try_from(micros).unwrap_or(0)).to_string()
}
