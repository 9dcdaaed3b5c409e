//! The order of the stages a request goes through; the only place that
//! states it.
//!
//! accept -> route -> authenticate + authorize -> admit -> read body ->
//! forward -> stream back -> settle
//!
//! A stage may answer early with a [`GatewayError`]; settle always runs,
//! from the response body, once the response has ended or the caller has
//! gone.

use std::sync::Arc;

use blastdoor_types::ErrorCode;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use blastdoor_config::Unpriced;
use blastdoor_meter::{Meter, MeterSpec};

use crate::body::{Relay, RequestBody, ResponseBody};
use crate::client::Clients;
use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::forward::{self, Outgoing};
use crate::headers::{self, X_BLASTDOOR_COST_USD, X_REQUEST_ID};
use crate::snapshot::{ServiceRuntime, Snapshot};
use crate::{
    Gateway, authenticate, budget, contract, framing, limits, path, route, stream_usage, upgrade,
};

/// Bodies up to this size are read before forwarding so that a failed
/// attempt can be retried on another host.
const REPLAYABLE_BODY: u64 = 64 * 1024;

/// Where a connection comes from.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub client: std::net::SocketAddr,
    /// The client's IP as text, written once per connection: every request
    /// on it sends it upstream (`x-forwarded-for`) and may log it.
    pub client_ip: Arc<str>,
    pub tls: bool,
}

pub async fn handle(
    gw: &Arc<Gateway>,
    clients: &Clients,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let snapshot = gw.snapshot();
    let (mut parts, body) = req.into_parts();
    let mut ctx = Box::new(RequestCtx::new(
        conn.client,
        conn.client_ip,
        conn.tls,
        parts.version,
        parts.method.clone(),
        parts.uri.path().to_string(),
    ));
    gw.settler.begin();
    let result = run(gw, clients, &snapshot, &mut ctx, &mut parts, body).await;
    respond(gw, ctx, result)
}

async fn run(
    gw: &Arc<Gateway>,
    clients: &Clients,
    snapshot: &Snapshot,
    ctx: &mut RequestCtx,
    parts: &mut Parts,
    body: Incoming,
) -> Result<(Response<Relay>, Option<Box<Meter>>), GatewayError> {
    accept(gw, ctx, parts)?;
    let svc = resolve_route(snapshot, ctx, parts)?;
    authenticate::authenticate(gw, &svc, ctx, &parts.headers)?;
    limits::admit(gw.buckets.as_deref(), &svc, ctx).await?;
    admit(&svc, ctx)?;
    let whole_body = contract::match_operation(gw, &svc, ctx, parts)?;
    let body = read_body(&svc, ctx, parts, body, whole_body).await?;
    contract::check_request(gw, &svc, ctx, parts, &body)?;
    admit_unpriced(gw, &svc, ctx, &body)?;
    let buffered = match &body {
        RequestBody::Buffered(b) => b.as_ref(),
        RequestBody::Streaming { .. } => None,
    };
    budget::admit(&gw.budgets, &svc.config, ctx, buffered).await?;
    let body = if svc.config.meter == MeterSpec::OpenAi && svc.config.include_usage {
        stream_usage::ask_for_usage(&mut parts.headers, body)
    } else {
        body
    };
    let client_upgrade = parts.extensions.remove::<OnUpgrade>();
    let (outgoing, wants_upgrade) = prepare(ctx, parts, &svc);
    ctx.admitted = true;
    let mut expiry = std::pin::pin!(tokio::time::sleep(svc.config.timeout));
    let mut resp = forward::forward(clients, &svc, ctx, outgoing, body, expiry.as_mut()).await?;
    ctx.overhead = Some(ctx.started.elapsed().saturating_sub(ctx.upstream_total));
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        upgrade::tunnel(
            gw,
            ctx,
            wants_upgrade.then_some(client_upgrade).flatten(),
            &mut resp,
        )?;
    }
    let (head, body) = resp.into_parts();
    let meter = start_meter(&svc, &head);
    let (relay, meter) = meter_up_front(&head, body, meter, expiry).await?;
    Ok((Response::from_parts(head, relay), meter))
}

