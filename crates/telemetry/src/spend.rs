//! A service's cost and units counters, by the caller's team (and, when
//! switched on, consumer).
//!
//! Teams are only known per request, so the counters are found at settle.
//! Each service keeps the handles it resolved in its own map, looked up
//! with borrowed strings: a request allocates nothing and writes nothing
//! but the counters (no lock count or reference count, which every proxy
//! worker would write); only a caller's first request builds the label
//! sets, goes to the registry's families (shared by all services) and
//! replaces the map.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arc_swap::ArcSwap;
use foldhash::HashMap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Who spent: the caller's team ("" without one) and, only when
/// `metrics_consumer_label` is on, the consumer (else "").
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CostLabels {
    service: String,
    team: String,
    consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UnitLabels {
    service: String,
    unit: String,
    team: String,
    consumer: String,
}

pub(crate) type CostFamily = Family<CostLabels, Counter<f64, AtomicU64>>;
pub(crate) type UnitFamily = Family<UnitLabels, Counter>;

/// The counters of one (team, consumer).
#[derive(Debug)]
struct Handles {
    cost: Counter<f64, AtomicU64>,
    /// In the order of [`Spend::units`].
    units: Vec<Counter>,
}

#[derive(Debug)]
pub struct Spend {
    service: String,
    /// The units the service's meter can report: the only ones counted.
    units: Vec<String>,
    cost: CostFamily,
    by_unit: UnitFamily,
    /// team -> consumer -> handles. Read through arc-swap, whose loads
    /// use a slot of the reading thread; replaced whole (a team's
    /// consumers and the list of teams copied) when a caller is new.
    resolved: ArcSwap<Resolved>,
}

type Resolved = HashMap<String, Arc<HashMap<String, Arc<Handles>>>>;

impl Spend {
    pub(crate) fn new(
        service: &str,
        units: &[String],
        cost: CostFamily,
        by_unit: UnitFamily,
    ) -> Spend {
        let spend = Spend {
            service: service.to_string(),
            units: units.to_vec(),
            cost,
            by_unit,
            resolved: ArcSwap::default(),
        };
        // Series for calls without a team exist from the start, at 0, so
        // every service's cost and units show before its first priced call.
        spend.handles("", "");
        spend
    }

    /// Counts one response's cost (US dollars) and units for its caller.
    pub fn add<'a>(
        &self,
        team: &str,
        consumer: &str,
        usd: f64,
        units: impl Iterator<Item = (&'a String, &'a u64)>,
    ) {
        let resolved = self.resolved.load();
        match resolved.get(team).and_then(|by| by.get(consumer)) {
            Some(h) => self.count(h, usd, units),
            None => {
                drop(resolved);
                self.count(&self.handles(team, consumer), usd, units);
            }
        }
    }

    fn count<'a>(&self, h: &Handles, usd: f64, units: impl Iterator<Item = (&'a String, &'a u64)>) {
        h.cost.inc_by(usd);
        for (unit, n) in units {
            if let Some(i) = self.units.iter().position(|u| u == unit) {
                h.units[i].inc_by(*n);
            }
        }
    }

    /// Resolves (creating) the counters of a caller and keeps them.
    fn handles(&self, team: &str, consumer: &str) -> Arc<Handles> {
        // One statement per family lookup: a family's read guard lives to
        // the end of its statement.
        let cost = self
            .cost
            .get_or_create(&CostLabels {
                service: self.service.clone(),
                team: team.to_string(),
                consumer: consumer.to_string(),
            })
            .clone();
        let units = self
            .units
            .iter()
            .map(|unit| {
                self.by_unit
                    .get_or_create(&UnitLabels {
                        service: self.service.clone(),
                        unit: unit.clone(),
                        team: team.to_string(),
                        consumer: consumer.to_string(),
                    })
                    .clone()
            })
            .collect();
        let h = Arc::new(Handles { cost, units });
        // Two threads adding callers at once: rcu retries the loser, so
        // neither addition is lost. A caller added twice keeps the later
        // handles, which count into the same series.
        self.resolved.rcu(|resolved| {
            let mut resolved = Resolved::clone(resolved);
            let mut by_consumer = resolved
                .get(team)
                .map_or_else(HashMap::default, |by| HashMap::clone(by));
            by_consumer.insert(consumer.to_string(), Arc::clone(&h));
            resolved.insert(team.to_string(), Arc::new(by_consumer));
            resolved
        });
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost_of(family: &CostFamily, team: &str, consumer: &str) -> f64 {
        family
            .get_or_create(&CostLabels {
                service: "svc".into(),
                team: team.into(),
                consumer: consumer.into(),
            })
            .get()
    }

    fn units_of(family: &UnitFamily, team: &str, consumer: &str) -> u64 {
        family
            .get_or_create(&UnitLabels {
                service: "svc".into(),
                unit: "image".into(),
                team: team.into(),
                consumer: consumer.into(),
            })
            .get()
    }

    /// Callers first seen on several threads at once all keep their
    /// counts: no handle added to the map while another thread adds one
    /// is lost.
    #[test]
    fn concurrent_new_callers_all_count() {
        let (cost, by_unit) = (CostFamily::default(), UnitFamily::default());
        let spend = Spend::new("svc", &["image".to_string()], cost.clone(), by_unit.clone());
        let units: std::collections::BTreeMap<String, u64> =
            [("image".to_string(), 2), ("other".to_string(), 5)].into();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for round in 0..50 {
                        for team in ["a", "b", "c"] {
                            let consumer = format!("k{}", round % 5);
                            spend.add(team, &consumer, 0.25, units.iter());
                        }
                    }
                });
            }
        });
        for team in ["a", "b", "c"] {
            for k in 0..5 {
                let consumer = format!("k{k}");
                // 4 threads x 10 rounds per consumer.
                assert_eq!(
                    cost_of(&cost, team, &consumer),
                    40.0 * 0.25,
                    "{team}/{consumer}"
                );
                assert_eq!(units_of(&by_unit, team, &consumer), 80, "{team}/{consumer}");
            }
        }
        assert_eq!(
            cost_of(&cost, "", ""),
            0.0,
            "the series without a team exists"
        );
        let resolved = spend.resolved.load();
        assert_eq!(resolved.len(), 4, "teams a, b, c and none");
        assert_eq!(resolved["a"].len(), 5);
    }
}
