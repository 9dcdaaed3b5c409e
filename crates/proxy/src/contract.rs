//! The contract stage: a request is matched to an operation of its
//! service's OpenAPI contract (the operation names it in metrics and the
//! ledger), then checked against it once its body is read. `enforce`
//! refuses a violating request (400 `contract_violation`), `report`
//! forwards it and counts it; traffic the contract does not describe is
//! blocked or counted as the service says.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use blastdoor_config::{Undocumented, Validate};
use blastdoor_contract::{Lookup, RequestView};
use blastdoor_telemetry::Metrics;
use blastdoor_types::ErrorCode;
use http::request::Parts;

use crate::Gateway;
use crate::body::RequestBody;
use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::route;
use crate::snapshot::ServiceRuntime;

/// What to announce about a deprecation: the service's, or else the
/// operation's (`deprecated: true` with `x-deprecated-at` in the contract).
pub fn deprecation(ctx: &RequestCtx) -> Option<blastdoor_config::Deprecation> {
    let svc = ctx.service.as_ref()?;
    if let Some(d) = &svc.config.deprecation {
        return Some(d.clone());
    }
    let op = svc
        .config
        .contract
        .as_ref()?
        .contract
        .operations
        .get(ctx.operation?)?;
    Some(blastdoor_config::Deprecation {
        since: op.deprecated_at.filter(|_| op.deprecated)?,
        sunset: op.sunset,
        link: None,
    })
}

/// Before the body is read: finds the operation. Returns whether the
/// whole body must be read to check it.
pub fn match_operation(
    gw: &Gateway,
    svc: &ServiceRuntime,
    ctx: &mut RequestCtx,
    parts: &Parts,
) -> Result<bool, GatewayError> {
    let Some(spec) = &svc.config.contract else {
        return Ok(false);
    };
    let path = route::strip_prefix(&ctx.path, &svc.config.route.prefix);
    let method = parts.method.as_str();
    match spec.contract.lookup(method, path) {
        Lookup::Operation(op, params) => {
            ctx.operation = Some(op.index);
            ctx.path_params = params;
            Ok(spec.validate != Validate::Off && op.wants_body())
        }
        lookup => {
            gw.metrics.undocumented(&svc.config.name);
            if spec.undocumented == Undocumented::Report {
                return Ok(false);
            }
            let what = match lookup {
                Lookup::UndocumentedMethod => "describes this path, not this method",
                _ => "does not describe this path",
            };
            Err(GatewayError::new(
                ErrorCode::ContractViolation,
                format!(
                    "{method} {path} is not an operation of {}: its contract {what}",
                    svc.config.name
                ),
            ))
        }
    }
}

/// After the body is read: checks the request against its operation.
pub fn check_request(
    gw: &Gateway,
    svc: &ServiceRuntime,
    ctx: &RequestCtx,
    parts: &Parts,
    body: &RequestBody,
) -> Result<(), GatewayError> {
    let (Some(spec), Some(index)) = (&svc.config.contract, ctx.operation) else {
        return Ok(());
    };
    if spec.validate == Validate::Off {
        return Ok(());
    }
    let Some(op) = spec.contract.operations.get(index) else {
        return Ok(());
    };
    let header_value = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let view = RequestView {
        path_params: &ctx.path_params,
        query: parts.uri.query(),
        header: &header_value,
        content_type: header_value("content-type"),
        body: match body {
            RequestBody::Buffered(b) => Some(b.as_deref().unwrap_or_default()),
            RequestBody::Streaming { .. } => None,
        },
    };
    let violations = op.check(&view);
    if violations.is_empty() {
        return Ok(());
    }
    gw.metrics
        .contract_violation(&svc.config.name, &op.id, "request");
    ViolationCounts::count(&svc.violations.requests, index);
    let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
    let detail = format!(
        "the request breaks the contract of {} ({}): {}",
        svc.config.name,
        op.id,
        list.join("; ")
    );
    if spec.validate == Validate::Report {
        tracing::debug!(request_id = %ctx.request_id, %detail, "contract violation (reported, forwarded)");
        return Ok(());
    }
    Err(GatewayError::new(ErrorCode::ContractViolation, detail))
}

/// Response bytes kept for checking a sampled response; past this only
/// its status and media type are checked.
const MAX_SAMPLED_BODY: usize = 1024 * 1024;

/// Examples of response drift kept per service, for the catalog.
const DRIFT_EXAMPLES: usize = 10;