/// A whole JSON body of known, bounded length is read and metered before
/// the head is sent, so the response can carry its cost; it must arrive
/// before the upstream exchange's `expiry`. Streams and bodies of unknown
/// length pass through as they arrive and are metered on the way (their
/// cost is in the access log).
async fn meter_up_front(
    head: &http::response::Parts,
    body: Incoming,
    meter: Option<Box<Meter>>,
    expiry: std::pin::Pin<&mut tokio::time::Sleep>,
) -> Result<(Relay, Option<Box<Meter>>), GatewayError> {
    let declared = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(mut meter) = meter else {
        return Ok((Relay::Stream(body), None));
    };
    let bounded = declared.is_some_and(|len| len <= blastdoor_meter::MAX_BUFFERED_BODY as u64);
    if !meter.wants_whole_body() || !bounded {
        return Ok((Relay::Stream(body), Some(meter)));
    }
    let read = forward::within(expiry, read_whole(body)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return Err(GatewayError::new(
                ErrorCode::UpstreamUnavailable,
                "the upstream's response body broke off",
            )
            .with_cause(e));
        }
        Err(_) => {
            return Err(GatewayError::new(
                ErrorCode::UpstreamTimeout,
                "the upstream's response body did not arrive in time",
            ));
        }
    };
    let usage = std::mem::replace(&mut *meter, Meter::None).finish_whole(&bytes);
    *meter = Meter::Known(usage);
    Ok((Relay::Whole(bytes), Some(meter)))
}

/// Reads a response body whole. The usual small answer arrives as one
/// frame, which is kept as it came: no copy, no list of buffers.
async fn read_whole(mut body: Incoming) -> Result<Bytes, hyper::Error> {
    use http_body::Body as _;
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(frame) = body.frame().await {
        // Trailers carry no usage.
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            None => joined.extend_from_slice(&data),
            Some(earlier) => {
                joined.reserve(earlier.len() + data.len());
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&data);
            }
        }
        if body.is_end_stream() {
            break;
        }
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// Request id and trace context first (every answer carries them), then
/// framing and path checks.
fn accept(gw: &Gateway, ctx: &mut RequestCtx, parts: &Parts) -> Result<(), GatewayError> {
    ctx.request_id = parts
        .headers
        .get(&X_REQUEST_ID)
        .and_then(headers::valid_request_id)
        .map_or_else(headers::new_id, str::to_string);
    ctx.trace = headers::TraceContext::continue_or_start(
        parts.headers.get(&headers::TRACEPARENT),
        gw.tracer.as_deref(),
    );
    ctx.traced = gw.tracer.is_some() && ctx.trace.sampled();
    framing::check(&parts.method, parts.version, &parts.headers)
        .map_err(|e| GatewayError::new(ErrorCode::BadRequest, e.0))?;
    ctx.path = path::normalize(parts.uri.path())
        .map_err(|e| GatewayError::new(ErrorCode::BadRequest, e.0))?;
    Ok(())
}

