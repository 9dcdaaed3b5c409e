//! Every metric blastdoor exports, declared in one place.
//!
//! Labels are bounded by construction: they come from the config (service
//! and upstream names) or from small fixed sets (status class), never from
//! raw request data. Handles are resolved once per service when a config
//! snapshot is built, so the request path only touches atomics.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::recent::Recent;
use crate::spend::{CostFamily, Spend, UnitFamily};

/// The `service` label of requests that matched no service.
pub const NO_SERVICE: &str = "_none";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    /// The contract operation ("" without one): bounded by the contract.
    operation: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    service: String,
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    scope: &'static str,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetAlertLabels {
    scope: &'static str,
    target: String,
    threshold: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContractLabels {
    service: String,
    /// An operation of the service's contract (bounded by it).
    operation: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Buckets from 50µs to ~7 minutes: fine enough to see sub-millisecond
/// gateway overhead, wide enough for minute-long model generations.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.00005, 2.0, 24)
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The registry and every metric family.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    overhead: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    upstream_duration: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    upstream_healthy: Family<UpstreamLabels, Gauge>,
    upstream_ejections: Family<UpstreamLabels, Counter>,
    retries: Family<ServiceLabels, Counter>,
    rejected_overload: Family<ServiceLabels, Counter>,
    in_flight: Gauge,
    reloads: Family<ResultLabels, Counter>,
    cost: CostFamily,
    units: UnitFamily,
    unpriced: Family<ServiceLabels, Counter>,
    /// API keys in this node's cache.
    pub api_keys: Gauge,
    /// Store queries made by this process (refreshed when scraped).
    pub store_queries: Gauge,
    pub ledger: LedgerMetrics,
    pub tracing: TracingMetrics,
    /// Redis calls that failed or timed out (the node then decided alone).
    pub redis_errors: Counter,
    budget_remaining: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
    budget_alerts: Family<BudgetAlertLabels, Counter>,
    contract_violations: Family<ContractLabels, Counter>,
    undocumented: Family<ServiceLabels, Counter>,
    /// Each service's recent traffic for the dashboard, kept across
    /// reloads; locked only when a snapshot is built or the dashboard reads.
    recent: Mutex<HashMap<String, Arc<Recent>>>,
}

/// The span exporter's counts.
#[derive(Debug, Clone, Default)]
pub struct TracingMetrics {
    pub exported: Counter,
    /// The queue to the exporter was full.
    pub dropped_queue_full: Counter,
    /// The collector refused a batch, failed or did not answer in time.
    pub dropped_export_failed: Counter,
}

