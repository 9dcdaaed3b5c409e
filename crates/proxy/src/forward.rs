//! Sends a request to one of the service's upstreams: balance, retry where
//! safe and within budget, record outliers, enforce the deadline.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;

use blastdoor_config::UpstreamProtocol;
use blastdoor_types::ErrorCode;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::balance;
use crate::body::{BodyTooLarge, CallerBodyError, RequestBody};
use crate::client::Clients;
use crate::ctx::{AttemptSpan, RequestCtx};
use crate::endpoint::Endpoint;
use crate::error::GatewayError;
use crate::snapshot::ServiceRuntime;

/// The request as it will be sent upstream, minus the body and the host.
#[derive(Debug)]
pub struct Outgoing {
    pub method: Method,
    /// Forwarded path (prefix stripped) and query, before the base path.
    pub path_and_query: String,
    pub headers: HeaderMap,
}

/// Whether a method may be repeated without changing the outcome
/// (RFC 9110 §9.2.2).
fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Statuses worth another host's try for an idempotent request.
fn is_retryable_status(s: StatusCode) -> bool {
    matches!(
        s,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

fn find_cause<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(hit) = err.downcast_ref::<T>() {
            return Some(hit);
        }
        cur = err.source();
    }
    None
}

/// Sends the request, retrying on another host where allowed, until an
/// answer's head arrives or `expiry` fires: a timer set to the service's
/// `timeout`, which a body read whole afterwards shares (one entry in the
/// runtime's timer wheel per request, not one per wait).
pub async fn forward(
    clients: &Clients,
    svc: &Arc<ServiceRuntime>,
    ctx: &mut RequestCtx,
    mut out: Outgoing,
    body: RequestBody,
    mut expiry: Pin<&mut Sleep>,
) -> Result<Response<Incoming>, GatewayError> {
    let cfg = &svc.config;
    let client = clients.get(cfg.upstream_protocol);
    let deadline = expiry.deadline();
    let idempotent = is_idempotent(&out.method);
    svc.retry_budget.deposit();
    let mut body = Some(body);
    let mut avoid: Option<Arc<Endpoint>> = None;
    loop {
        ctx.attempts += 1;
        let endpoint = balance::pick(&svc.endpoints, avoid.as_ref())
            .cloned()
            .ok_or_else(|| {
                GatewayError::new(
                    ErrorCode::NoHealthyUpstream,
                    format!("no healthy upstream for service {}", cfg.name),
                )
                .retry_after(1)
            })?;
        let this_body = body.take().unwrap_or_else(RequestBody::empty);
        let replay = if ctx.attempts < cfg.retries.attempts {
            this_body.replay()
        } else {
            None
        };
        let mut headers = if replay.is_some() {
            out.headers.clone()
        } else {
            std::mem::take(&mut out.headers)
        };
        // A traced request's attempts are each a child span of its own.
        let span_id = ctx.traced.then(|| fastrand::u64(1..));
        if let Some(id) = span_id {
            headers.insert(&crate::headers::TRACEPARENT, ctx.trace.child_header(id));
        }
        let req = build_request(&endpoint, cfg.upstream_protocol, &out, headers, this_body)?;
        let in_flight = endpoint.start();
        let sent = Instant::now();
        let result = within(expiry.as_mut(), client.request(req)).await;
        let elapsed = sent.elapsed();
        if let Some(span_id) = span_id {
            ctx.attempt_spans.push(AttemptSpan {
                span_id,
                upstream: endpoint.upstream.url.clone(),
                start: sent,
                end: Some(sent + elapsed),
                status: match &result {
                    Ok(Ok(resp)) => Some(resp.status().as_u16()),
                    _ => None,
                },
                error: match &result {
                    Err(_) => Some("timeout"),
                    Ok(Err(e)) if e.is_connect() => Some("connect"),
                    Ok(Err(_)) => Some("transport"),
                    Ok(Ok(_)) => None,
                },
            });
        }
        ctx.upstream_total += elapsed;
        let may_retry = |never_sent: bool| {
            (never_sent || idempotent)
                && replay.is_some()
                && Instant::now() < deadline
                && svc.retry_budget.try_withdraw()
        };
        match result {
            Err(_elapsed) => {
                endpoint.record_failure(&cfg.outlier, &svc.endpoints);
                return Err(GatewayError::new(
                    ErrorCode::UpstreamTimeout,
                    format!(
                        "upstream of service {} did not answer within {:?}",
                        cfg.name, cfg.timeout
                    ),
                ));
            }
            Ok(Ok(resp)) => {
                let status = resp.status();
                if status.is_server_error() {
                    endpoint.record_failure(&cfg.outlier, &svc.endpoints);
                } else {
                    endpoint.record_success(elapsed);
                }
                if !(is_retryable_status(status) && may_retry(false)) {
                    // The relayed attempt's span ends with the response.
                    if span_id.is_some()
                        && let Some(last) = ctx.attempt_spans.last_mut()
                    {
                        last.end = None;
                    }
                    ctx.upstream = Some(in_flight);
                    ctx.upstream_elapsed = Some(elapsed);
                    return Ok(resp);
                }
            }
            Ok(Err(e)) => {
                if let Some(too_large) = find_cause::<BodyTooLarge>(&e) {
                    return Err(GatewayError::new(
                        ErrorCode::PayloadTooLarge,
                        too_large.to_string(),
                    ));
                }
                if find_cause::<CallerBodyError>(&e).is_some() {
                    return Err(GatewayError::new(
                        ErrorCode::BadRequest,
                        "the request body could not be read",
                    )
                    .with_cause(format!("{e:?}")));
                }
                endpoint.record_failure(&cfg.outlier, &svc.endpoints);
                if !may_retry(e.is_connect()) {
                    return Err(GatewayError::new(
                        ErrorCode::UpstreamUnavailable,
                        format!("upstream of service {} could not be reached", cfg.name),
                    )
                    .with_cause(format!("{}: {e:?}", endpoint.upstream.url)));
                }
            }
        }
        svc.metrics.retries.inc();
        avoid = Some(endpoint);
        body = replay;
    }
}

