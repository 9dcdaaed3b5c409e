//! A report as text (one line per finding, for a terminal or a CI log),
//! JSON (for scripts) or Markdown (a pull-request comment).

use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::json;

use super::{Finding, Report, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "markdown" => Ok(Format::Markdown),
            other => Err(format!("unknown format `{other}`: text, json or markdown")),
        }
    }
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text(report),
        Format::Json => json(report),
        Format::Markdown => markdown(report),
    }
}

/// `3 breaking, 1 warning, 2 info`.
fn counts(report: &Report) -> String {
    let breaking = report.count(Severity::Breaking);
    let warnings = report.count(Severity::Warning);
    let plural = if warnings == 1 { "" } else { "s" };
    format!(
        "{breaking} breaking, {warnings} warning{plural}, {} info",
        report.count(Severity::Info)
    )
}

fn operation(f: &Finding) -> String {
    match &f.operation_id {
        Some(id) => format!("{} ({id})", f.operation),
        None => f.operation.clone(),
    }
}

fn text(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let severity = f.severity.as_str().to_ascii_uppercase();
        let _ = write!(out, "{severity} {} {}: {}", f.rule, operation(f), f.message);
        if let Some(p) = &f.old_pointer {
            let _ = write!(out, " old: {p}");
        }
        if let Some(p) = &f.new_pointer {
            let _ = write!(out, " new: {p}");
        }
        out.push('\n');
    }
    if report.findings.is_empty() {
        out.push_str("no changes\n");
    } else {
        let _ = writeln!(out, "{}", counts(report));
    }
    out
}

fn json(report: &Report) -> String {
    let findings: Vec<_> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule,
                "severity": f.severity.as_str(),
                "operation": f.operation,
                "operation_id": f.operation_id,
                "old_pointer": f.old_pointer,
                "new_pointer": f.new_pointer,
                "message": f.message,
            })
        })
        .collect();
    let value = json!({
        "breaking": report.breaking(),
        "counts": {
            "breaking": report.count(Severity::Breaking),
            "warning": report.count(Severity::Warning),
            "info": report.count(Severity::Info),
        },
        "findings": findings,
    });
    format!("{value:#}\n")
}

/// A summary line, a table of breaking changes and warnings, and the
/// compatible changes folded away below it.
fn markdown(report: &Report) -> String {
    let mut out = String::from("### API contract diff\n\n");
    if report.findings.is_empty() {
        out.push_str("No changes to the contract's operations.\n");
        return out;
    }
    let verdict = if report.breaking() {
        "**Breaking changes found**"
    } else {
        "No breaking changes"
    };
    let _ = writeln!(out, "{verdict}: {}.\n", counts(report));
    let (notable, info): (Vec<&Finding>, Vec<&Finding>) = report
        .findings
        .iter()
        .partition(|f| f.severity != Severity::Info);
    if !notable.is_empty() {
        table(&mut out, &notable);
    }
    if !info.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} compatible change{}</summary>\n",
            info.len(),
            if info.len() == 1 { "" } else { "s" }
        );
        table(&mut out, &info);
        out.push_str("\n</details>\n");
    }
    out
}

fn table(out: &mut String, findings: &[&Finding]) {
    out.push_str("| Severity | Rule | Operation | Change | Old | New |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for f in findings {
        let pointer = |p: &Option<String>| p.as_deref().map_or_else(String::new, code);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            f.severity.as_str(),
            code(f.rule),
            cell(&operation(f)),
            cell(&f.message),
            pointer(&f.old_pointer),
            pointer(&f.new_pointer),
        );
    }
}

/// Text safe inside a table cell: pipes escaped, one line, and outside
/// code spans no HTML (names come from the documents, and a comment must
/// show them, not render them).
fn cell(s: &str) -> String {
    let spans: Vec<String> = s
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                part.to_string()
            } else {
                part.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            }
        })
        .collect();
    spans
        .join("`")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A code span in a table cell; a name holding a backtick is fenced with
/// two.
fn code(s: &str) -> String {
    let s = s.replace('|', "\\|").replace(['\n', '\r'], " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
