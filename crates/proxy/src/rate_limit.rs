//! Requests-per-minute limits per service and per caller, enforced in
//! memory on this node with GCRA: one atomic timestamp per bucket, no lock
//! on the check itself. Per-caller buckets live in a sharded map, locked
//! briefly to find the bucket. (Limits shared across replicas need Redis;
//! that comes with budgets.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);
const SHARDS: usize = 16;
/// Callers tracked per service and shard before idle ones are dropped.
const MAX_CALLERS_PER_SHARD: usize = 8192;

/// The outcome of a check, for the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds to wait before retrying (when refused).
    pub retry_after_secs: u64,
}

/// A GCRA bucket: `limit` requests per minute, bursting up to `limit`.
#[derive(Debug)]
pub struct Bucket {
    limit: u32,
    interval_ns: u64,
    epoch: Instant,
    /// Theoretical arrival time of the next request, ns since `epoch`.
    tat: AtomicU64,
}

impl Bucket {
    pub fn new(limit: u32, epoch: Instant) -> Bucket {
        let window = u64::try_from(WINDOW.as_nanos()).unwrap_or(u64::MAX);
        Bucket {
            limit,
            interval_ns: window / u64::from(limit.max(1)),
            epoch,
            tat: AtomicU64::new(0),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes one request from the bucket, or says how long to wait.
    pub fn take(&self) -> Result<Quota, Quota> {
        let now = self.now_ns();
        let capacity = self.interval_ns.saturating_mul(u64::from(self.limit));
        let quota = |backlog: u64, retry: u64| Quota {
            limit: self.limit,
            remaining: u32::try_from(capacity.saturating_sub(backlog) / self.interval_ns.max(1))
                .unwrap_or(0),
            reset_secs: backlog.div_ceil(1_000_000_000),
            retry_after_secs: retry.div_ceil(1_000_000_000),
        };
        let mut tat = self.tat.load(Relaxed);
        loop {
            let next = tat.max(now).saturating_add(self.interval_ns);
            let backlog = next - now;
            if backlog > capacity {
                let current = tat.max(now) - now;
                return Err(quota(current, backlog - capacity));
            }
            match self.tat.compare_exchange_weak(tat, next, Relaxed, Relaxed) {
                Ok(_) => return Ok(quota(backlog, 0)),
                Err(seen) => tat = seen,
            }
        }
    }

    fn idle(&self) -> bool {
        self.tat.load(Relaxed) <= self.now_ns()
    }
}

/// Buckets per caller for one service.
#[derive(Debug)]
pub struct PerCaller {
    limit: u32,
    epoch: Instant,
    shards: [Mutex<HashMap<String, Arc<Bucket>>>; SHARDS],
}

impl PerCaller {
    pub fn new(limit: u32) -> PerCaller {
        PerCaller {
            limit,
            epoch: Instant::now(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    pub fn take(&self, caller: &str) -> Result<Quota, Quota> {
        let shard = &self.shards[shard_of(caller)];
        let bucket = {
            let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= MAX_CALLERS_PER_SHARD && !map.contains_key(caller) {
                map.retain(|_, b| !b.idle());
            }
            Arc::clone(
                map.entry(caller.to_string())
                    .or_insert_with(|| Arc::new(Bucket::new(self.limit, self.epoch))),
            )
        };
        bucket.take()
    }
}

/// Requests in flight per caller, under a cap. A slot is released when
/// its [`CallerSlot`] drops (when the request settles).
#[derive(Debug)]
pub struct CallerConcurrency {
    limit: usize,
    shards: [Mutex<HashMap<String, Arc<AtomicUsize>>>; SHARDS],
}

#[derive(Debug)]
pub struct CallerSlot(Arc<AtomicUsize>);

impl Drop for CallerSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl CallerConcurrency {
    pub fn new(limit: u32) -> Self {
        CallerConcurrency {
            limit: limit as usize,
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    /// A slot for `caller`, or None at the cap.
    pub fn try_acquire(&self, caller: &str) -> Option<CallerSlot> {
        let counter = {
            let mut map = self.shards[shard_of(caller)]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if map.len() >= MAX_CALLERS_PER_SHARD && !map.contains_key(caller) {
                map.retain(|_, c| c.load(Relaxed) > 0);
            }
            Arc::clone(map.entry(caller.to_string()).or_default())
        };
        let before = counter.fetch_add(1, Relaxed);
        if before >= self.limit {
            counter.fetch_sub(1, Relaxed);
            return None;
        }
        Some(CallerSlot(counter))
    }
}

fn shard_of(caller: &str) -> usize {
    caller.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn allows_the_limit_then_refuses_until_refilled() {
        let b = Bucket::new(6, Instant::now());
        for i in 0..6 {
            let q = b.take().unwrap();
            assert_eq!(q.remaining, 5 - i, "{q:?}");
        }
        let refused = b.take().unwrap_err();
        assert_eq!(refused.remaining, 0);
        assert_eq!(
            refused.retry_after_secs, 10,
            "one request per 10 s at 6 per minute"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(b.take().is_ok());
        assert!(b.take().is_err());
        tokio::time::advance(WINDOW).await;
        assert_eq!(b.take().unwrap().remaining, 5, "a quiet minute refills it");
    }

    #[tokio::test(start_paused = true)]
    async fn callers_have_their_own_buckets() {
        let p = PerCaller::new(2);
        assert!(p.take("a").is_ok());
        assert!(p.take("a").is_ok());
        assert!(p.take("a").is_err());
        assert!(p.take("b").is_ok(), "b is not a");
    }

    #[test]
    fn concurrency_slots_are_capped_and_released() {
        let c = CallerConcurrency::new(2);
        let a1 = c.try_acquire("a").unwrap();
        let _a2 = c.try_acquire("a").unwrap();
        assert!(c.try_acquire("a").is_none());
        assert!(c.try_acquire("b").is_some(), "per caller");
        drop(a1);
        assert!(c.try_acquire("a").is_some(), "released on drop");
    }
}
