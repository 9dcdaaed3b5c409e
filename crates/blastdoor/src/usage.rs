//! `blastdoor usage`: cost and usage from the ledger, grouped, as a table,
//! CSV or JSON (the same report as `/v1/usage`).

use std::collections::BTreeSet;
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
            Format::Csv => csv(&report),
            Format::Table => table(&report),
        };
        print!("{out}");
        Ok(())
    })
}

/// Every unit any row has, in name order: the unit columns.
fn unit_columns(report: &UsageReport) -> Vec<&str> {
    let units: BTreeSet<&str> = report
        .rows
        .iter()
        .flat_map(|r| r.units.keys().map(String::as_str))
        .collect();
    units.into_iter().collect()
}

fn csv(report: &UsageReport) -> String {
    let units = unit_columns(report);
    let mut header = vec![
        report.group_by.as_str(),
        "requests",
        "cost_usd",
        "unpriced_requests",
    ];
    header.extend(&units);
    let mut out = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in &report.rows {
        let mut fields = vec![
            csv_field(&r.group),
            r.requests.to_string(),
            r.cost_usd.clone(),
            r.unpriced_requests.to_string(),
        ];
        fields.extend(
            units
                .iter()
                .map(|u| r.units.get(*u).copied().unwrap_or(0).to_string()),
        );
        out += &(fields.join(",") + "\n");
    }
    out
}

/// RFC 4180: quote a field holding a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn table(report: &UsageReport) -> String {
    let units = unit_columns(report);
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

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("media"), "media");
        assert_eq!(csv_field("ads, video"), "\"ads, video\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
