//! `blastdoor contract lint`: an API-standards ruleset for a service's
//! contract, in the spirit of Spectral's OpenAPI rules and its OWASP API
//! security ruleset. Every rule has a stable id (in [`RULES`]), a severity and
//! a one-line summary; a finding names the rule and the place in the document
//! by JSON pointer.
//!
//! # Severities
//! An **error** means the contract is wrong or unsafe as written, and fails CI
//! (`has_errors`, exit 1): a structural problem, an operation without an
//! operationId (the gateway names operations in metrics, usage and key
//! scopes) or with a duplicate one, an operation that is neither secured nor
//! explicitly public, an undefined security scheme, credentials in a query
//! string, a non-https server, path parameters that do not match the template.
//!
//! A **warning** is a hardening or consistency gap: unbounded inputs, objects
//! open by accident, undocumented 401/429/5xx responses, errors that are not
//! problem+json, no success response, inconsistent path style. The bounds
//! rules are warnings, not errors, because the gateway already caps request
//! bodies, so a missing `maxLength` lets a caller send a large field but never
//! an unlimited one, and because third-party contracts (an OpenAI-compatible
//! service, say) rarely state bounds and must still be usable.
//!
//! # Decisions
//! - **Public operations**: an operation is secured when its `security` (or,
//!   without one, the top-level `security`) is a non-empty list of non-empty
//!   requirements. Anything else lets anonymous callers in, and is accepted
//!   only with `x-blastdoor-public: true` on the operation, so that a stray
//!   `security: []` or `{}` cannot open an operation unnoticed. Under a
//!   top-level requirement a public operation also needs `security: []`; the
//!   mark on an operation that still requires credentials is flagged as a
//!   contradiction.
//! - **Bounds** (`maxLength`, `maxItems`, `maximum`) are checked on what the
//!   service receives: parameters and request bodies, and every schema they
//!   reach. Response schemas are walked for the other schema rules only: an
//!   unbounded string in a response costs the caller nothing. A bound may come
//!   from `enum`, `const`, or an `allOf` member; `readOnly` schemas are not
//!   input; `format: binary` strings (file uploads) are exempt, their size is
//!   the body cap's job.
//! - **Closed objects**: a schema with `properties` must say
//!   `additionalProperties` (false to close, true or a schema to stay open;
//!   in 3.1 `unevaluatedProperties` also counts). Inline `allOf` members are
//!   not checked, since closing a member rejects its siblings' properties.
//! - **401 and 429** must be documented by their exact codes (a `4XX` range
//!   says nothing about `Retry-After` or a credential problem); 5xx is
//!   satisfied by any 5xx code, `5XX` or `default`.
//! - **Path style**: the literal words of all path segments share one style
//!   (kebab-case, snake_case, camelCase or PascalCase; a single lower-case word
//!   fits any). The style most segments use wins, ties going to the earlier
//!   one in that list. `.` and `:` separate words (`openapi.json`, `{id}:cancel`).
//! - Each component schema is linted once, at its own pointer; `$ref` cycles
//!   end there. A contract can switch rules off itself with
//!   `x-blastdoor-lint: { disable: [rule-id, ...] }` at the top level, besides
//!   the `disabled` list the caller passes (e.g. from the service's config).
//!
//! Not checked: `webhooks` and `callbacks`, response headers, external
//! `$ref`s (reported as unsupported), and schemas under `not`, `if`,
//! `contains` and `propertyNames` (they constrain by exclusion or condition,
//! so a bound there does not bound the value).

mod operations;
mod paths;
mod render;
mod schemas;
mod security;

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use crate::document::{ContractError, Document, escape};

