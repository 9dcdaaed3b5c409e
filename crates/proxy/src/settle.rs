//! The last stage: once the response has ended (or the caller is gone),
//! record the request in metrics and (if it was admitted) the ledger
//! spool, then hand it to the reporter for the access log and spans. Runs
//! exactly once per request, from the response body's end or drop.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use blastdoor_auth::Caller;
use blastdoor_cluster::Buckets;
use blastdoor_ledger::{LedgerEntry, Spool};
use blastdoor_meter::{MeterSpec, Priced, Usage};

use blastdoor_telemetry::metrics::NO_SERVICE;
use blastdoor_telemetry::{Metrics, ServiceMetrics};
use tokio::time::Instant;

use crate::ctx::RequestCtx;
use crate::report::{Report, Reporter, Sinks};
use crate::snapshot::ServiceRuntime;

/// Shared by all requests; cheap to clone.
#[derive(Clone, Debug)]
pub struct Settler {
    shared: Arc<SettleShared>,
}

#[derive(Debug)]
struct SettleShared {
    /// The access log and the tracer.
    sinks: Arc<Sinks>,
    /// Makes the access-log lines and spans off the proxy threads; None
    /// when there is nothing to report, or its thread could not start.
    reporter: Option<Reporter>,
    unrouted: Arc<ServiceMetrics>,
    /// Reasons already logged; only touched when something is unpriced.
    unpriced_seen: Mutex<HashSet<String>>,
    /// Where admitted requests are recorded; None: no ledger (tests).
    spool: Option<Arc<Spool>>,
    dropped: AtomicU64,
    metrics: Arc<Metrics>,
    /// Units limits shared by the cluster, charged at settle.
    buckets: Option<Arc<Buckets>>,
    /// Cost and units metrics carry the consumer label.
    consumer_label: bool,
}

/// Of records the spool refuses, one in this many is logged.
const LOG_EVERY_DROPPED: u64 = 10_000;

/// Distinct unpriced reasons logged before the log stays quiet.
const MAX_UNPRICED_REASONS: usize = 1000;

impl Settler {
    pub fn new(
        metrics: &Arc<Metrics>,
        signals: crate::Signals,
        spool: Option<Arc<Spool>>,
        buckets: Option<Arc<Buckets>>,
    ) -> Self {
        let sinks = Arc::new(Sinks {
            access_log: signals.access_log,
            tracer: signals.tracer,
        });
        let reporter = (sinks.access_log.enabled() || sinks.tracer.is_some())
            .then(|| Reporter::start(Arc::clone(&sinks)))
            .and_then(|started| {
                started
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot start the reporter thread; proxy workers will write access-log lines and spans themselves"))
                    .ok()
            });
        Settler {
            shared: Arc::new(SettleShared {
                sinks,
                reporter,
                unrouted: metrics.service(NO_SERVICE, &[], &[]),
                unpriced_seen: Mutex::new(HashSet::new()),
                spool,
                dropped: AtomicU64::new(0),
                metrics: Arc::clone(metrics),
                buckets,
                consumer_label: signals.consumer_label,
            }),
        }
    }

    /// Reports what is queued for the reporter thread and stops it; call
    /// once every request has settled, before the access log and the span
    /// exporter stop.
    pub fn stop_reporting(&self) {
        if let Some(reporter) = &self.shared.reporter {
            reporter.stop();
        }
    }

