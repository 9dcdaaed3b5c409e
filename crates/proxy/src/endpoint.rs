//! One upstream host of a service and what the gateway knows about it:
//! requests in flight, latency, passive outlier state and active health.
//!
//! All state is atomics: many requests update it at once without a lock.
//! It survives config reloads for as long as the (service, URL) pair stays
//! in the config.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use blastdoor_config::{Outlier, Upstream};
use blastdoor_telemetry::UpstreamMetrics;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Endpoint {
    pub upstream: Upstream,
    pub metrics: UpstreamMetrics,
    /// Time origin for the millisecond timestamps below.
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Exponentially weighted response-head latency, in microseconds.
    ewma_micros: AtomicU64,
    consecutive_failures: AtomicU32,
    /// Milliseconds since `epoch` until which the host is ejected (0: not).
    ejected_until_ms: AtomicU64,
    /// When the last ejection ended or ends; the streak resets after a
    /// long enough healthy spell.
    last_ejection_end_ms: AtomicU64,
    /// Ejections in a row; the ejection time grows with it.
    ejection_streak: AtomicU32,
    /// Result of the last active health checks (true without checks).
    health_passing: AtomicBool,
}

impl Endpoint {
    pub fn new(upstream: Upstream, metrics: UpstreamMetrics) -> Arc<Endpoint> {
        metrics.healthy.set(1);
        Arc::new(Endpoint {
            upstream,
            metrics,
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            ewma_micros: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            last_ejection_end_ms: AtomicU64::new(0),
            ejection_streak: AtomicU32::new(0),
            health_passing: AtomicBool::new(true),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }

    pub fn latency_micros(&self) -> u64 {
        self.ewma_micros.load(Relaxed)
    }

    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until_ms.load(Relaxed);
        // The common case, no ejection, needs no clock read.
        if until == 0 {
            return false;
        }
        if self.now_ms() < until {
            return true;
        }
        // The ejection is over: clear it (once) and publish the host as
        // healthy again.
        if self
            .ejected_until_ms
            .compare_exchange(until, 0, Relaxed, Relaxed)
            .is_ok()
        {
            self.refresh_health_gauge();
        }
        false
    }

    /// Whether the balancer may send traffic here.
    pub fn is_available(&self) -> bool {
        self.health_passing.load(Relaxed) && !self.is_ejected()
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(Arc::clone(self))
    }

    /// A response head arrived that was not a failure.
    pub fn record_success(&self, latency: Duration) {
        self.consecutive_failures.store(0, Relaxed);
        self.observe_latency(latency);
    }

    fn observe_latency(&self, latency: Duration) {
        let sample = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let old = self.ewma_micros.load(Relaxed);
        // Weight 1/8 for the new sample; racing updates may lose a sample,
        // which a moving average tolerates.
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.ewma_micros.store(new, Relaxed);
        self.metrics.duration.observe(latency.as_secs_f64());
    }

    /// A connection error, timeout or 5xx. Returns true if this failure
    /// ejected the host. `peers` are all hosts of the service, this one
    /// included: ejections stay under the service's cap.
    pub fn record_failure(&self, policy: &Outlier, peers: &[Arc<Endpoint>]) -> bool {
        let failures = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
        if policy.consecutive_failures == 0
            || failures < policy.consecutive_failures
            || self.is_ejected()
        {
            return false;
        }
        // Never eject past the cap: some hosts must keep taking traffic.
        let ejected_peers = peers.iter().filter(|p| p.is_ejected()).count();
        let share = (ejected_peers + 1) * 100;
        if share > peers.len() * policy.max_ejected_percent as usize {
            return false;
        }
        let now = self.now_ms();
        let last_end = self.last_ejection_end_ms.load(Relaxed);
        let streak =
            if last_end != 0 && now.saturating_sub(last_end) < millis(policy.max_ejection_time) {
                self.ejection_streak.fetch_add(1, Relaxed) + 1
            } else {
                self.ejection_streak.store(1, Relaxed);
                1
            };
        let ejection = policy
            .base_ejection_time
            .saturating_mul(streak)
            .min(policy.max_ejection_time);
        let until = now + millis(ejection);
        self.ejected_until_ms.store(until, Relaxed);
        self.last_ejection_end_ms.store(until, Relaxed);
        self.consecutive_failures.store(0, Relaxed);
        self.metrics.ejections.inc();
        self.refresh_health_gauge();
        true
    }

    pub fn set_health_passing(&self, passing: bool) {
        self.health_passing.store(passing, Relaxed);
        self.refresh_health_gauge();
    }

    /// Publishes availability to `blastdoor_upstream_healthy`.
    pub fn refresh_health_gauge(&self) {
        self.metrics.healthy.set(i64::from(self.is_available()));
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A request in flight to an endpoint; dropping it ends the count.
#[derive(Debug)]
pub struct InFlight(Arc<Endpoint>);

impl InFlight {
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// An endpoint for `url` with its own metrics, for unit tests.
#[cfg(test)]
pub(crate) fn test_endpoint(url: &str) -> Arc<Endpoint> {
    #![allow(clippy::unwrap_used)]
    let uri: http::Uri = url.parse().unwrap();
    let up = Upstream {
        url: url.to_string(),
        scheme: uri.scheme().unwrap().clone(),
        authority: uri.authority().unwrap().clone(),
        base_path: String::new(),
    };
    Endpoint::new(up, blastdoor_telemetry::Metrics::new().upstream("s", url))
}

#[cfg(test)]
mod tests {
    use super::test_endpoint as endpoint;
    use super::*;

    fn policy() -> Outlier {
        Outlier {
            consecutive_failures: 3,
            base_ejection_time: Duration::from_secs(10),
            max_ejection_time: Duration::from_secs(25),
            max_ejected_percent: 50,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ejects_after_consecutive_failures_and_recovers() {
        let e = endpoint("http://127.0.0.1:1");
        let peers = [Arc::clone(&e), endpoint("http://127.0.0.1:2")];
        let p = policy();
        assert!(!e.record_failure(&p, &peers));
        e.record_success(Duration::from_millis(1)); // resets the streak of failures
        assert!(!e.record_failure(&p, &peers));
        assert!(!e.record_failure(&p, &peers));
        assert!(e.record_failure(&p, &peers));
        assert!(!e.is_available());
        assert_eq!(e.metrics.healthy.get(), 0);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(e.is_available(), "back after the base ejection time");
        assert_eq!(e.metrics.healthy.get(), 1, "and published as healthy again");
    }

    #[tokio::test(start_paused = true)]
    async fn ejection_time_grows_and_is_capped() {
        let e = endpoint("http://127.0.0.1:1");
        let peers = [Arc::clone(&e), endpoint("http://127.0.0.1:2")];
        let p = policy();
        let eject = |e: &Endpoint| {
            for _ in 0..3 {
                e.record_failure(&p, &peers);
            }
        };
        eject(&e);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(e.is_available());
        eject(&e); // second ejection in a row: 20 s
        tokio::time::advance(Duration::from_secs(19)).await;
        assert!(!e.is_available());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(e.is_available());
        eject(&e); // third: 30 s, capped at 25 s
        tokio::time::advance(Duration::from_secs(25)).await;
        assert!(e.is_available());
    }

    #[tokio::test(start_paused = true)]
    async fn never_ejects_past_the_cap() {
        let e = endpoint("http://127.0.0.1:1");
        let other = endpoint("http://127.0.0.1:2");
        let peers = [Arc::clone(&e), Arc::clone(&other)];
        let p = policy();
        for _ in 0..3 {
            other.record_failure(&p, &peers);
        }
        assert!(other.is_ejected());
        for _ in 0..10 {
            // One of two hosts already ejected: 2/2 = 100% > 50%.
            assert!(!e.record_failure(&p, &peers));
        }
        assert!(e.is_available());
    }

    #[tokio::test]
    async fn in_flight_guard_counts() {
        let e = endpoint("http://127.0.0.1:1");
        let a = e.start();
        let b = e.start();
        assert_eq!(e.in_flight(), 2);
        drop(a);
        drop(b);
        assert_eq!(e.in_flight(), 0);
    }
}
