//! What usage costs: per-request price plus units x unit prices, with a
//! per-model table for model services. Anything that cannot be priced is
//! reported, never counted as free.

use std::collections::HashMap;

use blastdoor_types::money::pico_to_money;
use blastdoor_types::{Money, Price};

use crate::Usage;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pricing {
    pub per_request: Money,
    /// Prices of units by name, for every model.
    pub units: HashMap<String, Price>,
    /// Prices of units by model (the request's or response's `model`).
    pub models: HashMap<String, HashMap<String, Price>>,
    /// What admission reserves against budgets before the real cost is
    /// known; None: estimated from the request (see the budget crate).
    pub reserve: Option<Money>,
}

/// The cost of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Priced {
    pub cost: Money,
    /// Why (part of) the usage has no price: unknown model, unit without a
    /// price, usage that could not be read. Empty when fully priced.
    pub unpriced: Vec<String>,
}

impl Pricing {
    pub fn is_free(&self) -> bool {
        self.per_request == Money::ZERO && self.units.is_empty() && self.models.is_empty()
    }

    /// Prices `usage`. Model prices win over service-wide unit prices.
    pub fn price(&self, usage: &Usage) -> Priced {
        let mut unpriced = Vec::new();
        if let Some(problem) = &usage.problem {
            unpriced.push(format!("usage unreadable: {problem}"));
        }
        let model_prices = match (&usage.model, self.models.is_empty()) {
            (_, true) => None,
            (Some(m), false) => {
                let prices = self.models.get(m);
                if prices.is_none() {
                    unpriced.push(format!("model {m:?} has no price"));
                }
                prices
            }
            (None, false) => {
                unpriced.push("the response names no model".to_string());
                None
            }
        };
        let mut pico: u128 = self.per_request.micros().into();
        pico = pico.saturating_mul(1_000_000);
        for (unit, &count) in usage.units.iter().filter(|(_, c)| **c > 0) {
            match model_prices
                .and_then(|p| p.get(unit))
                .or_else(|| self.units.get(unit))
            {
                Some(price) => pico = pico.saturating_add(price.pico_for(count)),
                None if model_prices.is_none() && !self.models.is_empty() => {} // already flagged: unknown model
                None => unpriced.push(format!("unit {unit:?} has no price")),
            }
        }
        Priced {
            cost: pico_to_money(pico),
            unpriced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(model: Option<&str>, units: &[(&str, u64)]) -> Usage {
        let mut u = Usage {
            model: model.map(str::to_string),
            ..Usage::default()
        };
        for (k, v) in units {
            u.set(k, *v);
        }
        u
    }

    fn model_pricing() -> Pricing {
        let mut table = HashMap::new();
        table.insert("input_tokens".to_string(), Price::parse("0.15/1M").unwrap());
        table.insert(
            "output_tokens".to_string(),
            Price::parse("0.60/1M").unwrap(),
        );
        let mut models = HashMap::new();
        models.insert("gpt-4o-mini".to_string(), table);
        Pricing {
            per_request: Money::parse("0.0005").unwrap(),
            units: HashMap::new(),
            models,
            reserve: None,
        }
    }

    #[test]
    fn per_request_plus_units() {
        let p = model_pricing();
        let priced = p.price(&usage(
            Some("gpt-4o-mini"),
            &[("input_tokens", 1_000_000), ("output_tokens", 500_000)],
        ));
        // 0.0005 + 0.15 + 0.30
        assert_eq!(priced.cost, Money::parse("0.4505").unwrap());
        assert!(priced.unpriced.is_empty());
    }

    #[test]
    fn never_a_silent_zero() {
        let p = model_pricing();
        let unknown_model = p.price(&usage(Some("gpt-9"), &[("input_tokens", 10)]));
        assert_eq!(
            unknown_model.cost,
            Money::parse("0.0005").unwrap(),
            "only what is known"
        );
        assert!(unknown_model.unpriced[0].contains("gpt-9"));
        let unknown_unit = p.price(&usage(Some("gpt-4o-mini"), &[("reasoning_tokens", 10)]));
        assert!(unknown_unit.unpriced[0].contains("reasoning_tokens"));
        let unreadable = p.price(&Usage::unreadable("no usage"));
        assert!(!unreadable.unpriced.is_empty());
        let no_model = p.price(&usage(None, &[("input_tokens", 10)]));
        assert!(no_model.unpriced[0].contains("no model"));
    }

    #[test]
    fn service_unit_prices() {
        let mut units = HashMap::new();
        units.insert("image".to_string(), Price::parse("0.04").unwrap());
        let p = Pricing {
            per_request: Money::ZERO,
            units,
            models: HashMap::new(),
            reserve: None,
        };
        assert_eq!(
            p.price(&usage(None, &[("image", 3)])).cost,
            Money::parse("0.12").unwrap()
        );
        assert!(
            p.price(&usage(None, &[("image", 0), ("video_second", 0)]))
                .unpriced
                .is_empty(),
            "zero counts need no price"
        );
    }
}
