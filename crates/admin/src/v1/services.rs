//! `/v1/services`: the catalog as the running gateway sees it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use blastdoor_store::LedgerStore;

use super::{Api, usd};
use crate::problem::ApiError;

#[derive(Debug, Serialize)]
pub struct ServiceView {
    name: String,
    owner: String,
    lifecycle: &'static str,
    description: String,
    tags: Vec<String>,
    /// Set on a deprecated service.
    deprecation: Option<DeprecationView>,
    route: RouteView,
    public: bool,
    upstreams: Vec<UpstreamView>,
    /// None: the service has no contract.
    contract: Option<ContractView>,
    /// Teams that called it in the last 30 days, busiest first (from the
    /// ledger's rollups; "" is calls without a team).
    callers: Vec<CallerView>,
}

#[derive(Debug, Serialize)]
struct CallerView {
    team: String,
    requests: u64,
    cost_usd: String,
}

#[derive(Debug, Serialize)]
struct ContractView {
    path: String,
    /// `info.version`.
    version: Option<String>,
    /// SHA-256 of the document.
    hash: String,
    validate: &'static str,
    undocumented: &'static str,
    response_sample: f64,
    operations: Vec<OperationView>,
    /// The last responses that broke the contract, newest first.
    drift: Vec<blastdoor_proxy::contract::DriftExample>,
}

#[derive(Debug, Serialize)]
struct OperationView {
    id: String,
    method: String,
    path: String,
    deprecated: bool,
    /// Calls in the last 30 days (from the ledger's rollups).
    requests: u64,
    /// The last hour (unix ms) it was called, if in the last 30 days.
    last_seen: Option<i64>,
    /// Since this node started (or the contract last changed).
    request_violations: u64,
    response_violations: u64,
}

#[derive(Debug, Serialize)]
struct DeprecationView {
    /// Unix seconds.
    since: i64,
    sunset: Option<i64>,
    link: Option<String>,
}

#[derive(Debug, Serialize)]
struct RouteView {
    prefix: String,
    host: Option<String>,
}

#[derive(Debug, Serialize)]
struct UpstreamView {
    url: String,
    healthy: bool,
    in_flight: usize,
}

/// How far back the catalog looks for callers.
const CALLERS_WINDOW_MS: i64 = 30 * 86_400_000;

pub async fn list(State(api): State<Arc<Api>>) -> Result<Json<Vec<ServiceView>>, ApiError> {
    let now = blastdoor_store::now_ms();
    let mut edges = api.store.edges(now - CALLERS_WINDOW_MS, now).await?;
    let traffic = api
        .store
        .operation_traffic(now - CALLERS_WINDOW_MS, now)
        .await?;
    edges.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.team.cmp(&b.team))
    });
    let snapshot = api.gateway.snapshot();
    let services = snapshot
        .services
        .iter()
        .map(|svc| ServiceView {
            name: svc.config.name.clone(),
            owner: svc.config.owner.clone(),
            lifecycle: svc.config.lifecycle.as_str(),
            description: svc.config.description.clone(),
            tags: svc.config.tags.clone(),
            deprecation: svc.config.deprecation.as_ref().map(|d| DeprecationView {
                since: d.since,
                sunset: d.sunset,
                link: d.link.clone(),
            }),
            route: RouteView {
                prefix: svc.config.route.prefix.clone(),
                host: svc.config.route.host.clone(),
            },
            public: svc.config.public,
            upstreams: svc
                .endpoints
                .iter()
                .map(|e| UpstreamView {
                    url: e.upstream.url.clone(),
                    healthy: e.is_available(),
                    in_flight: e.in_flight(),
                })
                .collect(),
            contract: contract_view(svc, &traffic),
            callers: edges
                .iter()
                .filter(|e| e.service == svc.config.name)
                .map(|e| CallerView {
                    team: e.team.clone(),
                    requests: e.requests,
                    cost_usd: usd(e.cost_micros),
                })
                .collect(),
        })
        .collect();
    Ok(Json(services))
}

fn contract_view(
    svc: &blastdoor_proxy::snapshot::ServiceRuntime,
    traffic: &[blastdoor_store::OperationRow],
) -> Option<ContractView> {
    use blastdoor_config::{Undocumented, Validate};
    let spec = svc.config.contract.as_ref()?;
    let c = &spec.contract;
    Some(ContractView {
        path: spec.path.display().to_string(),
        version: c.version.clone(),
        hash: c.hash.clone(),
        validate: match spec.validate {
            Validate::Enforce => "enforce",
            Validate::Report => "report",
            Validate::Off => "off",
        },
        undocumented: match spec.undocumented {
            Undocumented::Block => "block",
            Undocumented::Report => "report",
        },
        response_sample: spec.response_sample,
        operations: c
            .operations
            .iter()
            .map(|op| {
                let seen = traffic
                    .iter()
                    .find(|t| t.service == svc.config.name && t.operation == op.id);
                let (request_violations, response_violations) = svc.violations.of(op.index);
                OperationView {
                    id: op.id.clone(),
                    method: op.method.clone(),
                    path: op.path.clone(),
                    deprecated: op.deprecated,
                    requests: seen.map_or(0, |t| t.requests),
                    last_seen: seen.map(|t| t.last_hour),
                    request_violations,
                    response_violations,
                }
            })
            .collect(),
        drift: svc.drift.examples(),
    })
}
