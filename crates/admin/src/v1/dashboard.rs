//! `/v1/dashboard/*`: what the dashboard draws, shaped for it.
//!
//! - `live`: this node's requests, errors and latency over the last hour
//!   or day, from memory (each replica shows its own traffic);
//! - `spend`: cost today and this month, by service, team and consumer,
//!   and hour by hour over the last day, from the ledger's rollups;
//! - `graph`: who calls which service, from the ledger's rollups.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use blastdoor_budget::Period;
use blastdoor_store::{GroupBy, LedgerStore, UsageRow, now_ms};
use blastdoor_telemetry::recent::{Step, Window};
use serde::{Deserialize, Serialize};

use super::{Api, usd};
use crate::problem::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    window: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Live {
    now: i64,
    window: &'static str,
    step_seconds: u64,
    totals: Stats,
    /// Every step of the window, oldest first.
    series: Vec<SeriesPoint>,
    /// Services with traffic in the window, busiest first.
    services: Vec<ServiceStats>,
}

#[derive(Debug, Serialize)]
struct Stats {
    requests: u64,
    errors: u64,
    rps: f64,
    error_rate: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    overhead_p50_ms: Option<f64>,
    overhead_p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
struct SeriesPoint {
    t: i64,
    requests: u64,
    errors: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    overhead_p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ServiceStats {
    service: String,
    #[serde(flatten)]
    stats: Stats,
}

fn ms(secs: Option<f64>) -> Option<f64> {
    secs.map(|s| s * 1000.0)
}

fn stats(sum: &Step, window: Window) -> Stats {
    let secs = (window.step_secs() * window.steps() as u64) as f64;
    Stats {
        requests: sum.requests,
        errors: sum.errors,
        rps: sum.requests as f64 / secs,
        error_rate: if sum.requests == 0 {
            0.0
        } else {
            sum.errors as f64 / sum.requests as f64
        },
        p50_ms: ms(sum.latency_quantile(0.5)),
        p99_ms: ms(sum.latency_quantile(0.99)),
        overhead_p50_ms: ms(sum.overhead_quantile(0.5)),
        overhead_p99_ms: ms(sum.overhead_quantile(0.99)),
    }
}

pub async fn live(
    State(api): State<Arc<Api>>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Live>, ApiError> {
    let w = q.window.as_deref().unwrap_or("1h");
    let window = Window::parse(w)
        .ok_or_else(|| ApiError::bad_request(format!("window must be 1h or 24h (got {w:?})")))?;
    let snapshot = api.gateway.snapshot();
    let names: Vec<&str> = snapshot
        .services
        .iter()
        .map(|s| s.config.name.as_str())
        .collect();
    let mut series: Vec<Step> = Vec::new();
    let mut services = Vec::new();
    for (name, recent) in api.gateway.metrics.recent(&names) {
        let steps = recent.window(window);
        if series.is_empty() {
            series = steps
                .iter()
                .map(|s| Step {
                    t: s.t,
                    ..Step::default()
                })
                .collect();
        }
        let mut sum = Step::default();
        for (total, step) in series.iter_mut().zip(&steps) {
            total.add(step);
            sum.add(step);
        }
        if sum.requests > 0 {
            services.push(ServiceStats {
                service: name,
                stats: stats(&sum, window),
            });
        }
    }
    services.sort_by(|a, b| {
        b.stats
            .requests
            .cmp(&a.stats.requests)
            .then_with(|| a.service.cmp(&b.service))
    });
    let mut total = Step::default();
    for step in &series {
        total.add(step);
    }
    Ok(Json(Live {
        now: now_ms(),
        window: window.as_str(),
        step_seconds: window.step_secs(),
        totals: stats(&total, window),
        series: series
            .iter()
            .map(|s| SeriesPoint {
                t: s.t,
                requests: s.requests,
                errors: s.errors,
                p50_ms: ms(s.latency_quantile(0.5)),
                p99_ms: ms(s.latency_quantile(0.99)),
                overhead_p99_ms: ms(s.overhead_quantile(0.99)),
            })
            .collect(),
        services,
    }))
}

#[derive(Debug, Serialize)]
pub struct Spend {
    now: i64,
    today: Span,
    month: Span,
    by_service: Vec<Group>,
    by_team: Vec<Group>,
    /// The ten costliest consumers this month.
    top_consumers: Vec<Group>,
    hourly: Hourly,
}

/// Spend over a calendar period (UTC).
#[derive(Debug, Serialize)]
struct Span {
    from: i64,
    requests: u64,
    cost_usd: String,
}

#[derive(Debug, Serialize)]
struct Group {
    group: String,
    requests: u64,
    cost_usd: String,
}

#[derive(Debug, Serialize)]
struct Hourly {
    from: i64,
    step_seconds: u64,
    rows: Vec<HourlyRow>,
}

#[derive(Debug, Serialize)]
struct HourlyRow {
    t: i64,
    service: String,
    requests: u64,
    cost_usd: String,
}

fn groups(rows: Vec<UsageRow>, limit: usize) -> Vec<Group> {
    rows.into_iter()
        .take(limit)
        .map(|r| Group {
            group: r.group,
            requests: r.requests,
            cost_usd: usd(r.cost_micros),
        })
        .collect()
}

fn period(rows: &[UsageRow], from: i64) -> Span {
    Span {
        from,
        requests: rows.iter().map(|r| r.requests).sum(),
        cost_usd: usd(rows.iter().map(|r| r.cost_micros).sum()),
    }
}

/// Services, teams and consumers listed; the rest are left out.
const MAX_GROUPS: usize = 50;
const TOP_CONSUMERS: usize = 10;
const DAY_MS: i64 = 86_400_000;

pub async fn spend(State(api): State<Arc<Api>>) -> Result<Json<Spend>, ApiError> {
    let now = now_ms();
    let (day, month) = (Period::Day.start(now), Period::Month.start(now));
    let store = &api.store;
    let today = store.usage(GroupBy::Service, day, now).await?;
    let by_service = store.usage(GroupBy::Service, month, now).await?;
    let by_team = store.usage(GroupBy::Team, month, now).await?;
    let consumers = store.usage(GroupBy::Consumer, month, now).await?;
    let from = now - DAY_MS;
    let hourly = store.hourly(GroupBy::Service, from, now).await?;
    Ok(Json(Spend {
        now,
        today: period(&today, day),
        month: period(&by_service, month),
        by_service: groups(by_service, MAX_GROUPS),
        by_team: groups(by_team, MAX_GROUPS),
        top_consumers: groups(consumers, TOP_CONSUMERS),
        hourly: Hourly {
            from: blastdoor_store::hour_of(from),
            step_seconds: 3600,
            rows: hourly
                .into_iter()
                .map(|h| HourlyRow {
                    t: h.hour,
                    service: h.group,
                    requests: h.requests,
                    cost_usd: usd(h.cost_micros),
                })
                .collect(),
        },
    }))
}

#[derive(Debug, Serialize)]
pub struct Graph {
    window: String,
    from: i64,
    to: i64,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct Node {
    kind: &'static str,
    id: String,
    label: String,
}

#[derive(Debug, Serialize)]
struct Edge {
    from: String,
    to: String,
    requests: u64,
    per_minute: f64,
    cost_usd: String,
}

pub async fn graph(
    State(api): State<Arc<Api>>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Graph>, ApiError> {
    let w = q.window.unwrap_or_else(|| "24h".to_string());
    let span_ms: i64 = match w.as_str() {
        "1h" => 3_600_000,
        "24h" => DAY_MS,
        "7d" => 7 * DAY_MS,
        "30d" => 30 * DAY_MS,
        _ => {
            return Err(ApiError::bad_request(format!(
                "window must be 1h, 24h, 7d or 30d (got {w:?})"
            )));
        }
    };
    let to = now_ms();
    let from = to - span_ms;
    let rows = api.store.edges(from, to).await?;
    // Rollups are hourly: the window read is whole hours.
    let minutes = ((blastdoor_store::hour_of(to + 3_599_999) - blastdoor_store::hour_of(from))
        / 60_000)
        .max(1) as f64;
    let mut nodes = std::collections::BTreeSet::new();
    let edges = rows
        .into_iter()
        .map(|r| {
            let team = format!("team:{}", r.team);
            let service = format!("service:{}", r.service);
            nodes.insert(Node {
                kind: "team",
                id: team.clone(),
                label: if r.team.is_empty() {
                    "(no team)".to_string()
                } else {
                    r.team
                },
            });
            nodes.insert(Node {
                kind: "service",
                id: service.clone(),
                label: r.service,
            });
            Edge {
                from: team,
                to: service,
                requests: r.requests,
                per_minute: r.requests as f64 / minutes,
                cost_usd: usd(r.cost_micros),
            }
        })
        .collect();
    Ok(Json(Graph {
        window: w,
        from,
        to,
        nodes: nodes.into_iter().collect(),
        edges,
    }))
}
