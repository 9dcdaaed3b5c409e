//! The rate-limit stage: requests and units per minute and requests in
//! flight, per service and per caller, checked at admission; units charged
//! at settle; the `RateLimit-Policy` / `RateLimit` headers on every answer
//! (draft-ietf-httpapi-ratelimit-headers).
//!
//! With Redis configured, the per-minute buckets live there, shared by the
//! cluster, checked in one round trip per request; if Redis fails the
//! node-local buckets take over. Requests in flight are capped per node.

use std::sync::{Arc, OnceLock};

use blastdoor_cluster::{BucketCheck, BucketOp, BucketState, Buckets};
use blastdoor_meter::Usage;
use blastdoor_types::ErrorCode;
use http::HeaderValue;
use tokio::time::Instant;

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
    // Judged as of the request's arrival: one clock read for all buckets.
    let now = ctx.started;
    let requests = [
        ("service", svc.limit_all.as_ref().map(|b| b.take(now))),
        (
            "caller",
            svc.limit_per_caller
                .as_ref()
                .zip(caller)
                .map(|(p, c)| p.take(c, now)),
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
        match limit.check(caller, now) {
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

/// At settle (`now`): charges the units the response used to the units
/// limits, in Redis when shared (off the request path), else on this node.
pub fn charge(shared: Option<&Arc<Buckets>>, ctx: &RequestCtx, usage: &Usage, now: Instant) {
    let Some(svc) = &ctx.service else { return };
    let used = |limit: &UnitLimit| usage.units.get(&limit.unit).copied().filter(|n| *n > 0);
    let caller = ctx.caller.as_deref().map(|c| c.limit_key());
    // The runtime is only asked for when Redis is there to spawn on: the
    // lookup clones its handle, which a node-local charge does not need.
    let runtime = shared.and_then(|b| Some((b, tokio::runtime::Handle::try_current().ok()?)));
    let Some((buckets, runtime)) = runtime else {
        for limit in &svc.unit_limits {
            if let Some(n) = used(limit) {
                limit.charge(caller, n, now);
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
        svc.unit_limits[i].charge(caller, n, Instant::now());
    }
}

/// The limits a call was checked against, in header order: the tightest
/// requests limit, then each units limit, as (policy, unit, quota).
fn checked(ctx: &RequestCtx) -> impl Iterator<Item = (&str, Option<&str>, &Quota)> {
    let requests = ctx.quota.as_ref().map(|(name, q)| (*name, None, q));
    let units = ctx.service.iter().flat_map(|svc| {
        ctx.unit_quotas.iter().filter_map(|(i, q)| {
            let limit = svc.unit_limits.get(*i)?;
            Some((limit.policy.as_str(), Some(limit.unit.as_str()), q))
        })
    });
    requests.into_iter().chain(units)
}

/// `RateLimit-Policy` and `RateLimit` for the limits this call was checked
/// against: one list item per policy. Built by hand, not with `write!`:
/// it runs on every answer of a limited service.
pub fn headers(ctx: &RequestCtx) -> Option<(HeaderValue, HeaderValue)> {
    let mut remaining = String::with_capacity(96);
    let mut num = itoa::Buffer::new();
    for (name, _, q) in checked(ctx) {
        if !remaining.is_empty() {
            remaining.push_str(", ");
        }
        remaining.push('"');
        remaining.push_str(name);
        remaining.push_str("\";r=");
        remaining.push_str(num.format(q.remaining));
        remaining.push_str(";t=");
        remaining.push_str(num.format(q.reset_secs));
    }
    if remaining.is_empty() {
        return None;
    }
    let policy = match &ctx.service {
        Some(svc) => svc.policies.get(PolicyKey::of(ctx), || policy(ctx))?,
        None => policy(ctx)?,
    };
    Some((policy, HeaderValue::try_from(remaining).ok()?))
}

/// The `RateLimit-Policy` value: the limits' numbers, fixed by the config.
fn policy(ctx: &RequestCtx) -> Option<HeaderValue> {
    let mut policy = String::with_capacity(96);
    let mut num = itoa::Buffer::new();
    for (name, unit, q) in checked(ctx) {
        if !policy.is_empty() {
            policy.push_str(", ");
        }
        policy.push('"');
        policy.push_str(name);
        policy.push_str("\";q=");
        policy.push_str(num.format(q.limit));
        policy.push_str(";w=60");
        if let Some(unit) = unit {
            policy.push_str(";qu=\"");
            policy.push_str(unit);
            policy.push('"');
        }
    }
    HeaderValue::try_from(policy).ok()
}

/// Which limits a call was checked against: the requests limit's policy
/// and the units limits (a bit per index). Within one config, calls with
/// the same key carry the same `RateLimit-Policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PolicyKey {
    requests: Option<&'static str>,
    units: u64,
}

impl PolicyKey {
    /// None when a units limit's index does not fit the bit set.
    fn of(ctx: &RequestCtx) -> Option<PolicyKey> {
        let mut units = 0u64;
        for (i, _) in &ctx.unit_quotas {
            units |= 1u64.checked_shl(u32::try_from(*i).ok()?)?;
        }
        Some(PolicyKey {
            requests: ctx.quota.map(|(name, _)| name),
            units,
        })
    }
}

/// A service's `RateLimit-Policy` values, made once per kind of call (a
/// service with a per-key limit sees two or three kinds) instead of once
/// per answer. Filled as calls come; lock-free to read.
#[derive(Debug, Default)]
pub struct PolicyCache([OnceLock<(PolicyKey, HeaderValue)>; 4]);

impl PolicyCache {
    fn get(
        &self,
        key: Option<PolicyKey>,
        make: impl FnOnce() -> Option<HeaderValue>,
    ) -> Option<HeaderValue> {
        let Some(key) = key else { return make() };
        for slot in &self.0 {
            match slot.get() {
                Some((k, v)) if *k == key => return Some(v.clone()),
                Some(_) => {}
                None => {
                    let v = make()?;
                    // Another thread may fill the slot first; either
                    // value is this key's.
                    let _ = slot.set((key, v.clone()));
                    return Some(v);
                }
            }
        }
        make()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn value(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    fn key(requests: Option<&'static str>, units: u64) -> Option<PolicyKey> {
        Some(PolicyKey { requests, units })
    }

    #[test]
    fn the_policy_cache_answers_each_kind_of_call_with_its_own_value() {
        let cache = PolicyCache::default();
        let made = std::cell::Cell::new(0);
        let get = |k: Option<PolicyKey>, v: &str| {
            cache
                .get(k, || {
                    made.set(made.get() + 1);
                    Some(value(v))
                })
                .unwrap()
        };
        assert_eq!(get(key(Some("service"), 0), "s"), "s");
        assert_eq!(get(key(Some("service"), 0), "unused"), "s", "kept");
        assert_eq!(get(key(Some("caller"), 0), "c"), "c");
        assert_eq!(
            get(key(Some("caller"), 0b10), "cu"),
            "cu",
            "units set apart"
        );
        assert_eq!(get(key(None, 0b10), "u"), "u");
        assert_eq!(made.get(), 4);
        // Full: a fifth kind is made every time, never mixed up.
        assert_eq!(get(key(None, 0b1), "x"), "x");
        assert_eq!(get(key(None, 0b1), "y"), "y");
        assert_eq!(get(key(Some("caller"), 0), "unused"), "c");
        // No key (a units index past the bit set): always made.
        assert_eq!(get(None, "n"), "n");
        assert_eq!(made.get(), 7);
    }

    #[test]
    fn a_units_index_past_the_bit_set_has_no_key() {
        let mut ctx = RequestCtx::new(
            "127.0.0.1:1".parse().unwrap(),
            Arc::from("127.0.0.1"),
            false,
            http::Version::HTTP_11,
            http::Method::GET,
            "/".into(),
        );
        let q = Quota {
            limit: 5,
            remaining: 4,
            reset_secs: 12,
            retry_after_secs: 0,
        };
        ctx.quota = Some(("caller", q));
        ctx.unit_quotas = smallvec::smallvec![(0, q), (63, q)];
        assert_eq!(PolicyKey::of(&ctx), key(Some("caller"), 1 | 1 << 63));
        ctx.unit_quotas.push((64, q));
        assert_eq!(PolicyKey::of(&ctx), None);
        // Without the service, only the requests limit is told.
        let (policy, remaining) = headers(&ctx).unwrap();
        assert_eq!(policy, "\"caller\";q=5;w=60");
        assert_eq!(remaining, "\"caller\";r=4;t=12");
    }
}