/// A sampled response that broke its operation's contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DriftExample {
    /// Unix milliseconds.
    pub at: i64,
    pub operation: String,
    pub status: u16,
    pub violations: Vec<String>,
}

/// The last few drift examples of a service; kept across reloads.
#[derive(Debug, Default)]
pub struct Drift {
    examples: Mutex<VecDeque<DriftExample>>,
}

impl Drift {
    fn push(&self, example: DriftExample) {
        let mut examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if examples.len() == DRIFT_EXAMPLES {
            examples.pop_front();
        }
        examples.push_back(example);
    }

    /// Newest first.
    pub fn examples(&self) -> Vec<DriftExample> {
        let examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        examples.iter().rev().cloned().collect()
    }
}

/// Violations per operation of a service's contract, for the catalog;
/// kept across reloads while the contract is unchanged.
#[derive(Debug)]
pub struct ViolationCounts {
    /// The contract's hash these counts belong to.
    hash: String,
    requests: Vec<std::sync::atomic::AtomicU64>,
    responses: Vec<std::sync::atomic::AtomicU64>,
}

impl ViolationCounts {
    pub fn new(
        svc: &blastdoor_config::Service,
        previous: Option<&Arc<ViolationCounts>>,
    ) -> Arc<Self> {
        let (hash, n) = svc.contract.as_ref().map_or((String::new(), 0), |c| {
            (c.contract.hash.clone(), c.contract.operations.len())
        });
        if let Some(p) = previous.filter(|p| p.hash == hash) {
            return Arc::clone(p);
        }
        Arc::new(ViolationCounts {
            hash,
            requests: (0..n).map(|_| Default::default()).collect(),
            responses: (0..n).map(|_| Default::default()).collect(),
        })
    }

    fn count(list: &[std::sync::atomic::AtomicU64], op: usize) {
        if let Some(c) = list.get(op) {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// (request violations, sampled response violations) of an operation.
    pub fn of(&self, op: usize) -> (u64, u64) {
        let get = |list: &[std::sync::atomic::AtomicU64]| {
            list.get(op)
                .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
        };
        (get(&self.requests), get(&self.responses))
    }
}

/// A response being captured as it streams to the caller, to be checked
/// once it has ended (off the caller's path).
#[derive(Debug)]
pub struct ResponseSample {
    svc: Arc<ServiceRuntime>,
    operation: usize,
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    overflow: bool,
    metrics: Arc<Metrics>,
}

/// Whether to check this response: its operation documents responses and
/// the service's `response_sample` draws it.
pub fn sample_response(
    gw: &Gateway,
    ctx: &RequestCtx,
    head: &http::response::Parts,
) -> Option<Box<ResponseSample>> {
    let svc = ctx.service.as_ref()?;
    let spec = svc.config.contract.as_ref()?;
    let operation = ctx.operation?;
    let op = spec.contract.operations.get(operation)?;
    if !op.documents_responses() || fastrand::f64() >= spec.response_sample {
        return None;
    }
    Some(Box::new(ResponseSample {
        svc: Arc::clone(svc),
        operation,
        status: head.status.as_u16(),
        content_type: head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: Vec::new(),
        overflow: false,
        metrics: Arc::clone(&gw.metrics),
    }))
}

impl ResponseSample {
    pub fn feed(&mut self, data: &[u8]) {
        if self.overflow || self.body.len() + data.len() > MAX_SAMPLED_BODY {
            self.overflow = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(data);
    }

    /// Checks the whole response on a blocking-pool thread, off the
    /// caller's stream and off the proxy worker: counts drift and keeps an
    /// example.
    pub fn judge(self) {
        let check = move || {
            let Some(spec) = &self.svc.config.contract else {
                return;
            };
            let Some(op) = spec.contract.operations.get(self.operation) else {
                return;
            };
            let body = (!self.overflow).then_some(self.body.as_slice());
            let violations = op.check_response(self.status, self.content_type.as_deref(), body);
            if violations.is_empty() {
                return;
            }
            self.metrics
                .contract_violation(&self.svc.config.name, &op.id, "response");
            ViolationCounts::count(&self.svc.violations.responses, self.operation);
            self.svc.drift.push(DriftExample {
                at: blastdoor_store::now_ms(),
                operation: op.id.clone(),
                status: self.status,
                violations: violations.iter().map(ToString::to_string).collect(),
            });
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(check);
            }
            Err(_) => check(),
        }
    }
}
