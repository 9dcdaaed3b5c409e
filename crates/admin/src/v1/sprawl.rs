//! `/v1/reports/sprawl` and `blastdoor report sprawl`: where the fleet is
//! sprawling, from the config, the contracts and the ledger's rollups:
//! services nobody owns or describes, services and operations nobody
//! calls, traffic no contract describes, deprecated services still called
//! (and by whom), near-duplicate operations across services, and the
//! costliest services with their trend.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use blastdoor_config::Config;
use blastdoor_store::{GroupBy, LedgerStore, Result, now_ms};
use serde::{Deserialize, Serialize};

use super::{Api, usd};
use crate::problem::ApiError;

/// Operations at least this similar (Jaccard, 0..1) are reported as
/// overlapping.
const OVERLAP_THRESHOLD: f64 = 0.6;
const MAX_OVERLAPS: usize = 20;
const MAX_COSTLIEST: usize = 10;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Serialize)]
pub struct SprawlReport {
    /// The window, in days, ending now; trends compare it with the one
    /// before.
    pub days: u32,
    pub without_owner: Vec<String>,
    pub without_contract: Vec<String>,
    /// Services with no traffic in the window.
    pub zombie_services: Vec<String>,
    /// Documented operations with no traffic in the window (of services
    /// that had some).
    pub zombie_operations: Vec<ServiceOperation>,
    /// Traffic to services with a contract that their contract does not
    /// describe.
    pub shadow_traffic: Vec<Shadow>,
    pub deprecated_in_use: Vec<DeprecatedInUse>,
    pub overlaps: Vec<Overlap>,
    pub costliest: Vec<Cost>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ServiceOperation {
    pub service: String,
    pub operation: String,
}

#[derive(Debug, Serialize)]
pub struct Shadow {
    pub service: String,
    pub requests: u64,
}

#[derive(Debug, Serialize)]
pub struct DeprecatedInUse {
    pub service: String,
    /// Unix seconds.
    pub sunset: Option<i64>,
    pub requests: u64,
    pub callers: Vec<Caller>,
}

#[derive(Debug, Serialize)]
pub struct Caller {
    /// "" for calls without a team.
    pub team: String,
    pub requests: u64,
}

#[derive(Debug, Serialize)]
pub struct Overlap {
    pub a: ServiceOperation,
    pub b: ServiceOperation,
    /// Shared share of method, path words, parameters and request and
    /// response fields (0 to 1).
    pub similarity: f64,
}

#[derive(Debug, Serialize)]
pub struct Cost {
    pub service: String,
    pub cost_usd: String,
    pub previous_cost_usd: String,
    /// Change against the window before, in percent; None when that one
    /// cost nothing.
    pub change_percent: Option<f64>,
}

/// Builds the report for the `days` before `now`.
pub async fn report<S: LedgerStore>(
    config: &Config,
    store: &S,
    days: u32,
    now: i64,
) -> Result<SprawlReport> {
    let window = i64::from(days) * DAY_MS;
    let (from, before) = (now - window, now - 2 * window);
    let usage = store.usage(GroupBy::Service, from, now).await?;
    let previous = store.usage(GroupBy::Service, before, from).await?;
    let operations = store.operation_traffic(from, now).await?;
    let edges = store.edges(from, now).await?;
    let requests: BTreeMap<&str, u64> = usage
        .iter()
        .map(|r| (r.group.as_str(), r.requests))
        .collect();
    let called: HashSet<(&str, &str)> = operations
        .iter()
        .filter(|o| o.requests > 0)
        .map(|o| (o.service.as_str(), o.operation.as_str()))
        .collect();
    let services = &config.services;
    let mut report = SprawlReport {
        days,
        without_owner: names(services.iter().filter(|s| s.owner.is_empty())),
        without_contract: names(services.iter().filter(|s| s.contract.is_none())),
        zombie_services: names(
            services
                .iter()
                .filter(|s| !requests.contains_key(s.name.as_str())),
        ),
        zombie_operations: Vec::new(),
        shadow_traffic: Vec::new(),
        deprecated_in_use: Vec::new(),
        overlaps: overlaps(config),
        costliest: costliest(&usage, &previous),
    };
    for svc in services {
        if let Some(spec) = &svc.contract
            && requests.contains_key(svc.name.as_str())
        {
            for op in &spec.contract.operations {
                if !called.contains(&(svc.name.as_str(), op.id.as_str())) {
                    report.zombie_operations.push(ServiceOperation {
                        service: svc.name.clone(),
                        operation: op.id.clone(),
                    });
                }
            }
        }
        if svc.contract.is_some()
            && let Some(shadow) = operations
                .iter()
                .find(|o| o.service == svc.name && o.operation.is_empty() && o.requests > 0)
        {
            report.shadow_traffic.push(Shadow {
                service: svc.name.clone(),
                requests: shadow.requests,
            });
        }
        if let (Some(d), Some(n)) = (&svc.deprecation, requests.get(svc.name.as_str())) {
            let mut callers: Vec<Caller> = edges
                .iter()
                .filter(|e| e.service == svc.name)
                .map(|e| Caller {
                    team: e.team.clone(),
                    requests: e.requests,
                })
                .collect();
            callers.sort_by(|a, b| {
                b.requests
                    .cmp(&a.requests)
                    .then_with(|| a.team.cmp(&b.team))
            });
            report.deprecated_in_use.push(DeprecatedInUse {
                service: svc.name.clone(),
                sunset: d.sunset,
                requests: *n,
                callers,
            });
        }
    }
    Ok(report)
}

fn names<'a>(services: impl Iterator<Item = &'a blastdoor_config::Service>) -> Vec<String> {
    services.map(|s| s.name.clone()).collect()
}