pub use render::{Format, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable: users switch rules off by id.
    pub id: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

const fn rule_of(id: &'static str, severity: Severity, summary: &'static str) -> Rule {
    Rule {
        id,
        severity,
        summary,
    }
}

use Severity::{Error, Warning};

const DOCUMENT_VALID: Rule = rule_of(
    "document-valid",
    Error,
    "the document can be read: $refs resolve, operations can be listed",
);
const OPERATION_ID_PRESENT: Rule = rule_of(
    "operation-id-present",
    Error,
    "every operation has an operationId",
);
const OPERATION_ID_UNIQUE: Rule = rule_of(
    "operation-id-unique",
    Error,
    "no two operations share an operationId",
);
const OPERATION_SECURITY_DEFINED: Rule = rule_of(
    "operation-security-defined",
    Error,
    "every operation requires credentials or is marked x-blastdoor-public: true",
);
const SECURITY_SCHEME_DEFINED: Rule = rule_of(
    "security-scheme-defined",
    Error,
    "security requirements name schemes defined in components.securitySchemes",
);
const NO_CREDENTIALS_IN_QUERY: Rule = rule_of(
    "no-credentials-in-query",
    Error,
    "no credentials in query parameters or apiKey schemes in the query",
);
const SERVERS_HTTPS: Rule = rule_of(
    "servers-https",
    Error,
    "server URLs use https (plain http only for localhost)",
);
const PATH_PARAMETERS_DEFINED: Rule = rule_of(
    "path-parameters-defined",
    Error,
    "every {param} in a path template is a required path parameter, and vice versa",
);
const STRING_MAX_LENGTH: Rule = rule_of(
    "string-max-length",
    Warning,
    "input strings have maxLength (or enum/const)",
);
const ARRAY_MAX_ITEMS: Rule = rule_of(
    "array-max-items",
    Warning,
    "input arrays have maxItems (or enum/const)",
);
const INTEGER_MAXIMUM: Rule = rule_of(
    "integer-maximum",
    Warning,
    "input integers and numbers have a maximum (or enum/const)",
);
const OBJECT_CLOSED: Rule = rule_of(
    "object-closed",
    Warning,
    "objects with properties say additionalProperties: closed, or open on purpose",
);
const RESPONSE_401_DOCUMENTED: Rule = rule_of(
    "response-401-documented",
    Warning,
    "secured operations document a 401 response",
);
const RESPONSE_429_DOCUMENTED: Rule = rule_of(
    "response-429-documented",
    Warning,
    "operations document a 429 response",
);
const RESPONSE_5XX_DOCUMENTED: Rule = rule_of(
    "response-5xx-documented",
    Warning,
    "operations document a 5xx (or 5XX, or default) response",
);
const OPERATION_SUCCESS_RESPONSE: Rule = rule_of(
    "operation-success-response",
    Warning,
    "operations document a 2xx or 3xx response",
);
const ERROR_PROBLEM_JSON: Rule = rule_of(
    "error-problem-json",
    Warning,
    "4xx, 5xx and default responses with content offer application/problem+json",
);
const PATH_STYLE_CONSISTENT: Rule = rule_of(
    "path-style-consistent",
    Warning,
    "path segments share one word style; no trailing slashes or empty segments",
);

/// Every rule, errors first.
pub const RULES: &[Rule] = &[
    DOCUMENT_VALID,
    OPERATION_ID_PRESENT,
    OPERATION_ID_UNIQUE,
    OPERATION_SECURITY_DEFINED,
    SECURITY_SCHEME_DEFINED,
    NO_CREDENTIALS_IN_QUERY,
    SERVERS_HTTPS,
    PATH_PARAMETERS_DEFINED,
    STRING_MAX_LENGTH,
    ARRAY_MAX_ITEMS,
    INTEGER_MAXIMUM,
    OBJECT_CLOSED,
    RESPONSE_401_DOCUMENTED,
    RESPONSE_429_DOCUMENTED,
    RESPONSE_5XX_DOCUMENTED,
    OPERATION_SUCCESS_RESPONSE,
    ERROR_PROBLEM_JSON,
    PATH_STYLE_CONSISTENT,
];

/// The rule with this id, e.g. to check a list of rules to switch off.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// JSON pointer into the document.
    pub pointer: String,
    pub message: String,
}

/// Whether any finding is an error: the exit code of `contract lint`.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// Lints `doc` with every rule except those whose ids are in `disabled` or in
/// the document's own `x-blastdoor-lint.disable`. Findings come errors first,
/// then by pointer; never panics, whatever the document holds.
pub fn lint(doc: &Document, disabled: &[String]) -> Vec<Finding> {
    let mut linter = Linter::new(doc, disabled);
    linter.servers();
    linter.security_schemes();
    linter.top_level_security();
    linter.path_style();
    match doc.operations() {
        Ok(ops) => linter.operations(&ops),
        Err(e) => linter.contract_error(e),
    }
    linter.component_schemas();
    linter.finish()
}

