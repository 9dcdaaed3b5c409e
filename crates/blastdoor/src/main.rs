//! The `blastdoor` command.

mod audit;
mod check;
mod demo;
mod jwks;
mod keys;
mod ledger;
mod logging;
mod reload;
mod serve;
mod store;

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
    /// Apply pending store migrations (serve also does this on start).
    Migrate {
        #[arg(long, env = "BLASTDOOR_CONFIG")]
        config: PathBuf,
    },
    /// Run the gateway with bundled reference services and print how to call them.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve::run(&config),
        Command::Check { config } => return check::run(&config),
        Command::Keys { config, command } => keys::command(&config, command),
        Command::Audit {
            config,
            since,
            limit,
        } => audit::command(&config, since, limit),
        Command::Migrate { config } => store::migrate_command(&config),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blastdoor: {e:#}");
            ExitCode::FAILURE
        }
    }
}
