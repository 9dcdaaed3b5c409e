//! The rate-limit stage: requests and units per minute and requests in
//! flight, per service and per caller, checked at admission; units charged
//! at settle; the `RateLimit-Policy` / `RateLimit` headers on every answer
//! (draft-ietf-httpapi-ratelimit-headers).
//!
//! With Redis configured, the per-minute buckets live there, shared by the
//! cluster, checked in one round trip per request; if Redis fails the
//! node-local buckets take over. Requests in flight are capped per node.

use std::sync::Arc;

use blastdoor_cluster::{BucketCheck, BucketOp, BucketState, Buckets};
use blastdoor_meter::Usage;
use blastdoor_types::ErrorCode;
use http::HeaderValue;

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::rate_limit::{Quota, UnitLimit};
use crate::snapshot::ServiceRuntime;

/// Checks every limit of the service that applies to this call. The
/// tightest requests quota and every units quota are kept for the headers.
pub async fn admit(
    shared: Option<&Buckets>,
    svc: &ServiceRuntime,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let caller = ctx.caller.clone();
    let caller = caller.as_deref().map(|c| c.limit_key());
    let shared_checked = match shared {
        Some(buckets) if has_buckets(svc) => admit_shared(buckets, svc, caller, ctx).await?,
        _ => false,
    };
    if !shared_checked {
        admit_local(svc, caller, ctx)?;
    }
    cap_in_flight(svc, caller, ctx)
}

fn has_buckets(svc: &ServiceRuntime) -> bool {
    svc.limit_all.is_some() || svc.limit_per_caller.is_some() || !svc.unit_limits.is_empty()
}

/// What a bucket checked in Redis stands for.
#[derive(Debug, Clone, Copy)]
enum Checked {
    Requests(&'static str),
    Units(usize),
}

/// The per-minute limits, checked in Redis. Ok(false): Redis failed, check
/// on this node instead.
async fn admit_shared(
    buckets: &Buckets,
    svc: &ServiceRuntime,
    caller: Option<&str>,
    ctx: &mut RequestCtx,
) -> Result<bool, GatewayError> {
    let name = svc.config.name.as_str();
    let limits = &svc.config.rate_limit;
    let mut checks: Vec<(Checked, BucketCheck)> = Vec::with_capacity(2 + svc.unit_limits.len());
    if let Some(n) = limits.requests_per_minute {
        let key = buckets.key(&[name, "service"]);
        checks.push((
            Checked::Requests("service"),
            BucketCheck {
                key,
                limit: u64::from(n),
                op: BucketOp::Take,
            },
        ));
    }
    if let (Some(n), Some(c)) = (limits.per_key_requests_per_minute, caller) {
        let key = buckets.key(&[name, "caller", c]);
        checks.push((
            Checked::Requests("caller"),
            BucketCheck {
                key,
                limit: u64::from(n),
                op: BucketOp::Take,
            },
        ));
    }
    for (i, limit) in svc.unit_limits.iter().enumerate() {
        if let Some(key) = unit_key(buckets, name, limit, caller) {
            checks.push((
                Checked::Units(i),
                BucketCheck {
                    key,
                    limit: limit.limit(),
                    op: BucketOp::Check,
                },
            ));
        }
    }
    let list: Vec<BucketCheck> = checks.iter().map(|(_, c)| c.clone()).collect();
    let Ok(states) = buckets.run(&list).await else {
        return Ok(false);
    };
    let mut refusal = None;
    for ((checked, _), state) in checks.iter().zip(states) {
        let q = quota(state);
        match *checked {
            Checked::Requests(policy) => {
                if !state.allowed
                    || ctx
                        .quota
                        .is_none_or(|(_, tight)| q.remaining < tight.remaining)
                {
                    ctx.quota = Some((policy, q));
                }
            }
            Checked::Units(i) => ctx.unit_quotas.push((i, q)),
        }
        if !state.allowed && refusal.is_none() {
            refusal = Some((*checked, q));
        }
    }
    match refusal {
        None => Ok(true),
        Some((Checked::Requests(policy), q)) => {
            ctx.quota = Some((policy, q));
            Err(requests_refused(svc, policy, q))
        }
        Some((Checked::Units(i), q)) => Err(units_refused(svc, &svc.unit_limits[i], q)),
    }
}

fn unit_key(
    buckets: &Buckets,
    service: &str,
    limit: &UnitLimit,
    caller: Option<&str>,
) -> Option<String> {
    match (limit.per_caller_scope(), caller) {
        (false, _) => Some(buckets.key(&[service, &limit.policy])),
        (true, Some(c)) => Some(buckets.key(&[service, &limit.policy, c])),
        (true, None) => None,
    }
}

fn quota(s: BucketState) -> Quota {
    Quota {
        limit: s.limit,
        remaining: s.remaining,
        reset_secs: s.reset_secs,
        retry_after_secs: s.retry_after_secs,
    }
}

fn requests_refused(svc: &ServiceRuntime, policy: &str, q: Quota) -> GatewayError {
    refused(
        q,
        format!(
            "the {policy} limit of {} requests per minute on {} is reached",
            q.limit, svc.config.name
        ),
    )
}

fn units_refused(svc: &ServiceRuntime, limit: &UnitLimit, q: Quota) -> GatewayError {
    let whose = if limit.per_caller_scope() {
        "the caller's"
    } else {
        "the service's"
    };
    refused(
        q,
        format!(
            "{whose} limit of {} {} per minute on {} is used up",
            q.limit, limit.unit, svc.config.name
        ),
    )
}

/// The per-minute limits, on this node.
fn admit_local(
    svc: &ServiceRuntime,
    caller: Option<&str>,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let requests = [
        ("service", svc.limit_all.as_ref().map(|b| b.take())),
        (
            "caller",
            svc.limit_per_caller
                .as_ref()
                .zip(caller)
                .map(|(p, c)| p.take(c)),
        ),
    ];
    for (policy, outcome) in requests {
        match outcome {
            Some(Ok(q))
                if ctx
                    .quota
                    .is_none_or(|(_, tight)| q.remaining < tight.remaining) =>
            {
                ctx.quota = Some((policy, q));
            }
            None | Some(Ok(_)) => {}
            Some(Err(q)) => {
                ctx.quota = Some((policy, q));
                return Err(requests_refused(svc, policy, q));
            }
        }
    }
    for (i, limit) in svc.unit_limits.iter().enumerate() {
        match limit.check(caller) {
            None => {}
            Some(Ok(q)) => ctx.unit_quotas.push((i, q)),
            Some(Err(q)) => {
                ctx.unit_quotas.push((i, q));
                return Err(units_refused(svc, limit, q));
            }
        }
    }
    Ok(())
}

/// Requests in flight per caller, on this node.
fn cap_in_flight(
    svc: &ServiceRuntime,
    caller: Option<&str>,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    if let (Some(cap), Some(caller)) = (&svc.caller_concurrency, caller) {
        match cap.try_acquire(caller) {
            Some(slot) => ctx.caller_slot = Some(slot),
            None => {
                return Err(GatewayError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "the caller already has the most requests in flight that {} allows",
                        svc.config.name
                    ),
                )
                .retry_after(1));
            }
        }
    }
    Ok(())
}

