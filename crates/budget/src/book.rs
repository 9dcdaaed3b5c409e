//! The book of budgets: which apply to a request, reservations against
//! them, and the spend of the current period, all in atomics (no lock on
//! the request path).

// foldhash: these maps are read on every request; SipHash costs more than
// the rest of the lookup.
use foldhash::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use arc_swap::ArcSwap;
use blastdoor_cluster::Tallies;
use blastdoor_store::{BudgetRecord, BudgetScope};
use tokio::sync::mpsc;

use crate::alert::{Alert, usd};
use crate::period::Period;

/// A budget and its spend in the current period.
#[derive(Debug)]
pub struct Budget {
    pub scope: BudgetScope,
    pub target: String,
    /// Micro-dollars per period.
    pub amount: i64,
    pub period: Period,
    pub hard: bool,
    /// Alert thresholds in percent, ascending; at most 32.
    pub alerts: Vec<u32>,
    period_start: AtomicI64,
    /// Where the current period ends: until then a request needs no
    /// calendar arithmetic to know its period.
    period_end: AtomicI64,
    /// Settled cost plus outstanding reservations.
    used: AtomicI64,
    /// Settled cost this period.
    settled: AtomicI64,
    /// Thresholds already alerted this period (bit i: `alerts[i]`).
    alerted: AtomicU32,
    /// Where alerts go besides the log (the webhook queue). Kept here so
    /// a reservation need not clone the sender: every clone and drop
    /// writes the channel's counters, which all proxy workers share.
    alert_tx: Option<mpsc::Sender<Alert>>,
}

impl Budget {
    /// `spent` is what the period has already cost (from the ledger).
    pub fn new(record: &BudgetRecord, spent: i64, now_ms: i64) -> Option<Budget> {
        let period = Period::parse(&record.period)?;
        let mut alerts = record.alerts.clone();
        alerts.sort_unstable();
        alerts.dedup();
        alerts.truncate(32);
        let budget = Budget {
            scope: record.scope,
            target: record.target.clone(),
            amount: record.amount_micros,
            period,
            hard: record.mode == "hard",
            alerts,
            period_start: AtomicI64::new(period.start(now_ms)),
            period_end: AtomicI64::new(period.end(now_ms)),
            used: AtomicI64::new(spent),
            settled: AtomicI64::new(spent),
            alerted: AtomicU32::new(0),
            alert_tx: None,
        };
        // Thresholds already behind us are not news.
        for (i, t) in budget.alerts.iter().enumerate() {
            if crossed(spent, budget.amount, *t) {
                budget.alerted.fetch_or(1 << i, Ordering::Relaxed);
            }
        }
        Some(budget)
    }

    /// Sends this budget's alerts to `tx` as well as to the log.
    pub fn alerting_to(mut self, tx: Option<mpsc::Sender<Alert>>) -> Budget {
        self.alert_tx = tx;
        self
    }

    fn matches(&self, record: &BudgetRecord) -> bool {
        self.amount == record.amount_micros
            && self.period.as_str() == record.period
            && self.hard == (record.mode == "hard")
            && self.alerts == sorted(&record.alerts)
    }

    /// Takes the cluster's figures (from Redis) as this node's.
    pub(crate) fn mirror(&self, used: i64, settled: i64) {
        self.used.store(used, Ordering::Release);
        self.settled.store(settled, Ordering::Release);
    }

    /// Marks thresholds the cluster has alerted on, so this node does not
    /// alert on them again from its own figures.
    pub(crate) fn mark_alerted(&self, thresholds: &[u32]) {
        for (i, t) in self.alerts.iter().enumerate() {
            if thresholds.contains(t) {
                self.alerted.fetch_or(1 << i, Ordering::AcqRel);
            }
        }
    }

    /// Settled spend in the current period.
    pub fn spent(&self) -> i64 {
        self.settled.load(Ordering::Relaxed)
    }

    /// Outstanding reservations.
    pub fn reserved(&self) -> i64 {
        self.used.load(Ordering::Relaxed) - self.spent()
    }

    pub fn remaining(&self) -> i64 {
        self.amount - self.spent()
    }

    pub fn period_start(&self) -> i64 {
        self.period_start.load(Ordering::Relaxed)
    }

    /// Starts a new period if `now` is past the current one: spend and
    /// alerts reset, reservations in flight carry over.
    pub(crate) fn roll(&self, now_ms: i64) {
        if now_ms < self.period_end.load(Ordering::Relaxed) {
            return;
        }
        let start = self.period.start(now_ms);
        let current = self.period_start.load(Ordering::Relaxed);
        if start > current
            && self
                .period_start
                .compare_exchange(current, start, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let old = self.settled.swap(0, Ordering::AcqRel);
            self.used.fetch_sub(old, Ordering::AcqRel);
            self.alerted.store(0, Ordering::Release);
            self.period_end
                .store(self.period.end(now_ms), Ordering::Relaxed);
        }
    }