/// Pairs of operations in different services whose signatures share most
/// of their tokens.
fn overlaps(config: &Config) -> Vec<Overlap> {
    let ops: Vec<(&str, &blastdoor_contract::CompiledOperation)> = config
        .services
        .iter()
        .filter_map(|s| s.contract.as_ref().map(|c| (s.name.as_str(), c)))
        .flat_map(|(name, c)| c.contract.operations.iter().map(move |op| (name, op)))
        .collect();
    let mut found = Vec::new();
    for (i, (sa, a)) in ops.iter().enumerate() {
        for (sb, b) in &ops[i + 1..] {
            if sa == sb {
                continue;
            }
            let shared = a.signature.intersection(&b.signature).count();
            let all = a.signature.union(&b.signature).count();
            let similarity = if all == 0 {
                0.0
            } else {
                shared as f64 / all as f64
            };
            if similarity >= OVERLAP_THRESHOLD {
                found.push(Overlap {
                    a: ServiceOperation {
                        service: sa.to_string(),
                        operation: a.id.clone(),
                    },
                    b: ServiceOperation {
                        service: sb.to_string(),
                        operation: b.id.clone(),
                    },
                    similarity: (similarity * 100.0).round() / 100.0,
                });
            }
        }
    }
    found.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
    found.truncate(MAX_OVERLAPS);
    found
}

fn costliest(
    usage: &[blastdoor_store::UsageRow],
    previous: &[blastdoor_store::UsageRow],
) -> Vec<Cost> {
    let before: BTreeMap<&str, i64> = previous
        .iter()
        .map(|r| (r.group.as_str(), r.cost_micros))
        .collect();
    let mut rows: Vec<&blastdoor_store::UsageRow> =
        usage.iter().filter(|r| r.cost_micros > 0).collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.cost_micros));
    rows.into_iter()
        .take(MAX_COSTLIEST)
        .map(|r| {
            let prev = before.get(r.group.as_str()).copied().unwrap_or(0);
            Cost {
                service: r.group.clone(),
                cost_usd: usd(r.cost_micros),
                previous_cost_usd: usd(prev),
                change_percent: (prev > 0)
                    .then(|| ((r.cost_micros - prev) as f64 * 1000.0 / prev as f64).round() / 10.0),
            }
        })
        .collect()
}

