//! What the dashboard's live view shows: per service, requests, server
//! errors and latency over the last hour (by minute) and the last day (by
//! quarter hour), on this node, in memory.
//!
//! Lock-free like the Prometheus metrics beside it: a slot holds one step
//! and is tagged with the step it holds; the first request of a new step
//! claims the slot and zeroes it. A request racing that claim at a step
//! boundary may be lost from the dashboard (never from metrics or the
//! ledger): these numbers are for eyes, not for bills.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Latency buckets: bucket `i` holds durations up to `FIRST_BUCKET_SECS *
/// 2^i`, the same bounds as the Prometheus histograms (50 µs to ~7 min).
pub const BUCKETS: usize = 24;
const FIRST_BUCKET_SECS: f64 = 0.000_05;

/// A window the dashboard can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// 60 steps of a minute.
    Hour,
    /// 96 steps of a quarter hour.
    Day,
}

impl Window {
    pub fn parse(s: &str) -> Option<Window> {
        match s {
            "1h" => Some(Window::Hour),
            "24h" => Some(Window::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
        }
    }

    pub fn step_secs(self) -> u64 {
        match self {
            Window::Hour => 60,
            Window::Day => 900,
        }
    }

    pub fn steps(self) -> usize {
        match self {
            Window::Hour => 60,
            Window::Day => 96,
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The step (unix seconds / step length) this slot holds; 0: none yet.
    step: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency: [AtomicU32; BUCKETS],
    overhead: [AtomicU32; BUCKETS],
}

impl Slot {
    fn record(&self, step: u64, error: bool, latency: usize, overhead: Option<usize>) {
        let held = self.step.load(Ordering::Acquire);
        if held != step
            && self
                .step
                .compare_exchange(held, step, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.requests.store(0, Ordering::Relaxed);
            self.errors.store(0, Ordering::Relaxed);
            for b in self.latency.iter().chain(&self.overhead) {
                b.store(0, Ordering::Relaxed);
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency[latency].fetch_add(1, Ordering::Relaxed);
        if let Some(o) = overhead {
            self.overhead[o].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn read(&self, step: u64) -> Step {
        let mut out = Step::default();
        if self.step.load(Ordering::Acquire) != step {
            return out;
        }
        out.requests = self.requests.load(Ordering::Relaxed);
        out.errors = self.errors.load(Ordering::Relaxed);
        for (o, b) in out.latency.iter_mut().zip(&self.latency) {
            *o = u64::from(b.load(Ordering::Relaxed));
        }
        for (o, b) in out.overhead.iter_mut().zip(&self.overhead) {
            *o = u64::from(b.load(Ordering::Relaxed));
        }
        out
    }
}

/// One step of one service (or a sum of several).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Step {
    /// Unix milliseconds at which the step starts.
    pub t: i64,
    pub requests: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
    pub latency: [u64; BUCKETS],
    pub overhead: [u64; BUCKETS],
}

impl Step {
    /// Adds another step's counts into this one.
    pub fn add(&mut self, other: &Step) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
        for (a, b) in self.overhead.iter_mut().zip(&other.overhead) {
            *a += b;
        }
    }

    /// The `q` quantile of latency in seconds (the upper bound of its
    /// bucket); None without requests.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.latency, q)
    }

    pub fn overhead_quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.overhead, q)
    }
}

fn quantile(buckets: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    // The smallest bucket holding at least q of the observations.
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(bucket_bound(i));
        }
    }
    Some(bucket_bound(BUCKETS - 1))
}

/// The upper bound of bucket `i`, in seconds.
pub fn bucket_bound(i: usize) -> f64 {
    FIRST_BUCKET_SECS * f64::from(1u32 << i.min(BUCKETS - 1))
}

fn bucket_of(secs: f64) -> usize {
    let mut i = 0;
    while i < BUCKETS - 1 && secs > bucket_bound(i) {
        i += 1;
    }
    i
}