/// The upstream did not answer before the exchange's deadline.
#[derive(Debug)]
pub struct Expired;

/// Runs `work` until `expiry` fires; the timer stays armed for a later
/// wait.
pub async fn within<F: Future>(expiry: Pin<&mut Sleep>, work: F) -> Result<F::Output, Expired> {
    tokio::select! {
        biased;
        out = work => Ok(out),
        () = expiry => Err(Expired),
    }
}

fn build_request(
    endpoint: &Endpoint,
    protocol: UpstreamProtocol,
    out: &Outgoing,
    mut headers: HeaderMap,
    body: RequestBody,
) -> Result<Request<RequestBody>, GatewayError> {
    let up = &endpoint.upstream;
    let path = if up.base_path.is_empty() {
        out.path_and_query.clone()
    } else {
        format!("{}{}", up.base_path, out.path_and_query)
    };
    let path = PathAndQuery::try_from(path).map_err(|e| {
        GatewayError::new(
            ErrorCode::BadRequest,
            "the request target cannot be forwarded",
        )
        .with_cause(e)
    })?;
    let uri = Uri::builder()
        .scheme(up.scheme.clone())
        .authority(up.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| {
            GatewayError::new(ErrorCode::Internal, "could not build the upstream request")
                .with_cause(e)
        })?;
    // The client sets Host (HTTP/1) or :authority (HTTP/2) from the URI.
    headers.remove(HOST);
    let mut req = Request::new(body);
    *req.method_mut() = out.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = match protocol {
        UpstreamProtocol::Http1 => Version::HTTP_11,
        UpstreamProtocol::H2 => Version::HTTP_2,
    };
    *req.headers_mut() = headers;
    Ok(req)
}
