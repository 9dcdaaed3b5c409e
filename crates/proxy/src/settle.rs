//! The last stage: once the response has ended (or the caller is gone),
//! record the request in metrics and the access log. Runs exactly once per
//! request, from the response body's end or drop.

use std::sync::Arc;

use blastdoor_telemetry::metrics::NO_SERVICE;
use blastdoor_telemetry::{AccessLog, AccessRecord, Metrics, ServiceMetrics};

use crate::ctx::RequestCtx;

/// Shared by all requests; cheap to clone.
#[derive(Clone, Debug)]
pub struct Settler {
    shared: Arc<SettleShared>,
}

#[derive(Debug)]
struct SettleShared {
    access_log: AccessLog,
    unrouted: Arc<ServiceMetrics>,
}

impl Settler {
    pub fn new(metrics: &Metrics, access_log: AccessLog) -> Self {
        Settler {
            shared: Arc::new(SettleShared {
                access_log,
                unrouted: metrics.service(NO_SERVICE),
            }),
        }
    }

    /// Called when a request arrives; `settle` ends it.
    pub fn begin(&self) {
        self.shared.unrouted.in_flight.inc();
    }

    pub fn settle(&self, ctx: RequestCtx, bytes_out: u64, complete: bool) {
        let total = ctx.started.elapsed();
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
        self.shared.access_log.write(&AccessRecord {
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
