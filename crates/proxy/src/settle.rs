//! The last stage: once the response has ended (or the caller is gone),
//! record the request in metrics and the access log. Runs exactly once per
//! request, from the response body's end or drop.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use blastdoor_meter::{Priced, Usage};

use blastdoor_telemetry::metrics::NO_SERVICE;
use blastdoor_telemetry::{AccessLog, AccessRecord, Metrics, ServiceMetrics};

use crate::ctx::RequestCtx;
use crate::snapshot::ServiceRuntime;

/// Shared by all requests; cheap to clone.
#[derive(Clone, Debug)]
pub struct Settler {
    shared: Arc<SettleShared>,
}

#[derive(Debug)]
struct SettleShared {
    access_log: AccessLog,
    unrouted: Arc<ServiceMetrics>,
    /// Reasons already logged; only touched when something is unpriced.
    unpriced_seen: Mutex<HashSet<String>>,
}

/// Distinct unpriced reasons logged before the log stays quiet.
const MAX_UNPRICED_REASONS: usize = 1000;

impl Settler {
    pub fn new(metrics: &Metrics, access_log: AccessLog) -> Self {
        Settler {
            shared: Arc::new(SettleShared {
                access_log,
                unrouted: metrics.service(NO_SERVICE, &[]),
                unpriced_seen: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Prices usage and records it in the service's metrics; says once per
    /// reason (a model without a price, say) what could not be priced.
    fn price(&self, svc: &ServiceRuntime, usage: &Usage) -> Priced {
        let priced = svc.config.pricing.price(usage);
        let m = &svc.metrics;
        m.cost.inc_by(priced.cost.micros() as f64 / 1_000_000.0);
        for (unit, n) in &usage.units {
            if let Some(counter) = m.units.get(unit) {
                counter.inc_by(*n);
            }
        }
        if !priced.unpriced.is_empty() {
            m.unpriced.inc();
            let mut seen = self
                .shared
                .unpriced_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for reason in &priced.unpriced {
                let key = format!("{}: {reason}", svc.config.name);
                if seen.len() < MAX_UNPRICED_REASONS && seen.insert(key) {
                    tracing::warn!(service = %svc.config.name, %reason, "usage could not be priced (flagged, not counted as free)");
                }
            }
        }
        priced
    }

    /// Called when a request arrives; `settle` ends it.
    pub fn begin(&self) {
        self.shared.unrouted.in_flight.inc();
    }

    pub fn settle(&self, ctx: RequestCtx, bytes_out: u64, complete: bool, usage: Option<Usage>) {
        let total = ctx.started.elapsed();
        let priced = match (&ctx.service, &usage) {
            (Some(svc), Some(usage)) => Some(self.price(svc, usage)),
            _ => None,
        };
        let metrics = ctx
            .service
            .as_ref()
            .map_or(&self.shared.unrouted, |s| &s.metrics);
        metrics.observe(
            ctx.status,
            total.as_secs_f64(),
            ctx.overhead.map(|d| d.as_secs_f64()),
        );
        metrics.in_flight.dec();
        if let Some(cause) = &ctx.cause {
            tracing::warn!(request_id = %ctx.request_id, trace_id = %ctx.trace.trace_id_hex(), code = ctx.error.map(|c| c.as_str()), %cause, "request failed");
        }
        if !complete && ctx.error.is_none() {
            tracing::debug!(request_id = %ctx.request_id, "response not delivered completely (caller gone or stream broken)");
        }
        if !self.shared.access_log.enabled() {
            return;
        }
        let upstream = ctx
            .upstream
            .as_ref()
            .map(|u| u.endpoint().upstream.url.as_str());
        let usage = usage.as_ref();
        let cost = priced.as_ref().map(|p| p.cost.to_string());
        self.shared.access_log.write(&AccessRecord {
            model: usage.and_then(|u| u.model.as_deref()),
            units: usage.map(|u| &u.units),
            cost_usd: cost.as_deref(),
            unpriced: priced
                .as_ref()
                .and_then(|p| p.unpriced.first())
                .map(String::as_str),
            request_id: &ctx.request_id,
            trace_id: &ctx.trace.trace_id_hex(),
            client: ctx.client.ip().to_string(),
            protocol: ctx.protocol(),
            method: ctx.method.as_str(),
            path: &ctx.path,
            service: ctx.service.as_ref().map_or("", |s| s.config.name.as_str()),
            status: ctx.status,
            error: ctx.error.map(|c| c.as_str()),
            bytes_in: ctx.bytes_in,
            bytes_out,
            complete,
            duration_ms: total.as_secs_f64() * 1000.0,
            upstream_ms: ctx.upstream_elapsed.map(|d| d.as_secs_f64() * 1000.0),
            upstream,
            attempts: ctx.attempts,
        });
    }
}
