//! Rules about each operation: its id, its documented responses, and its
//! path parameters against the path template.

use std::collections::HashMap;

use serde_json::Value;

use super::{
    ERROR_PROBLEM_JSON, Linter, OPERATION_ID_PRESENT, OPERATION_ID_UNIQUE,
    OPERATION_SUCCESS_RESPONSE, PATH_PARAMETERS_DEFINED, RESPONSE_5XX_DOCUMENTED,
    RESPONSE_401_DOCUMENTED, RESPONSE_429_DOCUMENTED, child,
};
use crate::document::{Operation, escape};

impl<'d> Linter<'d> {
    pub(super) fn operations(&mut self, ops: &[Operation<'d>]) {
        self.operation_ids(ops);
        for op in ops {
            let secured = self.operation_security(op);
            self.responses(op, secured);
            self.path_parameters(op);
            self.query_credentials(op);
            self.parameter_schemas(op);
            self.request_body(op);
        }
        // Responses only after every request: a schema reached from both is
        // then linted (once) as input, with its bounds.
        for op in ops {
            self.response_schemas(op);
        }
    }

    fn operation_ids(&mut self, ops: &[Operation<'d>]) {
        let mut first: HashMap<&str, &str> = HashMap::new();
        for op in ops {
            match op.id.as_deref() {
                None | Some("") => self.report(
                    &OPERATION_ID_PRESENT,
                    op.pointer.as_str(),
                    format!("{} {} has no operationId", op.method, op.path),
                ),
                Some(id) => match first.get(id) {
                    Some(other) => self.report(
                        &OPERATION_ID_UNIQUE,
                        format!("{}/operationId", op.pointer),
                        format!("operationId {id:?} is also used by {other}"),
                    ),
                    None => {
                        first.insert(id, &op.pointer);
                    }
                },
            }
        }
    }

    /// The response-code rules, and problem+json for each error response.
    fn responses(&mut self, op: &Operation<'d>, secured: bool) {
        let responses = op.node.get("responses").and_then(Value::as_object);
        let at = match responses {
            Some(_) => format!("{}/responses", op.pointer),
            None => op.pointer.clone(),
        };
        let codes: Vec<&str> = responses
            .map(|r| r.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let has = |wanted: fn(&str) -> bool| codes.iter().any(|c| wanted(c));
        if secured && !has(|c| c == "401") {
            let message = "the operation requires credentials but documents no 401 response";
            self.report(&RESPONSE_401_DOCUMENTED, at.as_str(), message);
        }
        if !has(|c| c == "429") {
            let message = "no 429 response: callers cannot see how rate limiting looks";
            self.report(&RESPONSE_429_DOCUMENTED, at.as_str(), message);
        }
        if !has(|c| c.starts_with('5') || c == "default") {
            let message = "no 5xx, 5XX or default response documented";
            self.report(&RESPONSE_5XX_DOCUMENTED, at.as_str(), message);
        }
        if !has(|c| c.starts_with('2') || c.starts_with('3')) {
            let message = "no 2xx or 3xx response documented";
            self.report(&OPERATION_SUCCESS_RESPONSE, at.as_str(), message);
        }
        for (code, response) in responses.into_iter().flatten() {
            if is_error_code(code) {
                self.problem_json(response, &format!("{at}/{}", escape(code)));
            }
        }
    }

    /// An error response with content must offer RFC 9457 problem details.
    fn problem_json(&mut self, response: &'d Value, at: &str) {
        let Some((response, at)) = self.follow(response, at) else {
            return;
        };
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            return;
        };
        if content.is_empty()
            || content
                .keys()
                .any(|media| essence(media) == "application/problem+json")
        {
            return;
        }
        let offered: Vec<&str> = content.keys().map(String::as_str).collect();
        self.report(
            &ERROR_PROBLEM_JSON,
            format!("{at}/content"),
            format!(
                "error response is {} but not application/problem+json (RFC 9457)",
                offered.join(", ")
            ),
        );
    }

    /// Template names and `in: path` parameters must match one to one, and a
    /// path parameter must say `required: true` (OpenAPI demands it).
    fn path_parameters(&mut self, op: &Operation<'d>) {
        let item = child("", "paths", &op.path);
        let Some(names) = template_names(&op.path) else {
            let message = format!("path {} has an unbalanced {{ or }}", op.path);
            self.report(&PATH_PARAMETERS_DEFINED, item, message);
            return;
        };
        let declared: Vec<_> = op
            .parameters
            .iter()
            .filter(|p| p.location == "path")
            .collect();
        for name in &names {
            if !declared.iter().any(|p| p.name == *name) {
                let message =
                    format!("{{{name}}} is in the path but no `in: path` parameter names it");
                self.report(&PATH_PARAMETERS_DEFINED, op.pointer.as_str(), message);
            }
        }
        for p in declared {
            let at = self.parameter_pointer(&p.pointer);
            if !names.contains(&p.name.as_str()) {
                let message = format!("path parameter {} is not in the path {}", p.name, op.path);
                self.report(&PATH_PARAMETERS_DEFINED, at.as_str(), message);
            }
            if p.node.get("required").and_then(Value::as_bool) != Some(true) {
                let message = format!("path parameter {} must say `required: true`", p.name);
                self.report(&PATH_PARAMETERS_DEFINED, at, message);
            }
        }
    }

    /// Where a listed parameter really is (a component, if it is a `$ref`),
    /// so that a shared parameter is reported once.
    pub(super) fn parameter_pointer(&self, listed: &str) -> String {
        self.doc
            .root
            .pointer(listed)
            .and_then(|raw| self.locate(raw, listed).ok())
            .map_or_else(|| listed.to_string(), |(_, at)| at)
    }
}

/// 4xx and 5xx codes, their ranges, and `default` (which, beside explicit
/// success codes, describes errors).
fn is_error_code(code: &str) -> bool {
    code.starts_with('4') || code.starts_with('5') || code == "default"
}

/// A media type without parameters, lower case: `Application/JSON; q=1` ->
/// `application/json`.
fn essence(media: &str) -> String {
    media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The `{name}`s of a path template, or None if its braces do not pair up.
pub(super) fn template_names(template: &str) -> Option<Vec<&str>> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return None;
        }
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        if name.contains('{') {
            return None;
        }
        names.push(name);
        rest = &after[close + 1..];
    }
    Some(names)
}
