//! Requests and units per minute, per service and per caller, enforced in
//! memory on this node with GCRA: one atomic timestamp per bucket, no lock
//! on the check itself. Per-caller buckets live in a sharded map read
//! through arc-swap: finding a caller's bucket writes nothing the other
//! proxy workers share; only a caller's first call copies its shard.
//!
//! A request takes one from a requests bucket at admission. Units (tokens,
//! images) are known only once the response is read, so a units bucket is
//! checked at admission (at least one unit left) and charged at settle; it
//! may go into debt by what requests in flight used, and then refuses until
//! the debt is paid down.

// foldhash: these maps are read on every request; SipHash costs more than
// the rest of the lookup.
use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);
const SHARDS: usize = 16;
/// Callers tracked per service and shard before idle ones are dropped.
const MAX_CALLERS_PER_SHARD: usize = 8192;
/// How long a caller's bucket is kept after it was made, idle or not: a
/// bucket just made (and not yet taken from) is full, and must not be
/// dropped by another caller's eviction before its first call uses it.
const KEPT_AT_LEAST: Duration = Duration::from_secs(1);

/// The outcome of a check, for the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds to wait before retrying (when refused).
    pub retry_after_secs: u64,
}

/// A GCRA bucket: `limit` requests (or units) per minute, bursting up to
/// `limit`.
#[derive(Debug)]
pub struct Bucket {
    limit: u64,
    interval_ns: u64,
    epoch: Instant,
    /// When the bucket was made, ns since `epoch`.
    made: u64,
    /// Theoretical arrival time of the next request, ns since `epoch`.
    tat: AtomicU64,
}

impl Bucket {
    pub fn new(limit: u64, epoch: Instant) -> Bucket {
        Bucket::made_at(limit, epoch, epoch)
    }

    /// A bucket made at `now`, full since `epoch`: a request judged as of
    /// any time finds it full.
    fn made_at(limit: u64, epoch: Instant, now: Instant) -> Bucket {
        let window = u64::try_from(WINDOW.as_nanos()).unwrap_or(u64::MAX);
        Bucket {
            limit,
            interval_ns: (window / limit.max(1)).max(1),
            epoch,
            made: ns_since(epoch, now),
            tat: AtomicU64::new(0),
        }
    }

    /// `at` comes from the caller: one clock read serves all of a
    /// request's buckets.
    fn ns_at(&self, at: Instant) -> u64 {
        ns_since(self.epoch, at)
    }

    fn capacity(&self) -> u64 {
        self.interval_ns.saturating_mul(self.limit)
    }

    fn quota(&self, backlog: u64, retry: u64) -> Quota {
        Quota {
            limit: self.limit,
            remaining: self.capacity().saturating_sub(backlog) / self.interval_ns,
            reset_secs: backlog.div_ceil(1_000_000_000),
            retry_after_secs: retry.div_ceil(1_000_000_000),
        }
    }

    /// Takes one request from the bucket, or says how long to wait.
    pub fn take(&self, now: Instant) -> Result<Quota, Quota> {
        let now = self.ns_at(now);
        let capacity = self.capacity();
        let mut tat = self.tat.load(Relaxed);
        loop {
            let next = tat.max(now).saturating_add(self.interval_ns);
            let backlog = next - now;
            if backlog > capacity {
                let current = tat.max(now) - now;
                return Err(self.quota(current, backlog - capacity));
            }
            match self.tat.compare_exchange_weak(tat, next, Relaxed, Relaxed) {
                Ok(_) => return Ok(self.quota(backlog, 0)),
                Err(seen) => tat = seen,
            }
        }
    }

    /// Whether at least one unit is left, taking nothing: units are
    /// charged once the response says how many were used.
    pub fn check(&self, now: Instant) -> Result<Quota, Quota> {
        let now = self.ns_at(now);
        let backlog = self.tat.load(Relaxed).saturating_sub(now);
        let needed = backlog.saturating_add(self.interval_ns);
        if needed > self.capacity() {
            return Err(self.quota(backlog, needed - self.capacity()));
        }
        Ok(self.quota(backlog, 0))
    }