/// The ledger's path from spool to store.
#[derive(Debug, Clone, Default)]
pub struct LedgerMetrics {
    /// Records the writer stored.
    pub written: Counter,
    /// Records that could not be spooled (spool full, disk error).
    pub dropped: Counter,
    /// Batches the store refused or failed to take (retried).
    pub write_errors: Counter,
    /// Bytes waiting in the spool.
    pub spool_bytes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "blastdoor_requests",
            "Requests handled, by service and status class",
            requests.clone(),
        );
        let request_duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "blastdoor_request_duration_seconds",
            "Time from request head to the end of the response",
            request_duration.clone(),
        );
        let overhead = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("blastdoor_gateway_overhead_seconds", "Time spent in blastdoor itself before the upstream's response head, excluding the upstream", overhead.clone());
        let upstream_duration =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "blastdoor_upstream_duration_seconds",
            "Time from sending a request upstream to its response head, per attempt",
            upstream_duration.clone(),
        );
        let upstream_healthy = Family::<UpstreamLabels, Gauge>::default();
        registry.register(
            "blastdoor_upstream_healthy",
            "1 if the upstream host takes traffic (not ejected, passing health checks)",
            upstream_healthy.clone(),
        );
        let upstream_ejections = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "blastdoor_upstream_ejections",
            "Times an upstream host was ejected as an outlier",
            upstream_ejections.clone(),
        );
        let retries = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "blastdoor_retries",
            "Upstream attempts beyond the first",
            retries.clone(),
        );
        let rejected_overload = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "blastdoor_overload_rejections",
            "Requests answered 503 because the service's concurrency cap was reached",
            rejected_overload.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "blastdoor_requests_in_flight",
            "Requests currently being handled",
            in_flight.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "blastdoor_config_reloads",
            "Config reload attempts, by result",
            reloads.clone(),
        );
        let cost = CostFamily::default();
        registry.register(
            "blastdoor_cost_usd",
            "Cost of metered responses in US dollars, by service and the caller's team (the ledger is exact; this is for graphs)",
            cost.clone(),
        );
        let units = UnitFamily::default();
        registry.register(
            "blastdoor_units",
            "Units consumed (tokens, images, ...) read from responses, by service and the caller's team",
            units.clone(),
        );
        let unpriced = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "blastdoor_unpriced_requests",
            "Metered responses whose usage could not be fully priced",
            unpriced.clone(),
        );
        let api_keys = Gauge::default();
        registry.register(
            "blastdoor_api_keys",
            "API keys loaded in this node's key cache (revoked and expired included)",
            api_keys.clone(),
        );
        let store_queries = Gauge::default();
        registry.register("blastdoor_store_queries", "Queries this process has sent to the store since it started (never on the request path)", store_queries.clone());
        let ledger = LedgerMetrics::default();
        registry.register(
            "blastdoor_ledger_records_written",
            "Usage records the ledger writer has stored",
            ledger.written.clone(),
        );
        registry.register(
            "blastdoor_ledger_records_dropped",
            "Usage records lost because the spool was full or could not be written",
            ledger.dropped.clone(),
        );
        registry.register(
            "blastdoor_ledger_write_errors",
            "Ledger batches the store failed to take (kept in the spool and retried)",
            ledger.write_errors.clone(),
        );
        registry.register(
            "blastdoor_ledger_spool_bytes",
            "Bytes of usage records waiting in the local spool",
            ledger.spool_bytes.clone(),
        );
        let tracing = TracingMetrics::default();
        registry.register(
            "blastdoor_otlp_spans_exported",
            "Spans the OTLP collector accepted",
            tracing.exported.clone(),
        );
        let dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "blastdoor_otlp_spans_dropped",
            "Spans not exported: the queue was full (queue_full) or the collector failed (export_failed)",
            dropped.clone(),
        );
        // One statement each: a family's read guard lives to the end of
        // its statement, and the next get_or_create needs the write lock.
        let dropped_queue_full = dropped
            .get_or_create(&ReasonLabels {
                reason: "queue_full",
            })
            .clone();
        let dropped_export_failed = dropped
            .get_or_create(&ReasonLabels {
                reason: "export_failed",
            })
            .clone();
        let tracing = TracingMetrics {
            dropped_queue_full,
            dropped_export_failed,
            ..tracing
        };
        let redis_errors = Counter::default();
        registry.register(
            "blastdoor_redis_errors",
            "Calls to the cluster's Redis that failed or timed out; limits and budgets then held per node",
            redis_errors.clone(),
        );
        let budget_remaining = Family::<BudgetLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "blastdoor_budget_remaining_usd",
            "What is left of each budget in its current period, in US dollars (negative: overspent)",
            budget_remaining.clone(),
        );
        let budget_alerts = Family::<BudgetAlertLabels, Counter>::default();
        registry.register(
            "blastdoor_budget_alerts",
            "Budget alerts raised, by budget and threshold (percent)",
            budget_alerts.clone(),
        );
        let contract_violations = Family::<ContractLabels, Counter>::default();
        registry.register(
            "blastdoor_contract_violations",
            "Requests (direction=request) or sampled responses (direction=response) that broke their operation's contract",
            contract_violations.clone(),
        );
        let undocumented = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "blastdoor_undocumented_requests",
            "Requests to a service with a contract that describes no such operation",
            undocumented.clone(),
        );
        Metrics {
            recent: Mutex::default(),
            tracing,
            contract_violations,
            undocumented,
            redis_errors,
            budget_remaining,
            budget_alerts,
            ledger,
            cost,
            units,
            unpriced,
            api_keys,
            store_queries,
            registry,
            requests,
            request_duration,
            overhead,
            upstream_duration,
            upstream_healthy,
            upstream_ejections,
            retries,
            rejected_overload,
            in_flight,
            reloads,
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Handles for one service, resolved once per config snapshot.
    /// Handles for one service; `units` are the units its meter can report.
    /// Handles for one service; `operations` are its contract's operation
    /// ids (requests of no operation count under "").
    pub fn service(
        &self,
        service: &str,
        units: &[String],
        operations: &[String],
    ) -> Arc<ServiceMetrics> {
        let by_class = |operation: &str| -> [Counter; 5] {
            ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|class| {
                self.requests
                    .get_or_create(&RequestLabels {
                        service: service.to_string(),
                        operation: operation.to_string(),
                        status_class: class,
                    })
                    .clone()
            })
        };
        let labels = ServiceLabels {
            service: service.to_string(),
        };
        let spend = Spend::new(service, units, self.cost.clone(), self.units.clone());
        Arc::new(ServiceMetrics {
            requests: std::iter::once("")
                .chain(operations.iter().map(String::as_str))
                .map(by_class)
                .collect(),
            duration: self.request_duration.get_or_create(&labels).clone(),
            overhead: self.overhead.get_or_create(&labels).clone(),
            retries: self.retries.get_or_create(&labels).clone(),
            unpriced: self.unpriced.get_or_create(&labels).clone(),
            spend,
            rejected_overload: self.rejected_overload.get_or_create(&labels).clone(),
            in_flight: self.in_flight.clone(),
            recent: Arc::clone(
                self.recent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(service.to_string())
                    .or_default(),
            ),
        })
    }

    /// Recent traffic of the named services (those with none yet are
    /// left out).
    pub fn recent(&self, services: &[&str]) -> Vec<(String, Arc<Recent>)> {
        let all = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        services
            .iter()
            .filter_map(|s| all.get(*s).map(|r| ((*s).to_string(), Arc::clone(r))))
            .collect()
    }

    /// Sets what is left of a budget (labels bounded by the number of
    /// budgets an admin set).
    pub fn budget_remaining(&self, scope: &'static str, target: &str, usd: f64) {
        let labels = BudgetLabels {
            scope,
            target: target.to_string(),
        };
        self.budget_remaining.get_or_create(&labels).set(usd);
    }

    /// Forgets budgets that no longer exist.
    pub fn clear_budgets(&self) {
        self.budget_remaining.clear();
    }

    /// A request or response that broke its operation's contract.
    pub fn contract_violation(&self, service: &str, operation: &str, direction: &'static str) {
        let labels = ContractLabels {
            service: service.to_string(),
            operation: operation.to_string(),
            direction,
        };
        self.contract_violations.get_or_create(&labels).inc();
    }

    /// A request its service's contract does not describe.
    pub fn undocumented(&self, service: &str) {
        let labels = ServiceLabels {
            service: service.to_string(),
        };
        self.undocumented.get_or_create(&labels).inc();
    }

    pub fn budget_alert(&self, scope: &'static str, target: &str, threshold: u32) {
        let labels = BudgetAlertLabels {
            scope,
            target: target.to_string(),
            threshold,
        };
        self.budget_alerts.get_or_create(&labels).inc();
    }

    /// Handles for one upstream host of a service.
    pub fn upstream(&self, service: &str, upstream: &str) -> UpstreamMetrics {
        let labels = UpstreamLabels {
            service: service.to_string(),
            upstream: upstream.to_string(),
        };
        UpstreamMetrics {
            duration: self.upstream_duration.get_or_create(&labels).clone(),
            healthy: self.upstream_healthy.get_or_create(&labels).clone(),
            ejections: self.upstream_ejections.get_or_create(&labels).clone(),
        }
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }
}

