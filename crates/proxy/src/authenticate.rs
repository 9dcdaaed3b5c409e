//! The authenticate and authorize stages: a key from `Authorization:
//! Bearer` or `x-api-key`, checked against the in-memory key cache (no
//! store query), or a JWT from a configured issuer; then the caller's scope
//! against the service and method. Services marked `public` skip both,
//! explicitly.

use std::sync::Arc;

use blastdoor_auth::key::PREFIX as KEY_PREFIX;
use blastdoor_auth::{Caller, Rejection};
use blastdoor_store::now_ms;
use blastdoor_types::ErrorCode;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::Gateway;
use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::headers::X_API_KEY;
use crate::snapshot::ServiceRuntime;

/// The credential a caller presented, if any: a Bearer token, else
/// `x-api-key` (an `Authorization` of another scheme is not ours).
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    bearer.or_else(|| {
        headers
            .get(&X_API_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })
}

pub fn authenticate(
    gw: &Gateway,
    svc: &ServiceRuntime,
    ctx: &mut RequestCtx,
    headers: &HeaderMap,
) -> Result<(), GatewayError> {
    if svc.config.public {
        return Ok(());
    }
    let ip = ctx.client.ip();
    let limiter = &gw.limiter;
    if let Some(wait) = limiter.blocked(ip, ctx.started) {
        return Err(GatewayError::new(
            ErrorCode::RateLimited,
            "too many failed authentications from this address; try again later",
        )
        .retry_after(u32::try_from(wait).unwrap_or(u32::MAX)));
    }
    let checked: Result<Arc<Caller>, Rejection> =
        identify(gw, presented_key(headers)).and_then(|caller| {
            caller
                .authorize(&svc.config.name, ctx.method.as_str())
                .map(|()| caller)
        });
    match checked {
        Ok(caller) => {
            ctx.caller = Some(caller);
            Ok(())
        }
        Err(rejection) if rejection.is_forbidden() => {
            Err(GatewayError::new(ErrorCode::Forbidden, rejection.detail()))
        }
        Err(rejection) => {
            if rejection.is_guess() {
                limiter.record_failure(ip);
            }
            Err(GatewayError::new(
                ErrorCode::Unauthorized,
                rejection.detail(),
            ))
        }
    }
}

/// API keys start with `bd_`; anything else is tried as a JWT when
/// issuers are configured.
fn identify(gw: &Gateway, presented: Option<&str>) -> Result<Arc<Caller>, Rejection> {
    match presented {
        Some(token) if !token.starts_with(KEY_PREFIX) => {
            let jwt = gw.jwt.load();
            if jwt.is_empty() {
                Err(Rejection::Malformed)
            } else {
                jwt.verify(token)
            }
        }
        presented => gw.keys.authenticate(presented, now_ms()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn finds_the_key_in_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static(" bd_abc "));
        assert_eq!(presented_key(&h), Some("bd_abc"));
        h.insert("authorization", HeaderValue::from_static("Bearer bd_xyz"));
        assert_eq!(presented_key(&h), Some("bd_xyz"), "Authorization wins");
        h.insert("authorization", HeaderValue::from_static("bearer   bd_xyz"));
        assert_eq!(presented_key(&h), Some("bd_xyz"));
        h.insert(
            "authorization",
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        assert_eq!(
            presented_key(&h),
            Some("bd_abc"),
            "another scheme: x-api-key still counts"
        );
        h.remove("x-api-key");
        assert_eq!(presented_key(&h), None, "other schemes carry no key");
    }
}
