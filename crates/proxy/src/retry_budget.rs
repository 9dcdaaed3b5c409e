//! A retry budget: retries may add at most a fixed share of traffic on top
//! of a small floor per second, so a struggling upstream is not buried
//! under retries of its own failures.
//!
//! Each request deposits `ratio` of a token; a retry withdraws one whole
//! token. The floor refills `min_per_second` tokens each second. The
//! balance is capped (ten seconds of floor, at least 100 tokens), so a long
//! quiet spell cannot bank a burst of retries for the next outage.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use tokio::time::Instant;

/// Fixed-point scale: one token is 1000 units.
const UNIT: i64 = 1000;

#[derive(Debug)]
pub struct RetryBudget {
    ratio_units: i64,
    floor_units_per_sec: i64,
    cap_units: i64,
    balance: AtomicI64,
    epoch: Instant,
    last_refill_ms: AtomicU64,
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_second: u32) -> RetryBudget {
        let floor = i64::from(min_per_second) * UNIT;
        // ratio is validated to 0..=1 by the config.
        let ratio_units = (ratio * UNIT as f64) as i64;
        let cap = (floor * 10).max(UNIT * 100);
        RetryBudget {
            ratio_units,
            floor_units_per_sec: floor,
            cap_units: cap,
            balance: AtomicI64::new(floor),
            epoch: Instant::now(),
            last_refill_ms: AtomicU64::new(0),
        }
    }

    /// Called once per request (not per retry).
    pub fn deposit(&self) {
        self.add(self.ratio_units);
    }

    fn add(&self, units: i64) {
        let _ = self
            .balance
            .fetch_update(Relaxed, Relaxed, |b| Some((b + units).min(self.cap_units)));
    }

    fn refill(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_refill_ms.load(Relaxed);
        let elapsed = now.saturating_sub(last);
        // Only the caller that wins the swap adds the refill.
        if elapsed >= 100
            && self
                .last_refill_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            let units = self
                .floor_units_per_sec
                .saturating_mul(i64::try_from(elapsed).unwrap_or(i64::MAX))
                / 1000;
            self.add(units);
        }
    }

    /// Takes a token for one retry; false if the budget is spent.
    pub fn try_withdraw(&self) -> bool {
        self.refill();
        self.balance
            .fetch_update(Relaxed, Relaxed, |b| (b >= UNIT).then_some(b - UNIT))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn ratio_limits_retries_without_floor() {
        let b = RetryBudget::new(0.2, 0);
        for _ in 0..100 {
            b.deposit();
        }
        let granted = (0..100).filter(|_| b.try_withdraw()).count();
        assert_eq!(granted, 20, "20% of 100 requests");
    }

    #[tokio::test(start_paused = true)]
    async fn floor_refills_over_time() {
        let b = RetryBudget::new(0.0, 5);
        let first = (0..100).filter(|_| b.try_withdraw()).count();
        assert_eq!(first, 5, "starts with one second of floor");
        assert!(!b.try_withdraw());
        tokio::time::advance(Duration::from_secs(1)).await;
        let later = (0..100).filter(|_| b.try_withdraw()).count();
        assert_eq!(later, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn balance_is_capped() {
        let b = RetryBudget::new(1.0, 0);
        for _ in 0..1000 {
            b.deposit();
        }
        let granted = (0..1000).filter(|_| b.try_withdraw()).count();
        assert_eq!(granted, 100);
    }
}