    /// Charges `n` units; past the limit the bucket goes into debt.
    pub fn charge(&self, n: u64, now: Instant) {
        if n == 0 {
            return;
        }
        let now = self.ns_at(now);
        let cost = self.interval_ns.saturating_mul(n);
        let _ = self.tat.fetch_update(Relaxed, Relaxed, |tat| {
            Some(tat.max(now).saturating_add(cost))
        });
    }

    /// Full, and older than [`KEPT_AT_LEAST`]: dropping it loses nothing.
    fn idle(&self, now: Instant) -> bool {
        let now = self.ns_at(now);
        let kept_for = u64::try_from(KEPT_AT_LEAST.as_nanos()).unwrap_or(u64::MAX);
        let kept_until = self.made.saturating_add(kept_for);
        self.tat.load(Relaxed) <= now && kept_until <= now
    }
}

fn ns_since(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// One shard of a [`PerCaller`]: replaced whole when a caller is added.
type CallerMap = HashMap<String, Arc<Bucket>>;

/// Buckets per caller for one service.
#[derive(Debug)]
pub struct PerCaller {
    limit: u64,
    epoch: Instant,
    /// Callers kept per shard before idle ones are dropped.
    max_per_shard: usize,
    shards: [ArcSwap<CallerMap>; SHARDS],
}

impl PerCaller {
    pub fn new(limit: u64) -> PerCaller {
        PerCaller::keeping(limit, MAX_CALLERS_PER_SHARD)
    }

    fn keeping(limit: u64, max_per_shard: usize) -> PerCaller {
        PerCaller {
            limit,
            epoch: Instant::now(),
            max_per_shard,
            shards: std::array::from_fn(|_| ArcSwap::default()),
        }
    }

    /// Runs `f` on the caller's bucket (made on first use). The shard is
    /// loaded through arc-swap, whose loads use a slot of the reading
    /// thread: no lock word or reference count that every proxy worker
    /// writes, only the bucket itself.
    pub fn with<R>(&self, caller: &str, f: impl FnOnce(&Bucket) -> R) -> R {
        let shard = &self.shards[shard_of(caller)];
        if let Some(b) = shard.load().get(caller) {
            return f(b);
        }
        f(&self.add(shard, caller))
    }

    /// Adds the caller's bucket to its shard (dropping idle callers when
    /// the shard is full) and returns it. Two threads adding at once: rcu
    /// retries the loser on the winner's map, so both use one bucket.
    fn add(&self, shard: &ArcSwap<CallerMap>, caller: &str) -> Arc<Bucket> {
        let now = Instant::now();
        let mut added = None;
        shard.rcu(|map| {
            let mut map = CallerMap::clone(map);
            if map.len() >= self.max_per_shard && !map.contains_key(caller) {
                map.retain(|_, b| !b.idle(now));
            }
            let bucket = map
                .entry(caller.to_string())
                .or_insert_with(|| Arc::new(Bucket::made_at(self.limit, self.epoch, now)));
            added = Some(Arc::clone(bucket));
            map
        });
        // rcu runs its closure at least once.
        added.unwrap_or_else(|| Arc::new(Bucket::made_at(self.limit, self.epoch, now)))
    }

    pub fn take(&self, caller: &str, now: Instant) -> Result<Quota, Quota> {
        self.with(caller, |b| b.take(now))
    }
}

/// A units-per-minute limit on one unit, for the service or per caller.
#[derive(Debug)]
pub struct UnitLimit {
    pub unit: String,
    /// The policy's name in the `RateLimit` headers.
    pub policy: String,
    buckets: UnitBuckets,
}

#[derive(Debug)]
enum UnitBuckets {
    Service(Bucket),
    PerCaller(Box<PerCaller>),
}

impl UnitLimit {
    pub fn service(unit: &str, limit: u64) -> UnitLimit {
        UnitLimit {
            unit: unit.to_string(),
            policy: format!("service-{unit}"),
            buckets: UnitBuckets::Service(Bucket::new(limit, Instant::now())),
        }
    }

    pub fn per_caller(unit: &str, limit: u64) -> UnitLimit {
        UnitLimit {
            unit: unit.to_string(),
            policy: format!("caller-{unit}"),
            buckets: UnitBuckets::PerCaller(Box::new(PerCaller::new(limit))),
        }
    }

    pub fn per_caller_scope(&self) -> bool {
        matches!(self.buckets, UnitBuckets::PerCaller(_))
    }

    pub fn limit(&self) -> u64 {
        match &self.buckets {
            UnitBuckets::Service(b) => b.limit,
            UnitBuckets::PerCaller(p) => p.limit,
        }
    }

    /// Runs `f` on the bucket that applies to this caller; None for a
    /// per-caller limit on an anonymous call.
    fn with_bucket<R>(&self, caller: Option<&str>, f: impl FnOnce(&Bucket) -> R) -> Option<R> {
        match (&self.buckets, caller) {
            (UnitBuckets::Service(b), _) => Some(f(b)),
            (UnitBuckets::PerCaller(p), Some(c)) => Some(p.with(c, f)),
            (UnitBuckets::PerCaller(_), None) => None,
        }
    }

    /// At admission: is at least one unit left?
    pub fn check(&self, caller: Option<&str>, now: Instant) -> Option<Result<Quota, Quota>> {
        self.with_bucket(caller, |b| b.check(now))
    }

    /// At settle: charges what the response used.
    pub fn charge(&self, caller: Option<&str>, n: u64, now: Instant) {
        self.with_bucket(caller, |b| b.charge(n, now));
    }
}

/// Requests in flight per caller, under a cap. A slot is released when
/// its [`CallerSlot`] drops (when the request settles).
#[derive(Debug)]
pub struct CallerConcurrency {
    limit: usize,
    shards: [RwLock<HashMap<String, Arc<AtomicUsize>>>; SHARDS],
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
            shards: std::array::from_fn(|_| RwLock::new(HashMap::default())),
        }
    }

    /// A slot for `caller`, or None at the cap.
    pub fn try_acquire(&self, caller: &str) -> Option<CallerSlot> {
        let shard = &self.shards[shard_of(caller)];
        let known = shard
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(caller)
            .map(Arc::clone);
        let counter = known.unwrap_or_else(|| {
            let mut map = shard.write().unwrap_or_else(|p| p.into_inner());
            if map.len() >= MAX_CALLERS_PER_SHARD && !map.contains_key(caller) {
                map.retain(|_, c| c.load(Relaxed) > 0);
            }
            Arc::clone(map.entry(caller.to_string()).or_default())
        });
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
            let q = b.take(Instant::now()).unwrap();
            assert_eq!(q.remaining, 5 - i, "{q:?}");
        }
        let refused = b.take(Instant::now()).unwrap_err();
        assert_eq!(refused.remaining, 0);
        assert_eq!(
            refused.retry_after_secs, 10,
            "one request per 10 s at 6 per minute"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(b.take(Instant::now()).is_ok());
        assert!(b.take(Instant::now()).is_err());
        tokio::time::advance(WINDOW).await;
        assert_eq!(
            b.take(Instant::now()).unwrap().remaining,
            5,
            "a quiet minute refills it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn units_are_checked_before_and_charged_after() {
        let l = UnitLimit::service("output_tokens", 600);
        assert_eq!(
            l.check(None, Instant::now()).unwrap().unwrap().remaining,
            600
        );
        l.charge(None, 500, Instant::now());
        assert_eq!(
            l.check(None, Instant::now()).unwrap().unwrap().remaining,
            100
        );
        // A response may use more than is left: the bucket goes into debt
        // and refuses until the debt is paid down (10 units per second).
        l.charge(None, 400, Instant::now());
        let refused = l.check(None, Instant::now()).unwrap().unwrap_err();
        assert_eq!(refused.remaining, 0);
        assert_eq!(
            refused.retry_after_secs, 31,
            "300 units of debt + 1 unit at 10/s"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            l.check(None, Instant::now()).unwrap().is_err(),
            "one unit short"
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(l.check(None, Instant::now()).unwrap().unwrap().remaining, 1);
        tokio::time::advance(WINDOW).await;
        assert_eq!(
            l.check(None, Instant::now()).unwrap().unwrap().remaining,
            600,
            "refilled, not beyond"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn per_caller_units_are_per_caller() {
        let l = UnitLimit::per_caller("image", 10);
        assert!(
            l.check(None, Instant::now()).is_none(),
            "anonymous calls have no caller bucket"
        );
        l.charge(Some("a"), 10, Instant::now());
        assert!(l.check(Some("a"), Instant::now()).unwrap().is_err());
        assert_eq!(
            l.check(Some("b"), Instant::now())
                .unwrap()
                .unwrap()
                .remaining,
            10
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(
            l.check(Some("a"), Instant::now())
                .unwrap()
                .unwrap()
                .remaining,
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn callers_have_their_own_buckets() {
        let p = PerCaller::new(2);
        assert!(p.take("a", Instant::now()).is_ok());
        assert!(p.take("a", Instant::now()).is_ok());
        assert!(p.take("a", Instant::now()).is_err());
        assert!(p.take("b", Instant::now()).is_ok(), "b is not a");
    }

    /// A request is judged as of its arrival, which may be before its
    /// caller's bucket was made: the bucket is full then too.
    #[tokio::test(start_paused = true)]
    async fn a_new_callers_bucket_is_full_as_of_the_requests_arrival() {
        let p = PerCaller::new(6);
        let arrived = Instant::now();
        tokio::time::advance(Duration::from_secs(5)).await;
        let q = p.take("a", arrived).unwrap();
        assert_eq!((q.remaining, q.reset_secs), (5, 10));
    }

    /// Threads making the first calls of the same new callers at once
    /// share one bucket per caller: no call is counted in a bucket that
    /// another thread's addition replaced.
    #[test]
    fn concurrent_first_calls_share_one_bucket() {
        let p = PerCaller::new(3);
        let callers: Vec<String> = (0..60).map(|i| format!("caller-{i}")).collect();
        let admitted: Vec<std::sync::atomic::AtomicU64> =
            callers.iter().map(|_| Default::default()).collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2 {
                        for (c, n) in callers.iter().zip(&admitted) {
                            if p.take(c, Instant::now()).is_ok() {
                                n.fetch_add(1, Relaxed);
                            }
                        }
                    }
                });
            }
        });
        for (c, n) in callers.iter().zip(&admitted) {
            assert_eq!(n.load(Relaxed), 3, "{c}: 8 calls at 3 per minute");
        }
        let kept: usize = p.shards.iter().map(|s| s.load().len()).sum();
        assert_eq!(kept, callers.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_shard_drops_idle_callers_and_keeps_busy_ones() {
        const MAX: usize = 8;
        let p = PerCaller::keeping(3, MAX);
        let shard0: Vec<String> = (0..)
            .map(|i| format!("c{i}"))
            .filter(|c| shard_of(c) == 0)
            .take(MAX + 1)
            .collect();
        let (filler, last) = shard0.split_at(MAX);
        for c in filler {
            assert!(p.take(c, Instant::now()).is_ok());
        }
        // Each bucket owes 20 s (one call at 3 per minute): none is idle.
        assert!(p.take(&last[0], Instant::now()).is_ok());
        assert_eq!(p.shards[0].load().len(), MAX + 1);
        tokio::time::advance(Duration::from_secs(30)).await;
        // The first filler is busy again; the rest have been full for 10 s.
        assert!(p.take(&filler[0], Instant::now()).is_ok());
        let newcomer = (0..)
            .map(|i| format!("n{i}"))
            .find(|c| shard_of(c) == 0)
            .unwrap_or_default();
        assert!(p.take(&newcomer, Instant::now()).is_ok());
        let kept = p.shards[0].load();
        assert!(kept.contains_key(&filler[0]), "busy callers stay");
        assert!(kept.contains_key(&newcomer));
        assert!(!kept.contains_key(&filler[1]), "idle callers make room");
        assert_eq!(kept.len(), 2);
        drop(kept);
        // Callers just added are kept, although their buckets are full.
        let more: Vec<String> = (0..)
            .map(|i| format!("m{i}"))
            .filter(|c| shard_of(c) == 0)
            .take(MAX)
            .collect();
        for c in &more {
            p.with(c, |_| ());
        }
        assert_eq!(p.shards[0].load().len(), MAX + 2);
        tokio::time::advance(KEPT_AT_LEAST).await;
        // A dropped caller starts again with a full bucket.
        assert_eq!(p.take(&filler[1], Instant::now()).unwrap().remaining, 2);
        let kept = p.shards[0].load();
        assert_eq!(kept.len(), 3, "the fresh ones are idle now");
        assert!(kept.contains_key(&filler[0]) && kept.contains_key(&newcomer));
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
