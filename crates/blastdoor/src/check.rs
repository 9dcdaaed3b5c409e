//! `blastdoor check`: compile the config exactly as `serve` would, then
//! warn about models the ledger has seen that the config still cannot
//! price.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use blastdoor_config::Config;
use blastdoor_store::{LedgerStore, SqlStore, now_ms};

/// How far back the ledger is searched for unpriced models.
const LOOKBACK_MS: i64 = 30 * 86_400_000;
/// `check` must not hang on an unreachable store.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(path: &Path) -> ExitCode {
    match blastdoor_config::load(path) {
        Ok(config) => {
            println!(
                "{}: ok ({} services)",
                path.display(),
                config.services.len()
            );
            for warning in unpriced_models(&config) {
                println!("warning: {warning}");
            }
            let (errors, warnings) = lint_contracts(&config);
            for w in &warnings {
                println!("warning: {w}");
            }
            for e in &errors {
                eprintln!("{e}");
            }
            if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                let n = errors.len();
                eprintln!(
                    "{n} contract lint error{} (switch rules off per service with lint_disable)",
                    if n == 1 { "" } else { "s" }
                );
                ExitCode::FAILURE
            }
        }
        Err(diags) => {
            for d in diags.iter() {
                eprintln!("{d}");
            }
            let n = diags.len();
            eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
            ExitCode::FAILURE
        }
    }
}

/// Each service's contract against the API-standards ruleset, less the
/// rules the service switches off: (errors, warnings), one line each.
fn lint_contracts(config: &Config) -> (Vec<String>, Vec<String>) {
    use blastdoor_contract::lint::{Severity, lint};
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for svc in &config.services {
        let Some(spec) = &svc.contract else { continue };
        let doc = match blastdoor_contract::Document::load(&spec.path) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        for f in lint(&doc, &spec.lint_disable) {
            let line = format!(
                "{}: at {}: {} ({}, service {})",
                spec.path.display(),
                f.pointer,
                f.message,
                f.rule,
                svc.name
            );
            match f.severity {
                Severity::Error => errors.push(line),
                _ => warnings.push(line),
            }
        }
    }
    (errors, warnings)
}

/// Models seen in the last 30 days without a price that the config
/// still lacks. Best effort: a store that does not exist yet, or cannot
/// be reached, is noted and skipped.
fn unpriced_models(config: &Config) -> Vec<String> {
    let url = &config.store.url;
    if let Some(file) = url.strip_prefix("sqlite://")
        && !Path::new(file).exists()
    {
        return Vec::new();
    }
    let seen = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                let query = async {
                    let store = SqlStore::connect(url).await?;
                    let seen = store.unpriced_models(now_ms() - LOOKBACK_MS).await;
                    store.close().await;
                    seen
                };
                match tokio::time::timeout(STORE_TIMEOUT, query).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err("the store did not answer in time".to_string()),
                }
            })
        });
    let seen = match seen {
        Ok(seen) => seen,
        Err(e) => {
            eprintln!("note: the ledger was not checked for unpriced models: {e}");
            return Vec::new();
        }
    };
    seen.into_iter()
        .filter(|(service, model)| {
            config
                .services
                .iter()
                .find(|s| &s.name == service)
                .is_some_and(|s| s.pricing.model_prices(model).is_none())
        })
        .map(|(service, model)| {
            format!("service {service}: model {model:?} was called in the last 30 days and has no price (its usage is flagged unpriced)")
        })
        .collect()
}
