//! `blastdoor usage`: cost and usage from the ledger, grouped, as a table,
//! CSV or JSON (the same report as `/v1/usage`).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use blastdoor_admin::v1::usage::{UsageReport, report};
use blastdoor_store::{GroupBy, now_ms};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub fn command(config_path: &Path, by: GroupBy, since: Duration, format: Format) -> Result<()> {
    crate::store::with_store(config_path, async |_, store| {
        let to = now_ms();
        let from = to.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
        let report = report(store, by, from, to).await?;
        let out = match format {
            Format::Json => serde_json::to_string_pretty(&report)? + "\n",
            Format::Csv => report.to_csv(),
            Format::Table => table(&report),
        };
        print!("{out}");
        Ok(())
    })
}

fn table(report: &UsageReport) -> String {
    let units = report.unit_columns();
    let mut header: Vec<String> = vec![
        report.group_by.as_str().to_uppercase(),
        "REQUESTS".into(),
        "COST_USD".into(),
        "UNPRICED".into(),
    ];
    header.extend(units.iter().map(|u| u.to_uppercase()));
    let mut rows = vec![header];
    for r in &report.rows {
        let mut row = vec![
            if r.group.is_empty() {
                "(none)".to_string()
            } else {
                r.group.clone()
            },
            r.requests.to_string(),
            r.cost_usd.clone(),
            r.unpriced_requests.to_string(),
        ];
        row.extend(
            units
                .iter()
                .map(|u| r.units.get(*u).copied().unwrap_or(0).to_string()),
        );
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}