impl SprawlReport {
    /// Plain text, one section per finding.
    pub fn text(&self) -> String {
        self.render(false)
    }

    /// Markdown, for a wiki page or a ticket.
    pub fn markdown(&self) -> String {
        self.render(true)
    }

    fn render(&self, md: bool) -> String {
        let mut out = String::new();
        let heading = |out: &mut String, title: &str, n: usize| {
            if md {
                let _ = writeln!(out, "\n### {title} ({n})\n");
            } else {
                let _ = writeln!(out, "\n{title} ({n})");
            }
        };
        let item = |out: &mut String, line: String| {
            let _ = writeln!(out, "{}{line}", if md { "- " } else { "  " });
        };
        if md {
            let _ = writeln!(out, "## Sprawl report, last {} days", self.days);
        } else {
            let _ = writeln!(out, "Sprawl report, last {} days", self.days);
        }
        heading(
            &mut out,
            "Services without an owner",
            self.without_owner.len(),
        );
        self.without_owner
            .iter()
            .for_each(|s| item(&mut out, s.clone()));
        heading(
            &mut out,
            "Services without a contract",
            self.without_contract.len(),
        );
        self.without_contract
            .iter()
            .for_each(|s| item(&mut out, s.clone()));
        heading(
            &mut out,
            "Zombie services (no traffic)",
            self.zombie_services.len(),
        );
        self.zombie_services
            .iter()
            .for_each(|s| item(&mut out, s.clone()));
        heading(
            &mut out,
            "Zombie operations (no traffic)",
            self.zombie_operations.len(),
        );
        for z in &self.zombie_operations {
            item(&mut out, format!("{} {}", z.service, z.operation));
        }
        heading(
            &mut out,
            "Shadow traffic (not in the contract)",
            self.shadow_traffic.len(),
        );
        for s in &self.shadow_traffic {
            item(&mut out, format!("{}: {} requests", s.service, s.requests));
        }
        heading(
            &mut out,
            "Deprecated services still called",
            self.deprecated_in_use.len(),
        );
        for d in &self.deprecated_in_use {
            let callers: Vec<String> = d
                .callers
                .iter()
                .map(|c| {
                    let team = if c.team.is_empty() {
                        "(no team)"
                    } else {
                        &c.team
                    };
                    format!("{team} {}", c.requests)
                })
                .collect();
            item(
                &mut out,
                format!(
                    "{}: {} requests; callers: {}",
                    d.service,
                    d.requests,
                    callers.join(", ")
                ),
            );
        }
        heading(&mut out, "Overlapping operations", self.overlaps.len());
        for o in &self.overlaps {
            item(
                &mut out,
                format!(
                    "{} {} ~ {} {}: {:.2}",
                    o.a.service, o.a.operation, o.b.service, o.b.operation, o.similarity
                ),
            );
        }
        heading(&mut out, "Costliest services", self.costliest.len());
        for c in &self.costliest {
            let trend = c
                .change_percent
                .map_or_else(|| "new".to_string(), |p| format!("{p:+}%"));
            item(
                &mut out,
                format!(
                    "{}: ${} (before: ${}, {trend})",
                    c.service, c.cost_usd, c.previous_cost_usd
                ),
            );
        }
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SprawlQuery {
    /// The window in days (default 30).
    days: Option<u32>,
}

pub async fn get(
    State(api): State<Arc<Api>>,
    Query(q): Query<SprawlQuery>,
) -> std::result::Result<Json<SprawlReport>, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::bad_request("days must be from 1 to 3650"));
    }
    let snapshot = api.gateway.snapshot();
    Ok(Json(
        report(&snapshot.config, &api.store, days, now_ms()).await?,
    ))
}
