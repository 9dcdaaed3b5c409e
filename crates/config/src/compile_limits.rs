//! A service's `rate_limit`: requests and units per minute, requests in
//! flight.

use std::collections::BTreeMap;

use super::Cx;
use crate::model::RateLimit;
use crate::raw::{RawRateLimit, S};

impl Cx<'_> {
    /// `units`: what the service's meter reports; a units limit on
    /// anything else could never apply.
    pub(super) fn rate_limit(&mut self, r: Option<&RawRateLimit>, units: &[String]) -> RateLimit {
        let Some(r) = r else {
            return RateLimit::default();
        };
        let mut limit = |v: &Option<S<i64>>, what| {
            v.as_ref()
                .map(|_| self.int(v, 0, 1..10_000_001, what) as u32)
        };
        let requests_per_minute = limit(&r.requests_per_minute, "requests_per_minute");
        let per_key_requests_per_minute = limit(
            &r.per_key_requests_per_minute,
            "per_key_requests_per_minute",
        );
        let per_key_concurrency = limit(&r.per_key_concurrency, "per_key_concurrency");
        RateLimit {
            requests_per_minute,
            per_key_requests_per_minute,
            per_key_concurrency,
            units_per_minute: self.unit_limits(
                r.units_per_minute.as_ref(),
                units,
                "units_per_minute",
            ),
            per_key_units_per_minute: self.unit_limits(
                r.per_key_units_per_minute.as_ref(),
                units,
                "per_key_units_per_minute",
            ),
        }
    }

    fn unit_limits(
        &mut self,
        limits: Option<&BTreeMap<String, S<i64>>>,
        units: &[String],
        what: &str,
    ) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (unit, v) in limits.into_iter().flatten() {
            if !units.iter().any(|u| u == unit) {
                let known = if units.is_empty() {
                    "the service's meter reports no units".to_string()
                } else {
                    format!("the service's meter reports {}", units.join(", "))
                };
                self.error(
                    v.span(),
                    format!("{what}: unit {unit:?} is never metered here ({known})"),
                );
                continue;
            }
            let n = self.int(&Some(v.clone()), 0, 1..1_000_000_000_001, what);
            out.push((unit.clone(), n));
        }
        out
    }
}
