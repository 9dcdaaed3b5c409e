//! A compiled config, ready to serve: the route table and each service's
//! runtime (endpoints, metric handles, budgets). Immutable once built and
//! swapped atomically on reload; requests keep the snapshot they started
//! with. Per-host and per-service counters carry over from the previous
//! snapshot so a reload loses neither outlier state nor in-flight counts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use blastdoor_config::{Config, Service};
use blastdoor_telemetry::{Metrics, ServiceMetrics};
use tokio_util::sync::CancellationToken;

use crate::contract::{Drift, ViolationCounts};
use crate::ctx::Admission;
use crate::endpoint::Endpoint;
use crate::limits::PolicyCache;
use crate::rate_limit::{Bucket, CallerConcurrency, PerCaller, UnitLimit};
use crate::retry_budget::RetryBudget;
use crate::route::RouteTable;

#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    pub routes: RouteTable<usize>,
    pub services: Vec<Arc<ServiceRuntime>>,
    /// Cancels this snapshot's background tasks (health checks) when a
    /// newer one replaces it.
    pub tasks: CancellationToken,
}

#[derive(Debug)]
pub struct ServiceRuntime {
    pub config: Service,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub metrics: Arc<ServiceMetrics>,
    pub retry_budget: RetryBudget,
    /// Requests per minute for the whole service (this node).
    pub limit_all: Option<Bucket>,
    /// Requests per minute per caller (this node).
    pub limit_per_caller: Option<PerCaller>,
    /// Requests in flight per caller (this node).
    pub caller_concurrency: Option<CallerConcurrency>,
    /// Units per minute, for the service and per caller (this node).
    pub unit_limits: Vec<UnitLimit>,
    /// `RateLimit-Policy` values already made for this config.
    pub policies: PolicyCache,
    /// Requests admitted and not yet settled; shared across snapshots.
    admitted: Arc<AtomicUsize>,
    /// Recent responses that broke the contract; shared across snapshots.
    pub drift: Arc<Drift>,
    /// Violations per operation; shared across snapshots while the
    /// contract is unchanged.
    pub violations: Arc<ViolationCounts>,
}

impl ServiceRuntime {
    /// Admits a request under the concurrency cap, or None to shed it.
    pub fn try_admit(self: &Arc<Self>) -> Option<Admission> {
        let before = self.admitted.fetch_add(1, Relaxed);
        if before >= self.config.max_concurrency {
            self.admitted.fetch_sub(1, Relaxed);
            return None;
        }
        Some(Admission(Arc::clone(self)))
    }

    pub(crate) fn release(&self) {
        self.admitted.fetch_sub(1, Relaxed);
    }
}

impl Snapshot {
    pub fn build(config: Config, previous: Option<&Snapshot>, metrics: &Metrics) -> Snapshot {
        let mut old_endpoints: HashMap<(&str, &str), &Arc<Endpoint>> = HashMap::new();
        let mut old_admitted: HashMap<&str, &Arc<AtomicUsize>> = HashMap::new();
        let mut old_drift: HashMap<&str, &Arc<Drift>> = HashMap::new();
        let mut old_violations: HashMap<&str, &Arc<ViolationCounts>> = HashMap::new();
        for svc in previous.iter().flat_map(|p| p.services.iter()) {
            old_admitted.insert(&svc.config.name, &svc.admitted);
            old_drift.insert(&svc.config.name, &svc.drift);
            old_violations.insert(&svc.config.name, &svc.violations);
            for e in &svc.endpoints {
                old_endpoints.insert((&svc.config.name, &e.upstream.url), e);
            }
        }
        let mut routes = RouteTable::new();
        let mut services = Vec::with_capacity(config.services.len());
        for (i, svc) in config.services.iter().enumerate() {
            routes.insert(svc.route.host.as_deref(), &svc.route.prefix, i);
            let endpoints = svc
                .upstreams
                .iter()
                .map(
                    |u| match old_endpoints.get(&(svc.name.as_str(), u.url.as_str())) {
                        Some(e) if e.upstream == *u => Arc::clone(e),
                        _ => Endpoint::new(u.clone(), metrics.upstream(&svc.name, &u.url)),
                    },
                )
                .collect();
            let admitted = old_admitted
                .get(svc.name.as_str())
                .map_or_else(|| Arc::new(AtomicUsize::new(0)), |a| Arc::clone(a));
            services.push(Arc::new(ServiceRuntime {
                endpoints,
                metrics: metrics.service(&svc.name, &svc.meter.units(), &operation_ids(svc)),
                retry_budget: RetryBudget::new(
                    svc.retries.budget_ratio,
                    svc.retries.min_per_second,
                ),
                limit_all: svc
                    .rate_limit
                    .requests_per_minute
                    .map(|n| Bucket::new(u64::from(n), tokio::time::Instant::now())),
                limit_per_caller: svc
                    .rate_limit
                    .per_key_requests_per_minute
                    .map(|n| PerCaller::new(u64::from(n))),
                caller_concurrency: svc
                    .rate_limit
                    .per_key_concurrency
                    .map(CallerConcurrency::new),
                unit_limits: unit_limits(svc),
                policies: PolicyCache::default(),
                admitted,
                violations: ViolationCounts::new(
                    svc,
                    old_violations.get(svc.name.as_str()).copied(),
                ),
                drift: old_drift
                    .get(svc.name.as_str())
                    .map_or_else(Arc::default, |d| Arc::clone(d)),
                config: svc.clone(),
            }));
        }
        Snapshot {
            config: Arc::new(config),
            routes,
            services,
            tasks: CancellationToken::new(),
        }
    }
}

fn unit_limits(svc: &Service) -> Vec<UnitLimit> {
    let limits = &svc.rate_limit;
    let all = limits
        .units_per_minute
        .iter()
        .map(|(unit, n)| UnitLimit::service(unit, *n));
    let per_caller = limits
        .per_key_units_per_minute
        .iter()
        .map(|(unit, n)| UnitLimit::per_caller(unit, *n));
    all.chain(per_caller).collect()
}

fn operation_ids(svc: &Service) -> Vec<String> {
    svc.contract
        .iter()
        .flat_map(|c| c.contract.operations.iter().map(|op| op.id.clone()))
        .collect()
}
