//! Breaking-change detection between two versions of a contract
//! (`blastdoor contract diff OLD NEW`).
//!
//! The rule: requests may only become more permissive, responses only
//! stricter. A client written against the old document keeps working if
//! everything it could send is still accepted and everything it could be
//! sent was already possible. Each finding names its [`Rule`] (a stable id
//! with a fixed [`Severity`]) and the JSON pointer of the change in both
//! documents.
//!
//! Operations are matched by method and path template, with path parameter
//! names ignored (renaming `{id}` to `{videoId}` changes no URL).

mod operation;
mod render;
mod responses;
mod rules;
mod schema;
mod security;

use crate::document::{ContractError, Document, Operation};

pub use render::{Format, render};
pub use rules::{RULES, Rule, Severity, rule};

/// One difference between the two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's stable id, e.g. `request-property-became-required`.
    pub rule: &'static str,
    pub severity: Severity,
    /// `METHOD /path/template`, as written in the new document when the
    /// operation is in both.
    pub operation: String,
    pub operation_id: Option<String>,
    /// Where the change is in the old document (None: not there).
    pub old_pointer: Option<String>,
    /// Where the change is in the new document (None: not there).
    pub new_pointer: Option<String>,
    pub message: String,
}

/// Every finding, breaking ones first (otherwise in document order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether any finding is breaking: the CLI exits 1 if so.
    pub fn breaking(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Breaking)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Compares two documents. Errors are the documents' own problems (a
/// dangling `$ref`, a malformed parameter): a diff of a document that cannot
/// be read would be a guess.
pub fn diff(old: &Document, new: &Document) -> Result<Report, ContractError> {
    let old_ops = old.operations()?;
    let new_ops = new.operations()?;
    let mut findings = Vec::new();
    let mut matched = vec![false; new_ops.len()];
    for o in &old_ops {
        let key = route_key(o);
        let found = new_ops
            .iter()
            .enumerate()
            .position(|(i, n)| matched.get(i) == Some(&false) && route_key(n) == key);
        let Some(i) = found else {
            let mut sink = Sink::new(o, &mut findings);
            sink.push(
                &rules::OPERATION_REMOVED,
                Some(o.pointer.clone()),
                None,
                "the operation was removed".into(),
            );
            continue;
        };
        let (Some(slot), Some(n)) = (matched.get_mut(i), new_ops.get(i)) else {
            continue;
        };
        *slot = true;
        let mut sink = Sink::new(n, &mut findings);
        operation::compare(old, new, o, n, &mut sink)?;
    }
    for (n, _) in new_ops.iter().zip(&matched).filter(|(_, m)| !**m) {
        let mut sink = Sink::new(n, &mut findings);
        sink.push(
            &rules::OPERATION_ADDED,
            None,
            Some(n.pointer.clone()),
            "the operation was added".into(),
        );
    }
    // Stable: within a severity, findings stay in document order.
    findings.sort_by_key(|f| f.severity);
    Ok(Report { findings })
}

/// The method and the path template with parameter names blanked:
/// `/v1/videos/{id}` and `/v1/videos/{videoId}` are the same URLs.
fn route_key(op: &Operation<'_>) -> (String, String) {
    (op.method.clone(), blank_parameters(&op.path))
}

fn blank_parameters(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_name = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_name = true;
                out.push_str("{}");
            }
            '}' if in_name => in_name = false,
            _ if in_name => {}
            _ => out.push(c),
        }
    }
    out
}

/// The names of a template's path parameters, in order.
fn template_names(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

/// Collects the findings of one operation, labelled with it.
pub(crate) struct Sink<'r> {
    operation: String,
    operation_id: Option<String>,
    findings: &'r mut Vec<Finding>,
    /// Where this operation's findings start in `findings`.
    start: usize,
}

impl<'r> Sink<'r> {
    fn new(op: &Operation<'_>, findings: &'r mut Vec<Finding>) -> Sink<'r> {
        Sink {
            operation: format!("{} {}", op.method, op.path),
            operation_id: op.id.clone(),
            start: findings.len(),
            findings,
        }
    }

    pub(crate) fn push(
        &mut self,
        rule: &Rule,
        old_pointer: Option<String>,
        new_pointer: Option<String>,
        message: String,
    ) {
        let finding = Finding {
            rule: rule.id,
            severity: rule.severity,
            operation: self.operation.clone(),
            operation_id: self.operation_id.clone(),
            old_pointer,
            new_pointer,
            message,
        };
        // A change can be reached twice by the same road (a parameter
        // declared at path and operation level); say it once.
        let ours = self.findings.get(self.start..).unwrap_or_default();
        if !ours.contains(&finding) {
            self.findings.push(finding);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whatever_the_parameters_are_called() {
        assert_eq!(
            blank_parameters("/v1/videos/{id}/frames/{n}"),
            "/v1/videos/{}/frames/{}"
        );
        assert_eq!(blank_parameters("/v1/{a}.{b}"), "/v1/{}.{}");
        assert_eq!(blank_parameters("/odd/{unclosed"), "/odd/{}");
        assert_eq!(template_names("/v1/{a}/x/{b}"), vec!["a", "b"]);
        assert_eq!(template_names("/v1/{a"), Vec::<&str>::new());
    }
}
