//! The typed state of one request as it moves through the pipeline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blastdoor_auth::Caller;
use blastdoor_types::ErrorCode;
use http::{Method, Version};
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::endpoint::InFlight;
use crate::headers::TraceContext;
use crate::rate_limit::{CallerSlot, Quota};
use crate::snapshot::ServiceRuntime;

/// Everything known about one request; owned by the pipeline, then by the
/// response body until the request settles.
#[derive(Debug)]
pub struct RequestCtx {
    pub started: Instant,
    pub request_id: String,
    pub trace: TraceContext,
    pub client: SocketAddr,
    /// `client`'s IP as text (made once per connection).
    pub client_ip: Arc<str>,
    pub tls: bool,
    pub version: Version,
    pub method: Method,
    /// The normalised path (or the raw one if it could not be normalised).
    pub path: String,
    pub service: Option<Arc<ServiceRuntime>>,
    /// The contract operation the request is for (its index in the
    /// service's contract), and the path parameters' values.
    pub operation: Option<usize>,
    pub path_params: Vec<(String, String)>,
    /// Who is calling, once authenticated (None on public services).
    pub caller: Option<Arc<Caller>>,
    /// The tightest rate limit that applied: (policy name, quota).
    pub quota: Option<(&'static str, Quota)>,
    /// Units limits checked at admission: (index in the service's
    /// `unit_limits`, quota).
    pub unit_quotas: SmallVec<[(usize, Quota); 2]>,
    /// Held while the request is in flight, for the service's concurrency cap.
    pub admission: Option<Admission>,
    /// Held while the request is in flight, for the caller's concurrency cap.
    pub caller_slot: Option<CallerSlot>,
    /// The upstream attempt whose response is being relayed.
    pub upstream: Option<InFlight>,
    /// Response-head latency of the relayed attempt.
    pub upstream_elapsed: Option<Duration>,
    /// Time spent in upstream attempts before the relayed one (retries).
    pub upstream_total: Duration,
    pub attempts: u32,
    /// Time spent in the gateway itself before the response head, excluding
    /// upstream attempts.
    pub overhead: Option<Duration>,
    pub status: u16,
    pub error: Option<ErrorCode>,
    /// The internal cause of a gateway error: logged, never sent.
    pub cause: Option<String>,
    pub bytes_in: u64,
    /// Passed every admission check and went on to be forwarded: from here
    /// on the request leaves exactly one ledger record, whatever happens.
    pub admitted: bool,
    /// The response's price, when its usage was known before the head was
    /// sent (for `x-blastdoor-cost-usd`): settle uses it instead of
    /// pricing the same usage again.
    pub priced: Option<blastdoor_meter::Priced>,
    /// The estimated cost held on the caller's budgets until settle.
    pub reservation: Option<blastdoor_budget::Reservation>,
    /// Spans are recorded for this request (tracing is on and the trace
    /// is sampled).
    pub traced: bool,
    /// Each upstream attempt of a traced request, in order.
    pub attempt_spans: Vec<AttemptSpan>,
}

/// One upstream attempt, for its client span.
#[derive(Debug, Clone)]
pub struct AttemptSpan {
    /// Sent upstream in this attempt's `traceparent`.
    pub span_id: u64,
    pub upstream: String,
    pub start: Instant,
    /// None: the relayed attempt, which ends when the response does.
    pub end: Option<Instant>,
    pub status: Option<u16>,
    /// What went wrong, when no response came.
    pub error: Option<&'static str>,
}

impl RequestCtx {
    pub fn new(
        client: SocketAddr,
        client_ip: Arc<str>,
        tls: bool,
        version: Version,
        method: Method,
        path: String,
    ) -> Self {
        RequestCtx {
            started: Instant::now(),
            request_id: String::new(),
            trace: TraceContext::default(),
            client,
            client_ip,
            tls,
            version,
            method,
            path,
            service: None,
            operation: None,
            path_params: Vec::new(),
            caller: None,
            quota: None,
            unit_quotas: SmallVec::new(),
            admission: None,
            caller_slot: None,
            upstream: None,
            upstream_elapsed: None,
            upstream_total: Duration::ZERO,
            attempts: 0,
            overhead: None,
            status: 0,
            error: None,
            cause: None,
            bytes_in: 0,
            admitted: false,
            priced: None,
            reservation: None,
            traced: false,
            attempt_spans: Vec::new(),
        }
    }

    /// The operation's id (`operationId`, or `METHOD /template`), if the
    /// service has a contract describing this request.
    pub fn operation_id(&self) -> Option<&str> {
        let svc = self.service.as_ref()?;
        let contract = &svc.config.contract.as_ref()?.contract;
        Some(contract.operations.get(self.operation?)?.id.as_str())
    }

    pub fn protocol(&self) -> &'static str {
        match self.version {
            Version::HTTP_09 => "HTTP/0.9",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2",
            Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        }
    }
}

/// A slot under a service's concurrency cap, released on drop.
#[derive(Debug)]
pub struct Admission(pub(crate) Arc<ServiceRuntime>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.release();
    }
}
