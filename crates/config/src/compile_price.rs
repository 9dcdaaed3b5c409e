//! A service's `meter`, `[service.price]` and `unpriced` policy.

use std::collections::HashMap;

use blastdoor_meter::{JsonPointerUnit, MeterSpec, Pricing};
use blastdoor_types::{Money, Price};

use super::Cx;
use crate::model::Unpriced;
use crate::raw::{RawPrice, RawService, S};

impl Cx<'_> {
    /// The meter, with the units a `json` or `header` meter reads (from
    /// the price list's `from`).
    pub(super) fn meter(&mut self, r: &RawService) -> MeterSpec {
        let kind = r.meter.as_ref().map_or("none", |m| m.get_ref().as_str());
        let units = r.price.as_ref().and_then(|p| p.units.as_ref());
        let mut json = Vec::new();
        let mut headers = Vec::new();
        for u in units.into_iter().flatten() {
            let name = u.name.get_ref().clone();
            match (kind, &u.from) {
                ("json", Some(from)) if from.get_ref().starts_with('/') => {
                    json.push(JsonPointerUnit {
                        unit: name,
                        pointer: from.get_ref().clone(),
                    });
                }
                ("header", Some(from)) if from.get_ref().starts_with("header:") => {
                    let header = from.get_ref()["header:".len()..]
                        .trim()
                        .to_ascii_lowercase();
                    headers.push((name, header));
                }
                ("json", _) => self.error(
                    u.name.span(),
                    "with meter = \"json\", each unit needs from = \"/json/pointer\"",
                ),
                ("header", _) => self.error(
                    u.name.span(),
                    "with meter = \"header\", each unit needs from = \"header:NAME\"",
                ),
                (_, Some(from)) => self.error(
                    from.span(),
                    format!("`from` only applies to the json and header meters, not {kind:?}"),
                ),
                (_, None) => {}
            }
        }
        match kind {
            "none" => MeterSpec::None,
            "openai" => MeterSpec::OpenAi,
            "anthropic" => MeterSpec::Anthropic,
            "json" => MeterSpec::Json(blastdoor_meter::JsonUnits::new(json)),
            "header" => MeterSpec::Header(headers),
            other => {
                if let Some(m) = &r.meter {
                    self.error(
                        m.span(),
                        format!(
                            "meter {other:?} must be one of openai, anthropic, json, header, none"
                        ),
                    );
                }
                MeterSpec::None
            }
        }
    }

    fn price_of(&mut self, v: &S<String>) -> Option<Price> {
        match self.string(v).map(|s| Price::parse(&s)) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                self.error(v.span(), e);
                None
            }
            None => None,
        }
    }

    pub(super) fn pricing(&mut self, raw: Option<&RawPrice>) -> Pricing {
        let Some(raw) = raw else {
            return Pricing::default();
        };
        let per_request = match &raw.per_request {
            Some(v) => match self.string(v).map(|s| Money::parse(&s)) {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    self.error(v.span(), format!("per_request: {e}"));
                    Money::ZERO
                }
                None => Money::ZERO,
            },
            None => Money::ZERO,
        };
        let mut units = HashMap::new();
        for u in raw.units.iter().flatten() {
            if let Some(p) = self.price_of(&u.price) {
                units.insert(u.name.get_ref().clone(), p);
            }
        }
        let mut models = HashMap::new();
        for (model, table) in raw.models.iter().flatten() {
            let mut prices = HashMap::new();
            for (unit, v) in table {
                if let Some(p) = self.price_of(v) {
                    prices.insert(unit.clone(), p);
                }
            }
            models.insert(model.clone(), prices);
        }
        let reserve =
            raw.reserve
                .as_ref()
                .and_then(|v| match self.string(v).map(|s| Money::parse(&s)) {
                    Some(Ok(m)) => Some(m),
                    Some(Err(e)) => {
                        self.error(v.span(), format!("reserve: {e}"));
                        None
                    }
                    None => None,
                });
        Pricing {
            per_request,
            units,
            models,
            reserve,
        }
    }

    pub(super) fn unpriced(&mut self, v: Option<&S<String>>) -> Unpriced {
        match v.map(|v| (v.span(), v.get_ref().as_str())) {
            None => Unpriced::Default,
            Some((_, "allow")) => Unpriced::Allow,
            Some((_, "reject")) => Unpriced::Reject,
            Some((span, other)) => {
                self.error(
                    span,
                    format!("unpriced {other:?} must be \"reject\" or \"allow\""),
                );
                Unpriced::Allow
            }
        }
    }
}
