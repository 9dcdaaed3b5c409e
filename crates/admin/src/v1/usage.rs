//! `/v1/usage`: cost and usage from the ledger, grouped. The same report
//! as `blastdoor usage`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use blastdoor_store::{GroupBy, LedgerStore, UsageRow, hour_of, now_ms};
use blastdoor_types::Money;
use serde::{Deserialize, Serialize};

use super::Api;
use crate::problem::ApiError;

/// The default window: the last 7 days.
const DEFAULT_WINDOW_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    group_by: Option<String>,
    /// Unix milliseconds; default: 7 days ago.
    from: Option<i64>,
    /// Unix milliseconds; default: now.
    to: Option<i64>,
}

/// A usage report as JSON: `{"rows": [{"group", "requests", "cost_usd",
/// "units"}]}`. The window is widened to whole hours (UTC) and says so.
#[derive(Debug, Serialize)]
pub struct UsageReport {
    pub group_by: GroupBy,
    pub from: i64,
    pub to: i64,
    pub rows: Vec<UsageRowView>,
}

#[derive(Debug, Serialize)]
pub struct UsageRowView {
    pub group: String,
    pub requests: u64,
    /// Decimal US dollars, exact (from integer micro-dollars).
    pub cost_usd: String,
    /// Requests whose usage could not be fully priced: never a silent $0.
    pub unpriced_requests: u64,
    pub units: BTreeMap<String, u64>,
}

impl UsageReport {
    pub fn new(group_by: GroupBy, from: i64, to: i64, rows: Vec<UsageRow>) -> Self {
        UsageReport {
            group_by,
            from: hour_of(from),
            to: hour_of(to.saturating_add(3_599_999)),
            rows: rows
                .into_iter()
                .map(|r| UsageRowView {
                    group: r.group,
                    requests: r.requests,
                    cost_usd: Money(u64::try_from(r.cost_micros).unwrap_or(0)).to_string(),
                    unpriced_requests: r.unpriced_requests,
                    units: r.units,
                })
                .collect(),
        }
    }
}

/// Reads the report; shared by the API and the CLI.
pub async fn report<S: LedgerStore>(
    store: &S,
    group_by: GroupBy,
    from: i64,
    to: i64,
) -> blastdoor_store::Result<UsageReport> {
    let rows = store.usage(group_by, from, to).await?;
    Ok(UsageReport::new(group_by, from, to, rows))
}

pub async fn get(
    State(api): State<Arc<Api>>,
    Query(q): Query<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let group_by = match q.group_by.as_deref() {
        None => GroupBy::Service,
        Some(g) => GroupBy::parse(g).ok_or_else(|| {
            ApiError::bad_request(format!(
                "group_by must be one of team, consumer, service, operation, origin, key (got {g:?})"
            ))
        })?,
    };
    let to = q.to.unwrap_or_else(now_ms);
    let from = q.from.unwrap_or(to - DEFAULT_WINDOW_MS);
    if from > to {
        return Err(ApiError::bad_request("from must not be after to"));
    }
    Ok(Json(report(&api.store, group_by, from, to).await?))
}