    /// Reserves `estimate`; a hard budget refuses if it is spent or the
    /// reservation does not fit.
    fn try_reserve(&self, estimate: i64) -> bool {
        if !self.hard {
            self.used.fetch_add(estimate, Ordering::AcqRel);
            return true;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.amount && used.saturating_add(estimate) <= self.amount)
                    .then_some(used + estimate)
            })
            .is_ok()
    }

    fn release(&self, estimate: i64) {
        self.used.fetch_sub(estimate, Ordering::AcqRel);
    }

    /// Replaces a reservation by the real cost; returns the thresholds
    /// this settlement crossed.
    pub(crate) fn settle(&self, estimate: i64, actual: i64) -> Vec<u32> {
        self.used.fetch_add(actual - estimate, Ordering::AcqRel);
        let spent = self.settled.fetch_add(actual, Ordering::AcqRel) + actual;
        let mut crossed_now = Vec::new();
        for (i, t) in self.alerts.iter().enumerate() {
            let bit = 1 << i;
            if crossed(spent, self.amount, *t)
                && self.alerted.fetch_or(bit, Ordering::AcqRel) & bit == 0
            {
                crossed_now.push(*t);
            }
        }
        crossed_now
    }
}

fn crossed(spent: i64, amount: i64, percent: u32) -> bool {
    i128::from(spent) * 100 >= i128::from(amount) * i128::from(percent)
}

/// A hard budget refused a request.
#[derive(Debug, Clone)]
pub struct Exceeded {
    pub scope: BudgetScope,
    pub target: String,
    pub period: Period,
    pub amount: i64,
    pub spent: i64,
    pub reserved: i64,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let period = match self.period {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Total => "total",
        };
        write!(
            f,
            "the {period} budget of {} {} (${}) is spent: ${} spent, ${} reserved by requests in flight",
            self.scope.as_str(),
            self.target,
            usd(self.amount),
            usd(self.spent),
            usd(self.reserved)
        )
    }
}

/// Budgets by what they apply to.
#[derive(Debug, Default)]
struct Index {
    keys: HashMap<String, Arc<Budget>>,
    teams: HashMap<String, Arc<Budget>>,
    services: HashMap<String, Arc<Budget>>,
}

impl Index {
    fn map(&self, scope: BudgetScope) -> &HashMap<String, Arc<Budget>> {
        match scope {
            BudgetScope::Key => &self.keys,
            BudgetScope::Team => &self.teams,
            BudgetScope::Service => &self.services,
        }
    }

    fn map_mut(&mut self, scope: BudgetScope) -> &mut HashMap<String, Arc<Budget>> {
        match scope {
            BudgetScope::Key => &mut self.keys,
            BudgetScope::Team => &mut self.teams,
            BudgetScope::Service => &mut self.services,
        }
    }
}

/// Every budget this node enforces.
#[derive(Debug)]
pub struct Book {
    index: ArcSwap<Index>,
    alerts: Option<mpsc::Sender<Alert>>,
    /// The cluster's tallies, when budgets are shared through Redis.
    pub(crate) tallies: Option<Arc<Tallies>>,
}

impl Default for Book {
    fn default() -> Self {
        Book::new(None)
    }
}

impl Book {
    /// Alerts go to the log, and to `alerts` (for the webhook) if given.
    pub fn new(alerts: Option<mpsc::Sender<Alert>>) -> Book {
        Book {
            index: ArcSwap::from_pointee(Index::default()),
            alerts,
            tallies: None,
        }
    }

    /// Shares spend and reservations with the cluster through Redis.
    pub fn shared_through(mut self, tallies: Arc<Tallies>) -> Book {
        self.tallies = Some(tallies);
        self
    }

