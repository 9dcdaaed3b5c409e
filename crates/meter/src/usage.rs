//! Usage: how many of each unit one response consumed.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub units: BTreeMap<String, u64>,
    /// The model the response names, for model price tables.
    pub model: Option<String>,
    /// Why usage could not be read (fully), if it could not: such usage is
    /// flagged, never silently zero.
    pub problem: Option<String>,
}

impl Usage {
    pub fn unreadable(why: &str) -> Usage {
        Usage {
            problem: Some(why.to_string()),
            ..Usage::default()
        }
    }

    /// Adds `n` of `unit` (saturating).
    pub fn add(&mut self, unit: &str, n: u64) {
        let slot = self.units.entry(unit.to_string()).or_insert(0);
        *slot = slot.saturating_add(n);
    }

    /// Sets `unit` to `n` (for cumulative counters in streams).
    pub fn set(&mut self, unit: &str, n: u64) {
        self.units.insert(unit.to_string(), n);
    }

    pub fn get(&self, unit: &str) -> u64 {
        self.units.get(unit).copied().unwrap_or(0)
    }
}
