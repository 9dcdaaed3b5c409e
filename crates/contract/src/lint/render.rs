//! Findings as text for people (one line each, then a summary) or as JSON
//! for tools.

use std::str::FromStr;

use serde_json::json;

use super::{Finding, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format {other:?} (text or json)")),
        }
    }
}

/// The findings, ending with a newline.
///
/// Text: `error  string-max-length  /components/schemas/Image/properties/prompt  input string has no maxLength`
/// per finding (fields split by two spaces), then `1 error, 0 warnings`.
/// JSON: `{"errors": n, "warnings": n, "findings": [{"rule", "severity", "pointer", "message"}]}`.
pub fn render(findings: &[Finding], format: Format) -> String {
    match format {
        Format::Text => text(findings),
        Format::Json => {
            let value = json!({
                "errors": count(findings, Severity::Error),
                "warnings": count(findings, Severity::Warning),
                "findings": findings,
            });
            format!("{value:#}\n")
        }
    }
}

fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        // The root's pointer is empty; say so rather than leave a gap.
        let pointer = if f.pointer.is_empty() {
            "(document)"
        } else {
            &f.pointer
        };
        out.push_str(&format!(
            "{}  {}  {}  {}\n",
            f.severity, f.rule, pointer, f.message
        ));
    }
    let errors = count(findings, Severity::Error);
    let warnings = count(findings, Severity::Warning);
    out.push_str(&format!(
        "{errors} {}, {warnings} {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    ));
    let infos = count(findings, Severity::Info);
    if infos > 0 {
        out.push_str(&format!(", {infos} info"));
    }
    out.push('\n');
    out
}

fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}
