//! `/v1/usage`: cost and usage from the ledger, grouped. The same report
//! as `blastdoor usage`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use blastdoor_store::{GroupBy, LedgerStore, UsageRow, hour_of, now_ms};
use serde::{Deserialize, Serialize};

use super::{Api, usd};
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
    /// json (default) | csv
    format: Option<String>,
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
                    cost_usd: usd(r.cost_micros),
                    unpriced_requests: r.unpriced_requests,
                    units: r.units,
                })
                .collect(),
        }
    }

    /// Every unit any row has, in name order: the unit columns.
    pub fn unit_columns(&self) -> Vec<&str> {
        let units: BTreeSet<&str> = self
            .rows
            .iter()
            .flat_map(|r| r.units.keys().map(String::as_str))
            .collect();
        units.into_iter().collect()
    }

    /// RFC 4180 CSV: a header (the grouping, requests, cost_usd,
    /// unpriced_requests, then one column per unit) and one line per row.
    pub fn to_csv(&self) -> String {
        let units = self.unit_columns();
        let mut header = vec![
            self.group_by.as_str(),
            "requests",
            "cost_usd",
            "unpriced_requests",
        ];
        header.extend(&units);
        let mut out = header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(",")
            + "\n";
        for r in &self.rows {
            let mut fields = vec![
                csv_field(&r.group),
                r.requests.to_string(),
                r.cost_usd.clone(),
                r.unpriced_requests.to_string(),
            ];
            fields.extend(
                units
                    .iter()
                    .map(|u| r.units.get(*u).copied().unwrap_or(0).to_string()),
            );
            out += &(fields.join(",") + "\n");
        }
        out
    }
}

/// RFC 4180: quote a field holding a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
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

/// The report as JSON, or as CSV with `format=csv` (the dashboard's
/// export).
pub async fn get(
    State(api): State<Arc<Api>>,
    Query(q): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "format must be json or csv (got {f:?})"
            )));
        }
    };
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
    let report = report(&api.store, group_by, from, to).await?;
    if csv {
        let name = format!(
            "attachment; filename=\"blastdoor-usage-{}.csv\"",
            group_by.as_str()
        );
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, name),
            ],
            report.to_csv(),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("media"), "media");
        assert_eq!(csv_field("ads, video"), "\"ads, video\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