fn refused(q: Quota, detail: String) -> GatewayError {
    let retry = u32::try_from(q.retry_after_secs.max(1)).unwrap_or(u32::MAX);
    GatewayError::new(ErrorCode::RateLimited, detail).retry_after(retry)
}

/// At settle: charges the units the response used to the units limits,
/// in Redis when shared (off the request path), else on this node.
pub fn charge(shared: Option<&Arc<Buckets>>, ctx: &RequestCtx, usage: &Usage) {
    let Some(svc) = &ctx.service else { return };
    let used = |limit: &UnitLimit| usage.units.get(&limit.unit).copied().filter(|n| *n > 0);
    let caller = ctx.caller.as_deref().map(|c| c.limit_key());
    let runtime = tokio::runtime::Handle::try_current();
    let (Some(buckets), Ok(runtime)) = (shared, runtime) else {
        for limit in &svc.unit_limits {
            if let Some(n) = used(limit) {
                limit.charge(caller, n);
            }
        }
        return;
    };
    // (index in the service's units limits, units used): what to charge.
    let charges: Vec<(usize, u64)> = svc
        .unit_limits
        .iter()
        .enumerate()
        .filter_map(|(i, limit)| Some((i, used(limit)?)))
        .collect();
    if charges.is_empty() {
        return;
    }
    let name = svc.config.name.as_str();
    let checks: Vec<BucketCheck> = charges
        .iter()
        .filter_map(|&(i, n)| {
            let limit = &svc.unit_limits[i];
            Some(BucketCheck {
                key: unit_key(buckets, name, limit, caller)?,
                limit: limit.limit(),
                op: BucketOp::Charge(n),
            })
        })
        .collect();
    let (buckets, svc, caller) = (
        Arc::clone(buckets),
        Arc::clone(svc),
        caller.map(str::to_string),
    );
    runtime.spawn(async move {
        if buckets.run(&checks).await.is_err() {
            charge_local(&svc, caller.as_deref(), &charges);
        }
    });
}

fn charge_local(svc: &ServiceRuntime, caller: Option<&str>, charges: &[(usize, u64)]) {
    for &(i, n) in charges {
        svc.unit_limits[i].charge(caller, n);
    }
}

/// `RateLimit-Policy` and `RateLimit` for the limits this call was checked
/// against: one list item per policy. Built by hand, not with `write!`:
/// it runs on every answer of a limited service.
pub fn headers(ctx: &RequestCtx) -> Option<(HeaderValue, HeaderValue)> {
    let mut policy = String::with_capacity(96);
    let mut remaining = String::with_capacity(96);
    let mut num = itoa::Buffer::new();
    let mut item = |name: &str, unit: Option<&str>, q: &Quota| {
        if !policy.is_empty() {
            policy.push_str(", ");
            remaining.push_str(", ");
        }
        for (out, key, value) in [
            (&mut policy, "q", q.limit),
            (&mut remaining, "r", q.remaining),
        ] {
            out.push('"');
            out.push_str(name);
            out.push_str("\";");
            out.push_str(key);
            out.push('=');
            out.push_str(num.format(value));
        }
        policy.push_str(";w=60");
        if let Some(unit) = unit {
            policy.push_str(";qu=\"");
            policy.push_str(unit);
            policy.push('"');
        }
        remaining.push_str(";t=");
        remaining.push_str(num.format(q.reset_secs));
    };
    if let Some((name, q)) = &ctx.quota {
        item(name, None, q);
    }
    if let Some(svc) = &ctx.service {
        for (i, q) in &ctx.unit_quotas {
            if let Some(limit) = svc.unit_limits.get(*i) {
                item(&limit.policy, Some(&limit.unit), q);
            }
        }
    }
    if policy.is_empty() {
        return None;
    }
    Some((
        HeaderValue::try_from(policy).ok()?,
        HeaderValue::try_from(remaining).ok()?,
    ))
}