/// Pre-resolved metric handles of one service.
#[derive(Debug)]
pub struct ServiceMetrics {
    /// By operation (0: none; i + 1: the contract's operation i), then
    /// by status class.
    requests: Vec<[Counter; 5]>,
    pub unpriced: Counter,
    /// Cost and units, by the caller's team.
    pub spend: Spend,
    duration: Histogram,
    overhead: Histogram,
    pub retries: Counter,
    pub rejected_overload: Counter,
    pub in_flight: Gauge,
    recent: Arc<Recent>,
}

impl ServiceMetrics {
    /// Records one finished request of an operation (its index in the
    /// service's contract).
    pub fn observe(
        &self,
        status: u16,
        operation: Option<usize>,
        total_secs: f64,
        overhead_secs: Option<f64>,
    ) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        let by_operation = operation
            .and_then(|i| self.requests.get(i + 1))
            .or_else(|| self.requests.first());
        if let Some(counters) = by_operation {
            counters[class].inc();
        }
        self.duration.observe(total_secs);
        if let Some(o) = overhead_secs {
            self.overhead.observe(o);
        }
        self.recent.record(status, total_secs, overhead_secs);
    }
}

/// Pre-resolved metric handles of one upstream host.
#[derive(Debug, Clone)]
pub struct UpstreamMetrics {
    pub duration: Histogram,
    pub healthy: Gauge,
    pub ejections: Counter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_spec_metric_names() {
        let m = Metrics::new();
        let svc = m.service(
            "imagegen",
            &["image".to_string()],
            &["createImage".to_string()],
        );
        svc.observe(200, Some(0), 0.002, Some(0.0001));
        svc.observe(503, None, 0.5, None);
        let up = m.upstream("imagegen", "http://127.0.0.1:7001");
        up.duration.observe(0.001);
        up.healthy.set(1);
        let text = m.encode();
        for needle in [
            "blastdoor_requests_total{service=\"imagegen\",operation=\"createImage\",status_class=\"2xx\"} 1",
            "blastdoor_requests_total{service=\"imagegen\",operation=\"\",status_class=\"5xx\"} 1",
            "blastdoor_request_duration_seconds_count{service=\"imagegen\"} 2",
            "blastdoor_upstream_duration_seconds_count{service=\"imagegen\",upstream=\"http://127.0.0.1:7001\"} 1",
            "blastdoor_upstream_healthy{service=\"imagegen\",upstream=\"http://127.0.0.1:7001\"} 1",
            "blastdoor_gateway_overhead_seconds_count{service=\"imagegen\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
