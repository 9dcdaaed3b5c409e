//! `blastdoor contract lint FILE` and `contract diff OLD NEW`: the
//! contract checks a service's CI runs, with exit codes it can gate on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use blastdoor_contract::{Document, lint};
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
