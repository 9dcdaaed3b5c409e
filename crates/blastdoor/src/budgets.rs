//! Budgets in the running gateway (loaded at start, kept in sync with the
//! store) and `blastdoor budgets set|list|delete`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use blastdoor_budget::ops::{self, BudgetSpec, BudgetView};
use blastdoor_budget::{Book, Period};
use blastdoor_store::{BudgetScope, SqlStore};
use blastdoor_types::Money;
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

/// Reloads budgets from the store every `interval`, so a budget set on any
/// node (or with the CLI) applies everywhere within that time.
pub async fn sync_loop(
    store: SqlStore,
    book: Arc<Book>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match ops::sync(&store, &book).await {
            Ok(_) if failing => {
                tracing::info!("budgets load from the store again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot load budgets from the store; enforcing the last ones loaded");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[derive(Subcommand)]
pub enum BudgetsCommand {
    /// Create or replace the budget of a key, a team or a service.
    Set(SetArgs),
    /// Every budget with its spend in the current period.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Remove a budget.
    Delete(TargetArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// A key id (the 12 characters after bd_).
    #[arg(long)]
    key: Option<String>,
    #[arg(long)]
    team: Option<String>,
    #[arg(long)]
    service: Option<String>,
}

impl TargetArgs {
    fn scope(&self) -> (BudgetScope, String) {
        match (&self.key, &self.team, &self.service) {
            (Some(k), _, _) => (BudgetScope::Key, k.clone()),
            (_, Some(t), _) => (BudgetScope::Team, t.clone()),
            (_, _, Some(s)) => (BudgetScope::Service, s.clone()),
            _ => (BudgetScope::Service, String::new()),
        }
    }
}

#[derive(Args)]
pub struct SetArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// US dollars per period, e.g. 25 or 0.50.
    #[arg(long, value_parser = |s: &str| Money::parse(s))]
    amount: Money,
    #[arg(long, value_parser = |s: &str| Period::parse(s).ok_or("expected day, week, month or total"))]
    period: Period,
    #[arg(long, value_parser = ["hard", "soft"])]
    mode: String,
    /// Alert thresholds in percent, e.g. 50,80,100 (the default).
    #[arg(long, value_delimiter = ',')]
    alerts: Vec<u32>,
}

pub fn command(config_path: &Path, command: BudgetsCommand) -> Result<()> {
    crate::store::with_store(config_path, async |_, store| {
        match command {
            BudgetsCommand::Set(args) => {
                let (scope, target) = args.target.scope();
                let spec = BudgetSpec {
                    scope,
                    target,
                    amount: args.amount,
                    period: args.period,
                    hard: args.mode == "hard",
                    alerts: args.alerts,
                };
                let view = ops::set(store, None, "cli", spec).await?;
                print!("{}", table(&[view]));
            }
            BudgetsCommand::List { format } => {
                let views = ops::list(store, None).await?;
                match format {
                    ListFormat::Json => println!("{}", serde_json::to_string_pretty(&views)?),
                    ListFormat::Table => print!("{}", table(&views)),
                }
            }
            BudgetsCommand::Delete(target) => {
                let (scope, target) = target.scope();
                ops::delete(store, None, "cli", scope, &target).await?;
                println!("deleted the {} budget of {target}", scope.as_str());
            }
        }
        Ok(())
    })
}

fn table(views: &[BudgetView]) -> String {
    let mut out = format!(
        "{:<8} {:<24} {:>12} {:<6} {:<5} {:>12} {:>12} {:>7}\n",
        "SCOPE", "TARGET", "AMOUNT_USD", "PERIOD", "MODE", "SPENT_USD", "REMAINING", "USED%"
    );
    for v in views {
        out += &format!(
            "{:<8} {:<24} {:>12} {:<6} {:<5} {:>12} {:>12} {:>7.2}\n",
            v.scope.as_str(),
            v.target,
            v.amount_usd,
            v.period,
            v.mode,
            v.spent_usd,
            v.remaining_usd,
            v.used_percent
        );
    }
    out
}
