//! A service's `contract`, `validate` and `undocumented` settings: the
//! OpenAPI document is loaded and compiled here, so a broken contract is a
//! config error with the file and the JSON pointer.

use std::sync::Arc;

use blastdoor_contract::Contract;

use super::Cx;
use crate::model::{ContractSpec, Undocumented, Validate};
use crate::raw::{RawService, S};

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
        match Contract::load(&path) {
            Ok(contract) => Some(ContractSpec {
                contract: Arc::new(contract),
                path,
                validate,
                undocumented,
                response_sample,
            }),
            Err(e) => {
                self.error(file.span(), format!("contract: {e}"));
                None
            }
        }
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
