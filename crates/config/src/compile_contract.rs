//! A service's `contract`, `validate` and `undocumented` settings: the
//! OpenAPI document is loaded and compiled here, so a broken contract is a
//! config error with the file and the JSON pointer.

use std::sync::Arc;

use blastdoor_contract::Contract;

use super::Cx;
use crate::model::{ContractSpec, Deprecation, Lifecycle, Undocumented, Validate};
use crate::raw::{RawDeprecation, RawService, S};

impl Cx<'_> {
    pub(super) fn contract(&mut self, r: &RawService) -> Option<ContractSpec> {
        let Some(file) = &r.contract else {
            for (v, key) in [(&r.validate, "validate"), (&r.undocumented, "undocumented")] {
                if let Some(v) = v {
                    self.error(v.span(), format!("{key} needs a contract"));
                }
            }
            if let Some(v) = &r.response_sample {
                self.error(v.span(), "response_sample needs a contract");
            }
            if let Some(v) = r.lint_disable.iter().flatten().next() {
                self.error(v.span(), "lint_disable needs a contract");
            }
            return None;
        };
        let path = self.file_path(file);
        let validate = self.choice(
            r.validate.as_ref(),
            &[
                ("enforce", Validate::Enforce),
                ("report", Validate::Report),
                ("off", Validate::Off),
            ],
            Validate::Enforce,
            "validate",
        );
        let undocumented = self.choice(
            r.undocumented.as_ref(),
            &[
                ("report", Undocumented::Report),
                ("block", Undocumented::Block),
            ],
            Undocumented::Report,
            "undocumented",
        );
        let response_sample = match &r.response_sample {
            None => 0.01,
            Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                self.error(
                    v.span(),
                    "response_sample must be between 0 and 1 (a fraction of responses)",
                );
                0.0
            }
        };
        let mut lint_disable = Vec::new();
        for id in r.lint_disable.iter().flatten() {
            if blastdoor_contract::lint::rule(id.get_ref()).is_none() {
                self.error(
                    id.span(),
                    format!("lint_disable: no lint rule {:?}", id.get_ref()),
                );
            } else {
                lint_disable.push(id.get_ref().clone());
            }
        }
        match Contract::load(&path) {
            Ok(contract) => Some(ContractSpec {
                contract: Arc::new(contract),
                path,
                validate,
                undocumented,
                response_sample,
                lint_disable,
            }),
            Err(e) => {
                self.error(file.span(), format!("contract: {e}"));
                None
            }
        }
    }

    /// The catalog's view: lifecycle and deprecation. A deprecation makes
    /// the lifecycle `deprecated`, and `deprecated` needs a deprecation
    /// (its date is what the `Deprecation` header says).
    pub(super) fn lifecycle(&mut self, r: &RawService) -> (Lifecycle, Option<Deprecation>) {
        let lifecycle = self.choice(
            r.lifecycle.as_ref(),
            &[
                ("experimental", Lifecycle::Experimental),
                ("production", Lifecycle::Production),
                ("deprecated", Lifecycle::Deprecated),
            ],
            Lifecycle::Production,
            "lifecycle",
        );
        let deprecation = r.deprecation.as_ref().and_then(|d| self.deprecation(d));
        match (lifecycle, &deprecation, &r.lifecycle) {
            (Lifecycle::Deprecated, None, Some(v)) if r.deprecation.is_none() => {
                self.error(
                    v.span(),
                    "a deprecated service needs a deprecation: deprecation = { since = \"2026-11-01\", sunset = \"2027-03-31\" }",
                );
                (lifecycle, None)
            }
            (_, Some(_), _) => (Lifecycle::Deprecated, deprecation),
            _ => (lifecycle, deprecation),
        }
    }

    fn deprecation(&mut self, d: &RawDeprecation) -> Option<Deprecation> {
        let since = self.date(&d.since, "deprecation.since")?;
        let sunset = match &d.sunset {
            Some(v) => Some(self.date(v, "deprecation.sunset")?),
            None => None,
        };
        if let (Some(s), Some(v)) = (sunset, &d.sunset)
            && s < since
        {
            self.error(
                v.span(),
                "deprecation.sunset must not come before deprecation.since",
            );
        }
        let link = d.link.as_ref().and_then(|l| self.string(l));
        Some(Deprecation {
            since,
            sunset,
            link,
        })
    }

    /// A calendar date, "2027-03-31", as Unix seconds at its UTC midnight.
    fn date(&mut self, v: &S<String>, key: &str) -> Option<i64> {
        let secs = blastdoor_contract::parse_date(v.get_ref());
        if secs.is_none() {
            self.error(
                v.span(),
                format!("{key} must be a date like \"2027-03-31\""),
            );
        }
        secs
    }

    fn choice<T: Copy>(
        &mut self,
        v: Option<&S<String>>,
        options: &[(&str, T)],
        default: T,
        key: &str,
    ) -> T {
        let Some(v) = v else { return default };
        if let Some((_, t)) = options.iter().find(|(name, _)| name == v.get_ref()) {
            return *t;
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
        self.error(
            v.span(),
            format!(
                "{key} {:?} must be one of {}",
                v.get_ref(),
                names.join(", ")
            ),
        );
        default
    }
}
