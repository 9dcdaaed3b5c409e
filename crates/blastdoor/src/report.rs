//! `blastdoor report sprawl`: the same report as `/v1/reports/sprawl`,
//! as text, JSON or markdown.

use std::path::Path;

use anyhow::Result;
use blastdoor_admin::v1::sprawl::report;
use blastdoor_store::now_ms;
use clap::Subcommand;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Services without an owner or contract, idle services and
    /// operations, undescribed traffic, deprecated services still called,
    /// overlapping operations, and the costliest services with their trend.
    Sprawl {
        /// The window in days.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

pub fn command(config_path: &Path, command: ReportCommand) -> Result<()> {
    let ReportCommand::Sprawl { days, format } = command;
    crate::store::with_store(config_path, async |config, store| {
        let report = report(config, store, days, now_ms()).await?;
        let out = match format {
            Format::Json => serde_json::to_string_pretty(&report)? + "\n",
            Format::Text => report.text(),
            Format::Markdown => report.markdown(),
        };
        print!("{out}");
        Ok(())
    })
}
