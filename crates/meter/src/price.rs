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

    /// The price table of `model`: its own, else that of the alias it is a
    /// dated snapshot of. Providers answer a call made with an alias
    /// (`gpt-4o-mini`, `claude-sonnet-4-5`) with the snapshot that served it
    /// (`gpt-4o-mini-2024-07-18`, `claude-sonnet-4-5-20250929`), so prices
    /// keyed by the alias also price its snapshots; a snapshot's own table,
    /// if configured, wins.
    pub fn model_prices(&self, model: &str) -> Option<&HashMap<String, Price>> {
        self.models
            .get(model)
            .or_else(|| self.models.get(undated(model)?))
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
                let prices = self.model_prices(m);
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

/// `model` without a snapshot date suffix: `-YYYY-MM-DD` (OpenAI) or
/// `-YYYYMMDD` (Anthropic); None if it has none.
pub fn undated(model: &str) -> Option<&str> {
    let digits = |s: Option<&str>| s.is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
    let strip = |len: usize| {
        let at = model.len().checked_sub(len).filter(|at| *at > 0)?;
        Some((model.get(..at)?, model.get(at..)?))
    };
    if let Some((base, date)) = strip(9)
        && date.starts_with('-')
        && digits(date.get(1..))
    {
        return Some(base);
    }
    let (base, date) = strip(11)?;
    let b = date.as_bytes();
    (b[0] == b'-'
        && b[5] == b'-'
        && b[8] == b'-'
        && digits(date.get(1..5))
        && digits(date.get(6..8))
        && digits(date.get(9..)))
    .then_some(base)
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
    fn snapshots_are_priced_as_their_alias() {
        let mut p = model_pricing();
        let answered = p.price(&usage(
            Some("gpt-4o-mini-2024-07-18"),
            &[("input_tokens", 1_000_000)],
        ));
        assert_eq!(answered.cost, Money::parse("0.1505").unwrap());
        assert!(answered.unpriced.is_empty(), "{:?}", answered.unpriced);
        let mut own = HashMap::new();
        own.insert("input_tokens".to_string(), Price::parse("1/1M").unwrap());
        p.models.insert("gpt-4o-mini-2024-07-18".to_string(), own);
        assert_eq!(
            p.price(&usage(
                Some("gpt-4o-mini-2024-07-18"),
                &[("input_tokens", 1_000_000)]
            ))
            .cost,
            Money::parse("1.0005").unwrap(),
            "a snapshot's own prices win"
        );
        for other in [
            "gpt-4o-mini-2",
            "gpt-4o-mini-preview",
            "gpt-4o-mini-2024-07-1x",
            "gpt-4o",
        ] {
            assert!(p.model_prices(other).is_none(), "{other}");
        }
        assert_eq!(
            undated("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(undated("o4-mini-2025-04-16"), Some("o4-mini"));
        for none in [
            "",
            "-20250929",
            "-2025-04-16",
            "gpt-4o",
            "é-2025-04-1é",
            "model-2025041",
        ] {
            assert_eq!(undated(none), None, "{none}");
        }
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
