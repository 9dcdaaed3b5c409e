//! `blastdoor contract lint FILE` and `contract diff OLD NEW`: the
//! contract checks a service's CI runs, with exit codes it can gate on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use blastdoor_contract::{Document, diff, lint};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ContractCommand {
    /// Check an OpenAPI document against the API-standards ruleset; exit 1
    /// on errors.
    Lint {
        file: PathBuf,
        #[arg(long, default_value = "text", value_parser = parse_lint_format)]
        format: lint::Format,
        /// Rule ids to switch off, comma separated.
        #[arg(long, value_delimiter = ',')]
        disable: Vec<String>,
    },
    /// Report what changed from OLD to NEW, by the rule that requests may
    /// only become more permissive and responses only stricter; exit 1 on
    /// a breaking change.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// text, json, or markdown (for a CI comment).
        #[arg(long, default_value = "text", value_parser = parse_diff_format)]
        format: diff::Format,
    },
}

fn parse_diff_format(s: &str) -> Result<diff::Format, String> {
    s.parse()
        .map_err(|_| "expected text, json or markdown".to_string())
}

fn parse_lint_format(s: &str) -> Result<lint::Format, String> {
    s.parse().map_err(|_| "expected text or json".to_string())
}

pub fn command(command: ContractCommand) -> ExitCode {
    match command {
        ContractCommand::Lint {
            file,
            format,
            disable,
        } => run_lint(&file, format, &disable),
        ContractCommand::Diff { old, new, format } => run_diff(&old, &new, format),
    }
}

fn run_diff(old: &Path, new: &Path, format: diff::Format) -> ExitCode {
    let report = Document::load(old)
        .and_then(|old| Ok((old, Document::load(new)?)))
        .and_then(|(old, new)| diff::diff(&old, &new));
    match report {
        Ok(report) => {
            print!("{}", diff::render(&report, format));
            if report.breaking() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("blastdoor: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_lint(file: &Path, format: lint::Format, disable: &[String]) -> ExitCode {
    if let Some(unknown) = disable.iter().find(|id| lint::rule(id).is_none()) {
        eprintln!("blastdoor: --disable: no lint rule {unknown:?}");
        return ExitCode::from(2);
    }
    let doc = match Document::load(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("blastdoor: {e}");
            return ExitCode::from(2);
        }
    };
    let findings = lint::lint(&doc, disable);
    print!("{}", lint::render(&findings, format));
    if lint::has_errors(&findings) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
