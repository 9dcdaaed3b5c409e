//! A service's cost and units counters, by the caller's team (and, when
//! switched on, consumer).
//!
//! Teams are only known per request, so the counters are found at settle.
//! Each service keeps the handles it resolved in its own map, looked up
//! with borrowed strings: a request takes one read lock of its service's
//! map and allocates nothing; only a caller's first request builds the
//! label sets and goes to the registry's families (shared by all services).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

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
    /// team -> consumer -> handles (shared: a lookup copies no list).
    resolved: RwLock<HashMap<String, HashMap<String, Arc<Handles>>>>,
}

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
            resolved: RwLock::default(),
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
        let found = self
            .resolved
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(team)
            .and_then(|by_consumer| by_consumer.get(consumer))
            .cloned();
        let h = found.unwrap_or_else(|| self.handles(team, consumer));
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
        self.resolved
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(team.to_string())
            .or_default()
            .insert(consumer.to_string(), Arc::clone(&h));
        h
    }
}