fn resolve_route(
    snapshot: &Snapshot,
    ctx: &mut RequestCtx,
    parts: &Parts,
) -> Result<Arc<ServiceRuntime>, GatewayError> {
    let authority = parts.uri.authority().map(|a| a.as_str()).or_else(|| {
        parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    let host = authority.map(route::request_host);
    let (index, _prefix) = snapshot
        .routes
        .lookup(host.as_deref(), &ctx.path)
        .ok_or_else(|| {
            GatewayError::new(
                ErrorCode::RouteNotFound,
                format!("no service is routed at {}", ctx.path),
            )
        })?;
    let svc = snapshot
        .services
        .get(*index)
        .cloned()
        .ok_or_else(|| GatewayError::new(ErrorCode::Internal, "route table out of sync"))?;
    ctx.service = Some(Arc::clone(&svc));
    Ok(svc)
}

fn admit(svc: &Arc<ServiceRuntime>, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    match svc.try_admit() {
        Some(slot) => {
            ctx.admission = Some(slot);
            Ok(())
        }
        None => {
            svc.metrics.rejected_overload.inc();
            Err(GatewayError::new(
                ErrorCode::Overloaded,
                format!(
                    "service {} is at its concurrency limit of {}",
                    svc.config.name, svc.config.max_concurrency
                ),
            )
            .retry_after(1))
        }
    }
}

/// With `unpriced = "reject"` (the default where a hard budget applies),
/// a request naming a model the price table lacks is refused before it
/// costs anything. Only bodies read whole can be checked; a streamed one
/// is admitted and flagged if its usage cannot be priced.
fn admit_unpriced(
    gw: &Gateway,
    svc: &ServiceRuntime,
    ctx: &RequestCtx,
    body: &RequestBody,
) -> Result<(), GatewayError> {
    let pricing = &svc.config.pricing;
    if pricing.models.is_empty() {
        return Ok(());
    }
    let reject = match svc.config.unpriced {
        Unpriced::Reject => true,
        Unpriced::Allow => false,
        Unpriced::Default => budget::hard_budget_applies(&gw.budgets, &svc.config, ctx),
    };
    if !reject {
        return Ok(());
    }
    let RequestBody::Buffered(Some(bytes)) = body else {
        return Ok(());
    };
    let requested = serde_json::from_slice::<serde_json::Value>(bytes).ok();
    match requested.as_ref().and_then(|v| v["model"].as_str()) {
        Some(model) if pricing.model_prices(model).is_none() => Err(GatewayError::new(
            ErrorCode::Unpriced,
            format!(
                "model {model:?} has no price on service {}, which refuses calls it cannot price",
                svc.config.name
            ),
        )),
        _ => Ok(()),
    }
}

/// Enforces the body cap; small bodies are read whole (replayable), larger
/// or unknown-length ones stream through under the cap.
/// Reads a small body (so a failed attempt can be retried) or, with
/// `whole`, any body up to the service's limit (to check it against the
/// contract); streams the rest.
async fn read_body(
    svc: &ServiceRuntime,
    ctx: &mut RequestCtx,
    parts: &Parts,
    body: Incoming,
    whole: bool,
) -> Result<RequestBody, GatewayError> {
    use http_body::Body as _;
    let limit = svc.config.max_request_body;
    let too_large = || {
        GatewayError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    };
    let declared: Option<u64> = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    if body.is_end_stream() {
        return Ok(RequestBody::empty());
    }
    match declared {
        _ if whole || declared.is_some_and(|n| n <= REPLAYABLE_BODY) => {
            let read = tokio::time::timeout(
                svc.config.timeout,
                Limited::new(body, limit as usize).collect(),
            )
            .await
            .map_err(|_| {
                GatewayError::new(
                    ErrorCode::BadRequest,
                    "the request body was not received in time",
                )
            })?;
            let bytes = read.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    too_large()
                } else {
                    GatewayError::new(ErrorCode::BadRequest, "the request body could not be read")
                        .with_cause(e)
                }
            })?;
            let bytes: Bytes = bytes.to_bytes();
            ctx.bytes_in = bytes.len() as u64;
            Ok(RequestBody::Buffered(Some(bytes)))
        }
        _ => {
            ctx.bytes_in = declared.unwrap_or(0);
            Ok(RequestBody::Streaming {
                inner: body,
                limit,
                seen: 0,
            })
        }
    }
}

/// Rewrites the request head for the hop to the upstream.
fn prepare(ctx: &RequestCtx, parts: &mut Parts, svc: &ServiceRuntime) -> (Outgoing, bool) {
    let mut h = std::mem::take(&mut parts.headers);
    let original_host = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    let upgrade = headers::rewrite_request(
        &mut h,
        &headers::Hop {
            client: &ctx.client_ip,
            tls: ctx.tls,
            http11: parts.version == http::Version::HTTP_11,
            original_host,
            request_id: &ctx.request_id,
            trace: &ctx.trace,
            caller: ctx.caller.as_deref(),
            strip: &svc.config.strip_headers,
            upstream_auth: svc.config.upstream_auth.as_ref(),
        },
    );
    let prefix = &svc.config.route.prefix;
    let forwarded = route::strip_prefix(&ctx.path, prefix);
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{forwarded}?{q}"),
        None => forwarded.to_string(),
    };
    (
        Outgoing {
            method: parts.method.clone(),
            path_and_query,
            headers: h,
        },
        upgrade,
    )
}

