//! Slows down key guessing: an address that fails authentication
//! `FAILURE_LIMIT` times within `WINDOW` gets 429 on every authenticated
//! call until the window ends, whatever key it presents.
//!
//! The common case (nobody is being limited) costs one atomic load and no
//! lock. Failures go to one of several shards, each a small mutex-guarded
//! map, so failing callers do not contend with each other much.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

/// Failed authentications allowed per address and window.
pub const FAILURE_LIMIT: u32 = 20;
/// The window failures are counted in, and the penalty that follows.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once per shard; past it new addresses are not
/// tracked until old windows expire (memory stays bounded under a flood).
const MAX_PER_SHARD: usize = 4096;
const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Window {
    started_ms: u64,
    failures: u32,
}

#[derive(Debug)]
pub struct FailureLimiter {
    epoch: Instant,
    shards: [Mutex<HashMap<IpAddr, Window>>; SHARDS],
    /// No address is limited after this time (ms since `epoch`).
    horizon_ms: AtomicU64,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter {
            epoch: Instant::now(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            horizon_ms: AtomicU64::new(0),
        }
    }
}

fn window_ms() -> u64 {
    u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX)
}

impl FailureLimiter {
    fn ms_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn shard(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, Window>> {
        let h = match ip {
            IpAddr::V4(v4) => u64::from(u32::from(*v4)),
            IpAddr::V6(v6) => u128::from(*v6) as u64,
        };
        &self.shards[(h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS]
    }

    /// Seconds until `ip` may try again, if it is being limited at `now`
    /// (the request's arrival: the clock is not read again).
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let now = self.ms_at(now);
        if now >= self.horizon_ms.load(Relaxed) {
            return None;
        }
        let shard = self.shard(&ip).lock().unwrap_or_else(|p| p.into_inner());
        let w = shard.get(&ip)?;
        let ends = w.started_ms + window_ms();
        (w.failures >= FAILURE_LIMIT && now < ends).then(|| (ends - now).div_ceil(1000))
    }

    /// Counts a failed authentication from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        let now = self.ms_at(Instant::now());
        let mut shard = self.shard(&ip).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= MAX_PER_SHARD && !shard.contains_key(&ip) {
            shard.retain(|_, w| now < w.started_ms + window_ms());
            if shard.len() >= MAX_PER_SHARD {
                return;
            }
        }
        let w = shard.entry(ip).or_insert(Window {
            started_ms: now,
            failures: 0,
        });
        if now >= w.started_ms + window_ms() {
            *w = Window {
                started_ms: now,
                failures: 0,
            };
        }
        w.failures += 1;
        if w.failures >= FAILURE_LIMIT {
            self.horizon_ms
                .fetch_max(w.started_ms + window_ms(), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limits_after_repeated_failures_then_forgives() {
        let l = FailureLimiter::default();
        let bad: IpAddr = "10.0.0.1".parse().unwrap();
        let good: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..FAILURE_LIMIT - 1 {
            l.record_failure(bad);
        }
        assert_eq!(l.blocked(bad, Instant::now()), None, "under the limit");
        l.record_failure(bad);
        assert_eq!(l.blocked(bad, Instant::now()), Some(60));
        assert_eq!(
            l.blocked(good, Instant::now()),
            None,
            "other addresses are not affected"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(l.blocked(bad, Instant::now()), Some(30));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            l.blocked(bad, Instant::now()),
            None,
            "the penalty ends with the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_spread_over_windows_do_not_add_up() {
        let l = FailureLimiter::default();
        let ip: IpAddr = "::1".parse().unwrap();
        for _ in 0..FAILURE_LIMIT - 1 {
            l.record_failure(ip);
        }
        tokio::time::advance(WINDOW).await;
        l.record_failure(ip);
        assert_eq!(l.blocked(ip, Instant::now()), None);
    }
}