/// `$ref` hops followed before a chain is called a loop (as `Document` does).
const MAX_REF_HOPS: usize = 32;

struct Linter<'d> {
    doc: &'d Document,
    disabled: Vec<String>,
    findings: Vec<Finding>,
    /// Pointers of the schemas, parameters, request bodies and responses
    /// already linted: each is linted once, and `$ref` cycles stop here.
    seen: HashSet<String>,
}

impl<'d> Linter<'d> {
    fn new(doc: &'d Document, disabled: &[String]) -> Linter<'d> {
        let mut linter = Linter {
            doc,
            disabled: disabled.to_vec(),
            findings: Vec::new(),
            seen: HashSet::new(),
        };
        linter.document_switches();
        linter
    }

    /// Adds the document's own `x-blastdoor-lint.disable` list; an unknown id
    /// there is an error, since a typo would leave the rule on unnoticed.
    fn document_switches(&mut self) {
        let at = "/x-blastdoor-lint/disable";
        let Some(list) = self.doc.root.pointer(at) else {
            return;
        };
        let Some(list) = list.as_array() else {
            self.report(&DOCUMENT_VALID, at, "must be a list of rule ids");
            return;
        };
        let mut unknown = Vec::new();
        for (i, id) in list.iter().enumerate() {
            match id.as_str() {
                Some(id) if rule(id).is_some() => self.disabled.push(id.to_string()),
                _ => unknown.push((format!("{at}/{i}"), id.to_string())),
            }
        }
        for (pointer, id) in unknown {
            self.report(
                &DOCUMENT_VALID,
                pointer,
                format!("no lint rule has the id {id}"),
            );
        }
    }

    fn report(
        &mut self,
        rule: &'static Rule,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) {
        if self.disabled.iter().any(|d| d == rule.id) {
            return;
        }
        self.findings.push(Finding {
            rule: rule.id,
            severity: rule.severity,
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    fn contract_error(&mut self, error: ContractError) {
        match error {
            ContractError::Invalid {
                pointer, message, ..
            } => self.report(&DOCUMENT_VALID, pointer, message),
            other => self.report(&DOCUMENT_VALID, "", other.to_string()),
        }
    }

    /// Follows `$ref`s from `node` (at `at`) to what they name, with its
    /// pointer; quietly gives up on a broken reference.
    fn locate(&self, node: &'d Value, at: &str) -> Result<(&'d Value, String), String> {
        let mut current = node;
        let mut pointer = at.to_string();
        for _ in 0..MAX_REF_HOPS {
            let Some(target) = current.get("$ref").and_then(Value::as_str) else {
                return Ok((current, pointer));
            };
            let Some(fragment) = target.strip_prefix('#') else {
                return Err(format!(
                    "$ref {target:?} points outside the document (only local #/ references are supported)"
                ));
            };
            let Some(next) = self.doc.root.pointer(fragment) else {
                return Err(format!("$ref {target:?} names nothing in the document"));
            };
            current = next;
            pointer = fragment.to_string();
        }
        Err("$ref chain loops".to_string())
    }

    /// [`Linter::locate`], reporting a broken reference.
    fn follow(&mut self, node: &'d Value, at: &str) -> Option<(&'d Value, String)> {
        match self.locate(node, at) {
            Ok(found) => Some(found),
            Err(message) => {
                self.report(&DOCUMENT_VALID, at, message);
                None
            }
        }
    }

    /// Sorted (errors first, then by place) and without repeats: a shared
    /// parameter or response is met once per operation that uses it.
    fn finish(mut self) -> Vec<Finding> {
        self.findings.sort_by(|a, b| {
            (a.severity, &a.pointer, a.rule, &a.message)
                .cmp(&(b.severity, &b.pointer, b.rule, &b.message))
        });
        self.findings.dedup();
        self.findings
    }
}

/// The entries of an object member, or nothing if it is absent or no object.
fn entries<'v>(node: &'v Value, key: &str) -> impl Iterator<Item = (&'v String, &'v Value)> {
    node.get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|map| map.iter())
}

/// `{at}/{key}/{name}` for each entry of an object member.
fn child(at: &str, key: &str, name: &str) -> String {
    format!("{at}/{key}/{}", escape(name))
}