/// One service's recent traffic; survives config reloads.
#[derive(Debug)]
pub struct Recent {
    minutes: Box<[Slot]>,
    quarters: Box<[Slot]>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            minutes: (0..Window::Hour.steps()).map(|_| Slot::default()).collect(),
            quarters: (0..Window::Day.steps()).map(|_| Slot::default()).collect(),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Recent {
    /// Records one finished request.
    pub fn record(&self, status: u16, total_secs: f64, overhead_secs: Option<f64>) {
        self.record_at(now_secs(), status, total_secs, overhead_secs);
    }

    fn record_at(&self, now: u64, status: u16, total_secs: f64, overhead_secs: Option<f64>) {
        let error = status >= 500;
        let latency = bucket_of(total_secs);
        let overhead = overhead_secs.map(bucket_of);
        for (slots, window) in [(&self.minutes, Window::Hour), (&self.quarters, Window::Day)] {
            let step = now / window.step_secs();
            slots[step as usize % slots.len()].record(step, error, latency, overhead);
        }
    }

    /// The window's steps, oldest first, ending with the current one.
    pub fn window(&self, window: Window) -> Vec<Step> {
        self.window_at(now_secs(), window)
    }

    fn window_at(&self, now: u64, window: Window) -> Vec<Step> {
        let slots = match window {
            Window::Hour => &self.minutes,
            Window::Day => &self.quarters,
        };
        let current = now / window.step_secs();
        let first = current + 1 - window.steps() as u64;
        (first..=current)
            .map(|step| {
                let mut s = slots[step as usize % slots.len()].read(step);
                s.t = i64::try_from(step * window.step_secs() * 1000).unwrap_or(i64::MAX);
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    #[test]
    fn steps_hold_their_own_minute_and_old_ones_are_forgotten() {
        let r = Recent::default();
        r.record_at(T0, 200, 0.001, Some(0.0001));
        r.record_at(T0 + 1, 503, 0.002, None);
        r.record_at(T0 + 60, 200, 0.001, None);
        let steps = r.window_at(T0 + 60, Window::Hour);
        assert_eq!(steps.len(), 60);
        let (prev, last) = (&steps[58], &steps[59]);
        assert_eq!((prev.requests, prev.errors), (2, 1));
        assert_eq!((last.requests, last.errors), (1, 0));
        assert_eq!(last.t, ((T0 + 60) / 60 * 60 * 1000) as i64);
        // An hour later the slot of T0's minute is reused: its two go, the
        // minute after it is still in the window.
        r.record_at(T0 + 3600, 200, 0.001, None);
        let steps = r.window_at(T0 + 3600, Window::Hour);
        assert_eq!(steps.iter().map(|s| s.requests).sum::<u64>(), 2);
        assert_eq!((steps[0].requests, steps[59].requests), (1, 1));
        // The day window still holds all four, in its quarter hours.
        let day = r.window_at(T0 + 3600, Window::Day);
        assert_eq!(day.iter().map(|s| s.requests).sum::<u64>(), 4);
    }

    #[test]
    fn quantiles_are_bucket_bounds() {
        let r = Recent::default();
        for _ in 0..98 {
            r.record_at(T0, 200, 0.000_04, Some(0.000_01));
        }
        r.record_at(T0, 200, 0.5, Some(0.000_01));
        r.record_at(T0, 200, 0.5, Some(0.000_01));
        let step = r.window_at(T0, Window::Hour).pop().unwrap_or_default();
        assert_eq!(step.latency_quantile(0.5), Some(0.000_05));
        // 0.5 s falls in the bucket up to 50 µs * 2^14 = 0.8192 s.
        assert_eq!(step.latency_quantile(0.99), Some(0.8192));
        assert_eq!(step.overhead_quantile(0.99), Some(0.000_05));
        assert_eq!(Step::default().latency_quantile(0.5), None);
    }

    #[test]
    fn steps_add_up() {
        let mut a = Step {
            requests: 2,
            errors: 1,
            ..Step::default()
        };
        a.latency[3] = 2;
        let mut b = a.clone();
        b.add(&a);
        assert_eq!((b.requests, b.errors, b.latency[3]), (4, 2, 4));
    }
}
