//! TOML text to [`RawConfig`], collecting every syntax and shape error.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::raw::RawConfig;

const SECTIONS: &[&str] = &["server", "store", "log", "tracing", "auth", "service"];

/// The sections that parsed, and the problems of those that did not. Syntax
/// errors are fatal (nothing after them can be trusted); shape errors only
/// drop their own section, so `compile` can still check the rest.
pub fn parse(path: &Path, text: &str) -> Result<(RawConfig, Diagnostics), Diagnostics> {
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    let mut diags = Diagnostics::default();
    for e in &syntax_errors {
        diags.push(toml_diagnostic(path, text, e));
    }
    if !diags.is_empty() {
        return Err(diags);
    }

    let mut raw = RawConfig::default();
    for (key, value) in doc.into_inner() {
        let span = key.span();
        match key.get_ref().as_ref() {
            "server" => {
                raw.server_span = Some(value.span());
                if let Some(v) = section(path, text, value, &mut diags) {
                    raw.server = v;
                }
            }
            "store" => {
                if let Some(v) = section(path, text, value, &mut diags) {
                    raw.store = v;
                }
            }
            "log" => {
                if let Some(v) = section(path, text, value, &mut diags) {
                    raw.log = v;
                }
            }
            "tracing" => {
                raw.tracing_span = Some(span);
                raw.tracing = section(path, text, value, &mut diags);
            }
            "auth" => {
                if let Some(v) = section(path, text, value, &mut diags) {
                    raw.auth = v;
                }
            }
            "service" => services(path, text, value, &mut raw, &mut diags),
            other => diags.push(Diagnostic::at(
                path,
                text,
                span,
                format!(
                    "unknown section `{other}`, expected one of: {}",
                    SECTIONS.join(", ")
                ),
            )),
        }
    }
    Ok((raw, diags))
}

/// `[[service]]` entries, each deserialized separately.
fn services(
    path: &Path,
    text: &str,
    value: Spanned<DeValue<'_>>,
    raw: &mut RawConfig,
    diags: &mut Diagnostics,
) {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => {
            for item in items {
                if let Some(svc) = section(path, text, item, diags) {
                    raw.services.push(svc);
                }
            }
        }
        _ => diags.push(Diagnostic::at(
            path,
            text,
            span,
            "`service` must be an array of tables: write each one as [[service]]",
        )),
    }
}

fn section<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    value: Spanned<DeValue<'_>>,
    diags: &mut Diagnostics,
) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(toml_diagnostic(path, text, &e));
            None
        }
    }
}

fn toml_diagnostic(path: &Path, text: &str, e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => Diagnostic::at(path, text, span, message),
        None => Diagnostic::file_level(path, message),
    }
}