    /// Prices usage and records it in the service's metrics; says once per
    /// reason (a model without a price, say) what could not be priced.
    /// `up_front`: the price already worked out for the response's head.
    fn price(
        &self,
        svc: &ServiceRuntime,
        caller: Option<&Caller>,
        usage: &Usage,
        up_front: Option<Priced>,
    ) -> Priced {
        let priced = up_front.unwrap_or_else(|| svc.config.pricing.price(usage));
        let m = &svc.metrics;
        let team = caller.and_then(|c| c.team.as_deref()).unwrap_or("");
        let consumer = match caller {
            Some(c) if self.shared.consumer_label => c.consumer.as_str(),
            _ => "",
        };
        m.spend.add(
            team,
            consumer,
            priced.cost.micros() as f64 / 1_000_000.0,
            usage.units.iter(),
        );
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

    pub fn settle(
        &self,
        mut ctx: Box<RequestCtx>,
        bytes_out: u64,
        complete: bool,
        usage: Option<Usage>,
    ) {
        let ended = Instant::now();
        let total = ended.saturating_duration_since(ctx.started);
        let usage = usage.or_else(|| per_request_only(&ctx).then(Usage::default));
        let up_front = ctx.priced.take();
        let priced = match (&ctx.service, &usage) {
            (Some(svc), Some(usage)) => {
                Some(self.price(svc, ctx.caller.as_deref(), usage, up_front))
            }
            _ => None,
        };
        let cost = priced
            .as_ref()
            .map_or(0, |p| i64::try_from(p.cost.micros()).unwrap_or(i64::MAX));
        crate::budget::settle(ctx.reservation.take(), cost);
        if let Some(usage) = &usage {
            crate::limits::charge(self.shared.buckets.as_ref(), &ctx, usage, ended);
        }
        let metrics = ctx
            .service
            .as_ref()
            .map_or(&self.shared.unrouted, |s| &s.metrics);
        metrics.observe(
            ctx.status,
            ctx.operation,
            total.as_secs_f64(),
            ctx.overhead.map(|d| d.as_secs_f64()),
        );
        metrics.in_flight.dec();
        // Written in hex once, for the log, the ledger and the access log.
        let trace_id = ctx.trace.trace_id_hex();
        if let Some(cause) = &ctx.cause {
            tracing::warn!(request_id = %ctx.request_id, %trace_id, code = ctx.error.map(|c| c.as_str()), %cause, "request failed");
        }
        if !complete && ctx.error.is_none() {
            tracing::debug!(request_id = %ctx.request_id, "response not delivered completely (caller gone or stream broken)");
        }
        if ctx.admitted {
            self.record(
                &ctx,
                &trace_id,
                total,
                complete,
                usage.as_ref(),
                priced.as_ref(),
            );
        }
        if !self.shared.sinks.wants(&ctx) {
            return;
        }
        // The slots the request held are freed now, not when the report
        // is made.
        ctx.admission = None;
        ctx.caller_slot = None;
        let upstream = ctx.upstream.take().map(|u| Arc::clone(u.endpoint()));
        let report = Box::new(Report {
            ctx,
            upstream,
            trace_id,
            bytes_out,
            complete,
            total,
            usage,
            priced,
            ended,
            ended_wall: SystemTime::now(),
        });
        match &self.shared.reporter {
            Some(reporter) => {
                if let Err(report) = reporter.send(report) {
                    self.shared.sinks.report(report);
                }
            }
            None => self.shared.sinks.report(report),
        }
    }
}

/// A successful answer of an unmetered service with a per-request price:
/// it costs that price (metered services price what their meter read).
fn per_request_only(ctx: &RequestCtx) -> bool {
    ctx.service.as_ref().is_some_and(|svc| {
        svc.config.meter == MeterSpec::None
            && !svc.config.pricing.is_free()
            && ctx.error.is_none()
            && (200..300).contains(&ctx.status)
    })
}

impl Settler {
    /// Appends the request's ledger record to the spool: one write, so the
    /// record survives a crash from here on. Never blocks on the store.
    fn record(
        &self,
        ctx: &RequestCtx,
        trace_id: &str,
        total: std::time::Duration,
        complete: bool,
        usage: Option<&Usage>,
        priced: Option<&Priced>,
    ) {
        let (Some(spool), Some(svc)) = (&self.shared.spool, &ctx.service) else {
            return;
        };
        let elapsed_ms = u64::try_from(total.as_millis()).unwrap_or(u64::MAX);
        let caller = ctx.caller.as_deref();
        let consumer = caller.map_or("", |c| c.consumer.as_str());
        let now = blastdoor_store::now_ms();
        // Time first, so the store appends to its index; 64 random bits
        // keep ids unique across nodes.
        let id = format!("{now:012x}{:016x}", fastrand::u64(..));
        let unpriced = priced
            .filter(|p| !p.unpriced.is_empty())
            .map(|p| p.unpriced.join("; "));
        static NO_UNITS: BTreeMap<String, u64> = BTreeMap::new();
        let record = LedgerEntry {
            id: &id,
            at: now - i64::try_from(elapsed_ms).unwrap_or(0),
            request_id: &ctx.request_id,
            trace_id,
            origin: consumer,
            consumer,
            key_id: caller.map_or("", |c| c.key_id.as_str()),
            team: caller.and_then(|c| c.team.as_deref()).unwrap_or_default(),
            service: &svc.config.name,
            operation: ctx.operation_id().unwrap_or_default(),
            method: ctx.method.as_str(),
            status: ctx.status,
            error: ctx.error.map(|c| c.as_str()),
            complete,
            latency_ms: elapsed_ms,
            model: usage.and_then(|u| u.model.as_deref()),
            units: usage.map_or(&NO_UNITS, |u| &u.units),
            cost_micros: priced.map_or(0, |p| i64::try_from(p.cost.micros()).unwrap_or(i64::MAX)),
            unpriced: unpriced.as_deref(),
        };
        if let Err(e) = spool.append(&record) {
            self.shared.metrics.ledger.dropped.inc();
            let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(LOG_EVERY_DROPPED) {
                tracing::error!(error = %e, dropped = n + 1, "a usage record could not be spooled and is lost");
            }
        }
    }
}