    /// The budgets that apply to a call of `service` by `key` of `team`.
    pub fn applicable(
        &self,
        key: Option<&str>,
        team: Option<&str>,
        service: &str,
    ) -> Vec<Arc<Budget>> {
        let index = self.index.load();
        if index.keys.is_empty() && index.teams.is_empty() && index.services.is_empty() {
            return Vec::new();
        }
        [
            key.and_then(|k| index.keys.get(k)),
            team.and_then(|t| index.teams.get(t)),
            index.services.get(service),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }

    /// Reserves `estimate` micro-dollars on every budget; all or none.
    pub fn reserve(
        &self,
        budgets: Vec<Arc<Budget>>,
        estimate: i64,
        now_ms: i64,
    ) -> Result<Reservation, Exceeded> {
        let estimate = estimate.max(0);
        for (i, b) in budgets.iter().enumerate() {
            b.roll(now_ms);
            if !b.try_reserve(estimate) {
                for held in &budgets[..i] {
                    held.release(estimate);
                }
                return Err(Exceeded {
                    scope: b.scope,
                    target: b.target.clone(),
                    period: b.period,
                    amount: b.amount,
                    spent: b.spent(),
                    reserved: b.reserved(),
                });
            }
        }
        Ok(Reservation {
            budgets,
            estimate,
            shared: None,
        })
    }

    /// Installs the budgets from the store. A budget whose target, period
    /// and amount are unchanged keeps its in-memory spend; a new or changed
    /// one starts from `spent` (the ledger's figure for its period).
    pub fn replace(&self, budgets: Vec<(BudgetRecord, i64)>, now_ms: i64) {
        let old = self.index.load_full();
        let mut index = Index::default();
        for (record, spent) in budgets {
            let kept = old
                .map(record.scope)
                .get(&record.target)
                .filter(|b| b.matches(&record));
            let budget = match kept {
                Some(b) => Arc::clone(b),
                None => match Budget::new(&record, spent, now_ms) {
                    Some(b) => Arc::new(b.alerting_to(self.alerts.clone())),
                    None => {
                        tracing::warn!(scope = record.scope.as_str(), target = %record.target, period = %record.period, "ignoring a budget with an unknown period");
                        continue;
                    }
                },
            };
            index
                .map_mut(record.scope)
                .insert(record.target.clone(), budget);
        }
        self.index.store(Arc::new(index));
    }

    /// Whether the book holds this budget exactly as recorded (then
    /// [`Book::replace`] keeps its in-memory spend).
    pub fn holds_unchanged(&self, record: &BudgetRecord) -> bool {
        self.index
            .load()
            .map(record.scope)
            .get(&record.target)
            .is_some_and(|b| b.matches(record))
    }

    /// Every budget, for the admin API and metrics.
    pub fn all(&self) -> Vec<Arc<Budget>> {
        let index = self.index.load();
        let mut all: Vec<Arc<Budget>> = [&index.keys, &index.teams, &index.services]
            .into_iter()
            .flat_map(|m| m.values().cloned())
            .collect();
        all.sort_by(|a, b| (a.scope, &a.target).cmp(&(b.scope, &b.target)));
        all
    }
}

fn sorted(alerts: &[u32]) -> Vec<u32> {
    let mut a = alerts.to_vec();
    a.sort_unstable();
    a.dedup();
    a.truncate(32);
    a
}

/// An estimate held on budgets while a request is in flight. Settle it
/// with the real cost; dropped unsettled, it is released.
#[derive(Debug)]
pub struct Reservation {
    pub(crate) budgets: Vec<Arc<Budget>>,
    pub(crate) estimate: i64,
    /// Held in the cluster's tallies rather than in this node's book.
    pub(crate) shared: Option<crate::shared::Held>,
}

impl Reservation {
    /// A request no budget applies to.
    pub fn none() -> Reservation {
        Reservation {
            budgets: Vec::new(),
            estimate: 0,
            shared: None,
        }
    }

    pub fn estimate(&self) -> i64 {
        self.estimate
    }

    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }

    /// Replaces the reservation by the real cost, raising alerts for
    /// thresholds it crossed.
    pub fn settle(mut self, actual: i64) {
        if let Some(held) = self.shared.take() {
            let budgets = std::mem::take(&mut self.budgets);
            held.settle(budgets, self.estimate, actual.max(0));
            return;
        }
        let budgets = std::mem::take(&mut self.budgets);
        for b in budgets {
            for threshold in b.settle(self.estimate, actual.max(0)) {
                raise(&b, threshold);
            }
        }
    }
}

/// Sends an alert for `b` crossing `threshold` to the log and the webhook
/// queue.
pub(crate) fn raise(b: &Budget, threshold: u32) {
    let alert = Alert {
        scope: b.scope,
        target: b.target.clone(),
        threshold,
        mode: if b.hard { "hard" } else { "soft" },
        period: b.period.as_str(),
        period_start: b.period_start(),
        spent_usd: usd(b.spent()),
        amount_usd: usd(b.amount),
    };
    tracing::warn!(scope = alert.scope.as_str(), target = %alert.target, threshold, spent_usd = %alert.spent_usd, amount_usd = %alert.amount_usd, mode = alert.mode, "budget alert");
    if let Some(tx) = &b.alert_tx
        && tx.try_send(alert).is_err()
    {
        tracing::warn!("budget alert queue full: webhook not sent");
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(held) = self.shared.take() {
            held.release(self.estimate);
            return;
        }
        for b in &self.budgets {
            b.release(self.estimate);
        }
    }
}
