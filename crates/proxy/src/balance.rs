//! Power-of-two-choices load balancing over requests in flight.
//!
//! Two distinct available hosts are drawn at random and the one with fewer
//! requests in flight wins (ties go to the lower latency average). This
//! reacts to load as fast as least-requests but needs no shared ordering,
//! and it avoids the herd effect of always picking the global minimum.

use std::sync::Arc;

use crate::endpoint::Endpoint;

/// Picks an available endpoint, avoiding `avoid` (the host that just
/// failed) when another is available. None if no host is available.
pub fn pick<'a>(
    endpoints: &'a [Arc<Endpoint>],
    avoid: Option<&Arc<Endpoint>>,
) -> Option<&'a Arc<Endpoint>> {
    let usable = |e: &Arc<Endpoint>| e.is_available() && avoid.is_none_or(|a| !Arc::ptr_eq(a, e));
    match endpoints.len() {
        0 => None,
        1 => endpoints.first().filter(|e| e.is_available()),
        n => {
            let i = fastrand::usize(..n);
            let j = (i + 1 + fastrand::usize(..n - 1)) % n;
            let (a, b) = (&endpoints[i], &endpoints[j]);
            match (usable(a), usable(b)) {
                (true, true) => Some(if less_loaded(b, a) { b } else { a }),
                (true, false) => Some(a),
                (false, true) => Some(b),
                // Both draws unusable: scan for the least-loaded usable
                // host, then accept the avoided one as a last resort.
                (false, false) => endpoints
                    .iter()
                    .filter(|e| usable(e))
                    .min_by(|x, y| load(x).cmp(&load(y)))
                    .or_else(|| {
                        endpoints
                            .iter()
                            .filter(|e| e.is_available())
                            .min_by(|x, y| load(x).cmp(&load(y)))
                    }),
            }
        }
    }
}

fn load(e: &Endpoint) -> (usize, u64) {
    (e.in_flight(), e.latency_micros())
}

fn less_loaded(x: &Endpoint, y: &Endpoint) -> bool {
    load(x) < load(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::test_endpoint;

    fn endpoints(n: usize) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|i| test_endpoint(&format!("http://127.0.0.1:{}", 1000 + i)))
            .collect()
    }

    #[test]
    fn prefers_the_less_loaded_host() {
        let eps = endpoints(2);
        let _busy: Vec<_> = (0..5).map(|_| eps[0].start()).collect();
        for _ in 0..100 {
            // With two hosts both are always drawn: the idle one must win.
            assert!(Arc::ptr_eq(pick(&eps, None).unwrap(), &eps[1]));
        }
    }

    #[test]
    fn spreads_load_when_equal() {
        let eps = endpoints(4);
        let mut hits = [0usize; 4];
        for _ in 0..4000 {
            let e = pick(&eps, None).unwrap();
            let i = eps.iter().position(|x| Arc::ptr_eq(x, e)).unwrap();
            hits[i] += 1;
        }
        assert!(hits.iter().all(|&h| h > 500), "{hits:?}");
    }

    #[test]
    fn skips_unavailable_and_avoided_hosts() {
        let eps = endpoints(3);
        eps[0].set_health_passing(false);
        for _ in 0..100 {
            let e = pick(&eps, Some(&eps[1])).unwrap();
            assert!(Arc::ptr_eq(e, &eps[2]));
        }
        eps[2].set_health_passing(false);
        // Only the avoided host is left: better than nothing.
        assert!(Arc::ptr_eq(pick(&eps, Some(&eps[1])).unwrap(), &eps[1]));
        eps[1].set_health_passing(false);
        assert!(pick(&eps, None).is_none());
    }
}