/// Turns the outcome into the response the caller gets; the body carries
/// the context so the request settles when the response ends.
fn respond(
    gw: &Gateway,
    mut ctx: Box<RequestCtx>,
    result: Result<(Response<Relay>, Option<Box<Meter>>), GatewayError>,
) -> Response<ResponseBody> {
    let request_id = HeaderValue::from_str(&ctx.request_id).ok();
    let limit_headers = limits::headers(&ctx);
    let deprecation = contract::deprecation(&ctx);
    let mut resp = match result {
        Ok((resp, meter)) => {
            let (mut head, body) = resp.into_parts();
            ctx.status = head.status.as_u16();
            let upgraded = head.status == StatusCode::SWITCHING_PROTOCOLS;
            let upgrade_value = head.headers.get(http::header::UPGRADE).cloned();
            headers::strip_hop_by_hop(&mut head.headers);
            // The x-blastdoor-* namespace is the gateway's, both ways.
            headers::strip_gateway_headers(&mut head.headers);
            if let (true, Some(v)) = (upgraded, upgrade_value) {
                head.headers.insert(
                    http::header::CONNECTION,
                    HeaderValue::from_static("upgrade"),
                );
                head.headers.insert(http::header::UPGRADE, v);
            }
            if let (Some(svc), Some(usage)) = (&ctx.service, meter.as_ref().and_then(|m| m.known()))
            {
                let priced = svc.config.pricing.price(usage);
                if let Ok(v) = HeaderValue::try_from(priced.cost.to_string()) {
                    head.headers.insert(&X_BLASTDOOR_COST_USD, v);
                }
                ctx.priced = Some(priced);
            }
            let sample = contract::sample_response(gw, &ctx, &head);
            Response::from_parts(
                head,
                ResponseBody::relay(body, gw.settler.clone(), ctx, meter).with_sample(sample),
            )
        }
        Err(err) => {
            ctx.status = err.status().as_u16();
            ctx.error = Some(err.code);
            ctx.cause = err.cause.clone();
            let (head, bytes) = err.render(&ctx.request_id).into_parts();
            Response::from_parts(head, ResponseBody::full(bytes, gw.settler.clone(), ctx))
        }
    };
    if let Some(id) = request_id {
        resp.headers_mut().insert(&X_REQUEST_ID, id);
    }
    if let Some(d) = &deprecation {
        announce_deprecation(resp.headers_mut(), d);
    }
    if let Some((policy, remaining)) = limit_headers {
        resp.headers_mut()
            .insert(&headers::RATELIMIT_POLICY, policy);
        resp.headers_mut().insert(&headers::RATELIMIT, remaining);
    }
    resp
}

/// `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a `Link` to the
/// migration notes, on every answer of a deprecated service or operation.
fn announce_deprecation(h: &mut http::HeaderMap, d: &blastdoor_config::Deprecation) {
    let values = [
        ("deprecation", Some(d.deprecation_header())),
        ("sunset", d.sunset_header()),
        ("link", d.link_header()),
    ];
    for (name, value) in values {
        if let Some(v) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
            h.append(name, v);
        }
    }
}

/// A meter for a successful response of a metered service. Error answers
/// carry no usage and cost nothing.
fn start_meter(svc: &ServiceRuntime, head: &http::response::Parts) -> Option<Box<Meter>> {
    if svc.config.meter == MeterSpec::None || !head.status.is_success() {
        return None;
    }
    let content_type = head
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Some(Box::new(Meter::start(
        &svc.config.meter,
        content_type,
        |name| head.headers.get(name).and_then(|v| v.to_str().ok()),
    )))
}
