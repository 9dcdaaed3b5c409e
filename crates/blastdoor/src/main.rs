//! The `blastdoor` command.

mod alerts;
mod audit;
mod budgets;
mod check;
mod contract;
mod demo;
mod jwks;
mod keys;
mod ledger;
mod logging;
mod reload;
mod report;
mod serve;
mod store;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// hyper and tokio allocate small, short-lived objects on every request;
/// mimalloc serves those faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "blastdoor",
    version,
    about = "The door in every service's wall: one gateway in front of a fleet of small services."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (proxy listener + admin listener).
    Serve {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
    },
    /// Validate a config file; list every problem with file and line.
    Check {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
    },
    /// Manage API keys (the same operations as the admin API's /v1/keys).
    Keys {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Show the audit log of admin actions, newest first.
    Audit {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
        /// Only entries this recent, e.g. 7d.
        #[arg(long, value_parser = blastdoor_config::parse_duration)]
        since: Option<std::time::Duration>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Manage budgets (the same operations as the admin API's /v1/budgets).
    Budgets {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
        #[command(subcommand)]
        command: budgets::BudgetsCommand,
    },
    /// Cost and usage from the ledger, grouped (the same report as /v1/usage).
    Usage {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
        /// What to group by.
        #[arg(long, default_value = "service", value_parser = parse_group_by)]
        by: blastdoor_store::GroupBy,
        /// How far back, e.g. 24h, 7d (whole hours, UTC).
        #[arg(long, default_value = "7d", value_parser = blastdoor_config::parse_duration)]
        since: std::time::Duration,
        #[arg(long, value_enum, default_value = "table")]
        format: usage::Format,
    },
    /// Apply pending store migrations (serve also does this on start).
    Migrate {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
    },
    /// Run the gateway with bundled reference services and print how to call them.
    Demo(demo::DemoArgs),
    /// Reports on the fleet: `report sprawl`.
    Report {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
        #[command(subcommand)]
        command: report::ReportCommand,
    },
    /// Contract checks for CI: lint an OpenAPI document, diff two versions.
    Contract {
        #[command(subcommand)]
        command: contract::ContractCommand,
    },
}

fn parse_group_by(s: &str) -> Result<blastdoor_store::GroupBy, String> {
    blastdoor_store::GroupBy::parse(s)
        .ok_or_else(|| "expected team, consumer, service, operation, origin or key".to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve::run(&config),
        Command::Check { config } => return check::run(&config),
        Command::Contract { command } => return contract::command(command),
        Command::Keys { config, command } => keys::command(&config, command),
        Command::Audit {
            config,
            since,
            limit,
        } => audit::command(&config, since, limit),
        Command::Budgets { config, command } => budgets::command(&config, command),
        Command::Usage {
            config,
            by,
            since,
            format,
        } => usage::command(&config, by, since, format),
        Command::Migrate { config } => store::migrate_command(&config),
        Command::Demo(args) => demo::run(args),
        Command::Report { config, command } => report::command(&config, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blastdoor: {e:#}");
            ExitCode::FAILURE
        }
    }
}
