//! The spans of a traced request, built when it settles: a server span for
//! the gateway's answer and a client span per upstream attempt (retries
//! show as siblings). Times were taken as the request went; here they
//! become wall-clock nanoseconds, and the spans go to the exporter with
//! one non-blocking send each. Built on the reporter thread.

use std::time::UNIX_EPOCH;

use blastdoor_meter::{MeterSpec, Priced, Usage};
use blastdoor_telemetry::otlp::{Kind, SpanRecord, Tracer, Value};
use tokio::time::Instant;

use crate::ctx::RequestCtx;
use crate::report::Report;

/// GenAI semantic-convention names of the units model meters report.
const GEN_AI_UNITS: [(&str, &str); 5] = [
    ("input_tokens", "gen_ai.usage.input_tokens"),
    ("output_tokens", "gen_ai.usage.output_tokens"),
    (
        "cached_input_tokens",
        "gen_ai.usage.cache_read.input_tokens",
    ),
    (
        "cache_write_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
    ),
    ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
];

fn int(n: impl TryInto<i64>) -> Value {
    Value::Int(n.try_into().unwrap_or(i64::MAX))
}

pub(crate) fn record(tracer: &Tracer, r: &mut Report) {
    let (now, wall) = (
        r.ended,
        r.ended_wall.duration_since(UNIX_EPOCH).unwrap_or_default(),
    );
    let unix = |t: Instant| -> u64 {
        let nanos = wall
            .saturating_sub(now.saturating_duration_since(t))
            .as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    };
    let (complete, usage, priced) = (r.complete, r.usage.as_ref(), r.priced.as_ref());
    let ctx = &mut r.ctx;
    let end = unix(now);
    let server = server_span(ctx, complete, usage, priced, unix(ctx.started), end);
    let server_id = server.span_id;
    tracer.record(server);
    for (i, a) in std::mem::take(&mut ctx.attempt_spans)
        .into_iter()
        .enumerate()
    {
        let mut attributes = vec![
            (
                "http.request.method",
                Value::Str(ctx.method.as_str().into()),
            ),
            ("url.full", Value::Str(a.upstream)),
            ("http.request.resend_count", int(i)),
        ];
        if let Some(status) = a.status {
            attributes.push(("http.response.status_code", int(status)));
        }
        if let Some(e) = a.error {
            attributes.push(("error.type", Value::Str(e.into())));
        }
        tracer.record(SpanRecord {
            trace_id: ctx.trace.trace_id,
            span_id: a.span_id,
            parent_span_id: server_id,
            remote_parent: false,
            kind: Kind::Client,
            name: ctx.method.as_str().to_string(),
            start_unix_nanos: unix(a.start),
            end_unix_nanos: a.end.map_or(end, unix),
            error: match (a.error, a.status) {
                (Some(e), _) => Some(e.to_string()),
                (None, Some(s)) if s >= 500 => Some(format!("the upstream answered {s}")),
                _ => None,
            },
            attributes,
        });
    }
}

fn server_span(
    ctx: &RequestCtx,
    complete: bool,
    usage: Option<&Usage>,
    priced: Option<&Priced>,
    start: u64,
    end: u64,
) -> SpanRecord {
    let svc = ctx.service.as_deref();
    // Room for every attribute below, so the list never grows.
    let mut a = Vec::with_capacity(24);
    a.extend([
        (
            "http.request.method",
            Value::Str(ctx.method.as_str().into()),
        ),
        ("url.path", Value::Str(ctx.path.clone())),
        ("http.response.status_code", int(ctx.status)),
        ("client.address", Value::Str(ctx.client_ip.to_string())),
        ("blastdoor.request_id", Value::Str(ctx.request_id.clone())),
        ("blastdoor.attempts", int(ctx.attempts)),
        ("blastdoor.complete", Value::Bool(complete)),
    ]);
    if let Some(svc) = svc {
        a.push(("blastdoor.service", Value::Str(svc.config.name.clone())));
        a.push(("http.route", Value::Str(svc.config.route.prefix.clone())));
    }
    if let Some(op) = ctx.operation_id() {
        a.push(("blastdoor.operation", Value::Str(op.to_string())));
    }
    if let Some(caller) = &ctx.caller {
        a.push(("blastdoor.consumer", Value::Str(caller.consumer.clone())));
        if let Some(team) = &caller.team {
            a.push(("blastdoor.team", Value::Str(team.clone())));
        }
    }
    if let Some(code) = ctx.error {
        a.push(("error.type", Value::Str(code.as_str().into())));
    }
    if let Some(p) = priced {
        a.push(("blastdoor.cost_usd", Value::Str(p.cost.to_string())));
        a.push(("blastdoor.cost_micros", int(p.cost.micros())));
        if !p.unpriced.is_empty() {
            a.push(("blastdoor.unpriced", Value::Str(p.unpriced.join("; "))));
        }
    }
    let provider = svc.and_then(|s| match s.config.meter {
        MeterSpec::OpenAi => Some("openai"),
        MeterSpec::Anthropic => Some("anthropic"),
        _ => None,
    });
    if let (Some(provider), Some(usage)) = (provider, usage) {
        a.push(("gen_ai.provider.name", Value::Str(provider.into())));
        if let Some(model) = &usage.model {
            a.push(("gen_ai.response.model", Value::Str(model.clone())));
        }
        for (unit, name) in GEN_AI_UNITS {
            if let Some(n) = usage.units.get(unit) {
                a.push((name, int(*n)));
            }
        }
    }
    let route = svc.map_or("", |s| s.config.route.prefix.as_str());
    SpanRecord {
        trace_id: ctx.trace.trace_id,
        span_id: ctx.trace.span_id,
        parent_span_id: ctx.trace.parent_span_id.unwrap_or(0),
        remote_parent: ctx.trace.parent_span_id.is_some(),
        kind: Kind::Server,
        name: span_name(ctx.method.as_str(), route),
        start_unix_nanos: start,
        end_unix_nanos: end,
        error: (ctx.status >= 500).then(|| {
            ctx.error.map_or_else(
                || format!("answered {}", ctx.status),
                |c| c.as_str().to_string(),
            )
        }),
        attributes: a,
    }
}

/// `{method} {route}`, or the method alone when no route matched.
fn span_name(method: &str, route: &str) -> String {
    let mut name = String::with_capacity(method.len() + 1 + route.len());
    name.push_str(method);
    if !route.is_empty() {
        name.push(' ');
        name.push_str(route);
    }
    name
}
