#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `contract lint` output: the text and JSON reports, exit status, and odd
//! documents that must give findings rather than panics.

#[path = "lint/support.rs"]
mod support;

use blastdoor_contract::lint::{self, Finding, Format, Severity};
use serde_json::{Value, json};
use support::*;

fn two_findings() -> Vec<Finding> {
    let mut v = good();
    remove(&mut v, &format!("{REQUEST}/properties/prompt/maxLength"));
    set(&mut v, &format!("{GET}/security"), json!([]));
    lint_with(&v, &[])
}

#[test]
fn text_format_lists_findings_errors_first_then_a_summary() {
    let findings = two_findings();
    assert!(lint::has_errors(&findings));
    assert_eq!(
        lint::render(&findings, Format::Text),
        "error  operation-security-defined  /paths/~1v1~1images~1{id}/get  GET /v1/images/{id}: \
         it has no security requirement (here or at the top level); require credentials, or mark \
         it `x-blastdoor-public: true`\n\
         warning  string-max-length  /components/schemas/ImageRequest/properties/prompt  input \
         string has no maxLength (or enum/const)\n\
         1 error, 1 warning\n"
    );
}

#[test]
fn json_format_counts_and_lists_findings() {
    let findings = two_findings();
    let out: Value = serde_json::from_str(&lint::render(&findings, Format::Json)).unwrap();
    assert_eq!(out["errors"], 1);
    assert_eq!(out["warnings"], 1);
    assert_eq!(
        out["findings"][1],
        json!({
            "rule": "string-max-length",
            "severity": "warning",
            "pointer": "/components/schemas/ImageRequest/properties/prompt",
            "message": "input string has no maxLength (or enum/const)",
        })
    );
    assert_eq!(out["findings"][0]["severity"], "error");
    assert_eq!("json".parse::<Format>(), Ok(Format::Json));
    assert_eq!("text".parse::<Format>(), Ok(Format::Text));
    assert!("yaml".parse::<Format>().is_err());
}

#[test]
fn warnings_alone_are_not_errors() {
    let findings: Vec<Finding> = two_findings()
        .into_iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    assert!(!lint::has_errors(&findings));
    assert!(lint::render(&findings, Format::Text).ends_with("0 errors, 1 warning\n"));
}

/// Nested `properties` this deep (the JSON parser's own limit is 128).
fn deep_schema(levels: usize) -> Value {
    let mut schema = json!({"type": "string"});
    for _ in 0..levels {
        schema = json!({"type": "object", "properties": {"x": schema}});
    }
    schema
}

#[test]
fn odd_documents_give_findings_not_panics() {
    let documents = [
        json!({"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": 5, "security": "x", "parameters": []}}}}),
        json!({"openapi": "3.1.0", "paths": {"/a": {"post": {
            "requestBody": 3,
            "responses": {"200": {"content": {"a/b": {"schema": {"properties": [], "items": "x", "allOf": 5, "type": 7}}}}, "500": 4}
        }}}, "servers": [{"url": 3}, "x"], "components": {"schemas": 5, "securitySchemes": []}}),
        json!({"openapi": "3.0.0", "paths": {"/{a}/{": {}, "/b": {"$ref": "#/paths/~1b"}, "}": {}}}),
        json!({"openapi": "3.1.0", "paths": {}, "x-blastdoor-lint": {"disable": [3, null]}, "security": [[], "x", {}]}),
        json!({"openapi": "3.1.0", "paths": {"/a": {"put": {
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#"}}}},
            "parameters": [{"name": "id", "in": "query", "content": {"x/y": {"schema": {"$ref": "#/paths"}}}}]
        }}}}),
        json!({"openapi": "3.1.0", "paths": {"/a": {"post": {
            "requestBody": {"content": {"application/json": {"schema": deep_schema(50)}}}
        }}}}),
        json!({"openapi": "3.1.0", "paths": {"/ü/{é}": {"get": {"parameters": [{"name": "é", "in": "path"}]}}},
            "servers": [{"url": "http://[::1"}, {"url": "http://@"}, {"url": "{"}]}),
        json!({"openapi": "3.1.0", "paths": {"/b/{id}": {"$ref": "#/components/pathItems/B"}},
            "components": {"pathItems": {"B": {"get": {"parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}]}}}}}),
    ];
    for document in documents {
        let findings = lint_with(&document, &[]);
        for format in [Format::Text, Format::Json] {
            assert!(!lint::render(&findings, format).is_empty());
        }
    }
}
