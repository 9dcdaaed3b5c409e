//! The access-log line and the spans of a settled request, made on a
//! thread of their own.
//!
//! Rendering them costs a good part of what proxying the request did, and
//! on one worker thread that is throughput lost. So the worker hands the
//! finished request's context to the reporter and goes on with the next
//! request. What must happen on time stays with the worker: the ledger
//! record (it reaches the spool before the response ends), metrics,
//! budgets and the slots the request held. When the reporter falls behind
//! and its queue is full, the worker reports the request itself: nothing
//! is lost, and the queue bounds the memory held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use blastdoor_meter::{Priced, Usage};
use blastdoor_telemetry::otlp::Tracer;
use blastdoor_telemetry::{AccessLog, AccessRecord};
use tokio::time::Instant;

use crate::ctx::RequestCtx;
use crate::endpoint::Endpoint;

/// Settled requests waiting for the reporter: at 30,000 requests a second
/// about a quarter of a second's worth, a few megabytes.
const QUEUE: usize = 8 * 1024;

/// How often the reporter looks for work. Workers never wake it (that
/// would cost them a system call per request); it drains in rounds.
const POLL: Duration = Duration::from_millis(5);

/// A settled request, as the access log and the spans need it.
pub(crate) struct Report {
    pub ctx: Box<RequestCtx>,
    /// The relayed attempt's upstream (its in-flight slot already freed).
    pub upstream: Option<Arc<Endpoint>>,
    pub trace_id: String,
    pub bytes_out: u64,
    pub complete: bool,
    pub total: Duration,
    pub usage: Option<Usage>,
    pub priced: Option<Priced>,
    /// When the request settled, on the monotonic clock (span times are
    /// measured on it) and on the wall clock.
    pub ended: Instant,
    pub ended_wall: SystemTime,
}

/// Where reports go.
#[derive(Debug)]
pub(crate) struct Sinks {
    pub access_log: AccessLog,
    /// Spans of sampled requests; None: tracing is off.
    pub tracer: Option<Arc<Tracer>>,
}

impl Sinks {
    /// Whether a request would produce anything to report.
    pub fn wants(&self, ctx: &RequestCtx) -> bool {
        self.access_log.enabled() || (self.tracer.is_some() && ctx.trace.sampled())
    }

    pub fn report(&self, mut r: Box<Report>) {
        if let Some(tracer) = &self.tracer
            && r.ctx.trace.sampled()
        {
            crate::spans::record(tracer, &mut r);
        }
        if self.access_log.enabled() {
            self.log(&r);
        }
    }

    fn log(&self, r: &Report) {
        let ctx = &r.ctx;
        let usage = r.usage.as_ref();
        let priced = r.priced.as_ref();
        let cost = priced.map(|p| p.cost.to_string());
        self.access_log.write_at(
            &AccessRecord {
                model: usage.and_then(|u| u.model.as_deref()),
                units: usage.map(|u| &u.units),
                cost_usd: cost.as_deref(),
                unpriced: priced.and_then(|p| p.unpriced.first()).map(String::as_str),
                request_id: &ctx.request_id,
                trace_id: &r.trace_id,
                client: &ctx.client_ip,
                protocol: ctx.protocol(),
                method: ctx.method.as_str(),
                path: &ctx.path,
                service: ctx.service.as_ref().map_or("", |s| s.config.name.as_str()),
                status: ctx.status,
                error: ctx.error.map(|c| c.as_str()),
                bytes_in: ctx.bytes_in,
                bytes_out: r.bytes_out,
                complete: r.complete,
                duration_ms: r.total.as_secs_f64() * 1000.0,
                upstream_ms: ctx.upstream_elapsed.map(|d| d.as_secs_f64() * 1000.0),
                upstream: r.upstream.as_ref().map(|e| e.upstream.url.as_str()),
                attempts: ctx.attempts,
            },
            r.ended_wall,
        );
    }
}

/// The reporter thread and its queue.
#[derive(Debug)]
pub(crate) struct Reporter {
    queue: SyncSender<Box<Report>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reporter {
    pub fn start(sinks: Arc<Sinks>) -> std::io::Result<Reporter> {
        let (queue, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name("reporter".into()).spawn({
            let stop = Arc::clone(&stop);
            move || run(&sinks, &rx, &stop)
        })?;
        Ok(Reporter {
            queue,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a report; gives it back when the queue is full or the
    /// reporter has stopped, for the caller to report itself.
    pub fn send(&self, report: Box<Report>) -> Result<(), Box<Report>> {
        self.queue.try_send(report).map_err(|e| match e {
            TrySendError::Full(r) | TrySendError::Disconnected(r) => r,
        })
    }

    /// Reports what is queued and stops the thread; later reports are
    /// made by whoever settles them. Blocks until the queue is drained.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Drain, report, sleep; a last round once asked to stop, or once every
/// sender is gone.
fn run(sinks: &Sinks, queue: &Receiver<Box<Report>>, stop: &AtomicBool) {
    loop {
        let stopping = stop.load(Ordering::Acquire);
        loop {
            match queue.try_recv() {
                Ok(report) => sinks.report(report),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if stopping {
            return;
        }
        std::thread::park_timeout(POLL);
    }
}
