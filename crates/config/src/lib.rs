//! blastdoor's configuration: TOML in, a validated [`Config`] out.
//!
//! Two phases, shared by `check`, `serve` and reload: [`parse`] turns the
//! document into raw serde structs that remember where each value came from,
//! then [`compile`] validates them into typed values. Every problem found is
//! returned with its file and line, not just the first.

mod compile;
mod diagnostic;
mod interpolate;
mod model;
mod parse;
mod raw;
mod units;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use model::*;
pub use units::{parse_duration, parse_size};

use std::path::Path;

/// Reads, parses and compiles the config file at `path`, with `${VAR}`
/// looked up in the process environment.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::single(Diagnostic::file_level(
            path,
            format!("cannot read config: {e}"),
        ))
    })?;
    load_str(path, &text, &|name| std::env::var(name).ok())
}

/// Parses and compiles config text; `path` names the file in diagnostics and
/// anchors relative paths; `env` resolves `${VAR}`.
pub fn load_str(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    let (raw, shape_errors) = parse::parse(path, text)?;
    compile::compile(path, text, raw, shape_errors, env)
}
