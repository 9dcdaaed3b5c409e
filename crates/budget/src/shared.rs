//! Budgets shared by the cluster: reservations and settlements go to the
//! tallies in Redis, and this node's book mirrors what the cluster says.
//! If Redis fails, the node falls back to its own book for that request.

use std::sync::Arc;

use blastdoor_cluster::{Tallies, TallyKey, TallyState};

use crate::book::{Budget, Exceeded, Reservation, raise};
use crate::{Book, Period};

/// A day beyond the period, so a tally outlives clock skew and stragglers.
const MARGIN_MS: u64 = 86_400_000;

/// A reservation held in the cluster's tallies.
#[derive(Debug)]
pub(crate) struct Held {
    tallies: Arc<Tallies>,
    keys: Vec<TallyKey>,
}

impl Book {
    /// Reserves `estimate` on every budget, in the cluster's tallies when
    /// budgets are shared (falling back to this node's book if Redis
    /// fails), else in this node's book.
    pub async fn reserve_shared(
        &self,
        budgets: Vec<Arc<Budget>>,
        estimate: i64,
        now_ms: i64,
    ) -> Result<Reservation, Exceeded> {
        let Some(tallies) = &self.tallies else {
            return self.reserve(budgets, estimate, now_ms);
        };
        let estimate = estimate.max(0);
        let keys: Vec<TallyKey> = budgets
            .iter()
            .map(|b| {
                b.roll(now_ms);
                tally_key(tallies, b)
            })
            .collect();
        match tallies.reserve(&keys, estimate).await {
            Ok(Ok(states)) => {
                for (b, s) in budgets.iter().zip(&states) {
                    b.mirror(s.used, s.settled);
                }
                Ok(Reservation {
                    budgets,
                    estimate,
                    shared: Some(Held {
                        tallies: Arc::clone(tallies),
                        keys,
                    }),
                })
            }
            Ok(Err((i, s))) => {
                let b = budgets.get(i).unwrap_or(&budgets[0]);
                b.mirror(s.used, s.settled);
                Err(Exceeded {
                    scope: b.scope,
                    target: b.target.clone(),
                    period: b.period,
                    amount: b.amount,
                    spent: s.settled,
                    reserved: s.used - s.settled,
                })
            }
            Err(_) => self.reserve(budgets, estimate, now_ms),
        }
    }
}

fn tally_key(tallies: &Tallies, b: &Budget) -> TallyKey {
    let ttl_ms = match b.period {
        Period::Total => None,
        Period::Day => Some(86_400_000 + MARGIN_MS),
        Period::Week => Some(7 * 86_400_000 + MARGIN_MS),
        Period::Month => Some(31 * 86_400_000 + MARGIN_MS),
    };
    TallyKey {
        key: tallies.key(
            b.scope.as_str(),
            &b.target,
            b.period.as_str(),
            b.period_start(),
        ),
        amount: b.amount,
        hard: b.hard,
        floor: b.spent(),
        ttl_ms,
        alerts: b.alerts.clone(),
    }
}

impl Held {
    /// Replaces the reservation by the real cost in the cluster, off the
    /// request path; alerts the cluster has not raised yet are raised here.
    pub(crate) fn settle(self, budgets: Vec<Arc<Budget>>, estimate: i64, actual: i64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            settle_here(&budgets, actual);
            return;
        };
        runtime.spawn(async move {
            match self.tallies.settle(&self.keys, estimate, actual).await {
                Ok(states) => {
                    for (b, (TallyState { used, settled }, crossed)) in budgets.iter().zip(states) {
                        b.mirror(used, settled);
                        b.mark_alerted(&crossed);
                        for t in crossed {
                            raise(b, t);
                        }
                    }
                }
                // The cluster keeps the reservation until the period ends
                // (erring on refusing); this node counts the cost.
                Err(_) => settle_here(&budgets, actual),
            }
        });
    }

    /// A request that never settled: its reservation is returned.
    pub(crate) fn release(self, estimate: i64) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = self.tallies.settle(&self.keys, estimate, 0).await;
            });
        }
    }
}

/// Counts a cost on this node's book alone (Redis failed).
fn settle_here(budgets: &[Arc<Budget>], actual: i64) {
    for b in budgets {
        for t in b.settle(0, actual) {
            raise(b, t);
        }
    }
}
