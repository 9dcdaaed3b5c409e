//! An operation's signature: the words that say what it does, for finding
//! near-duplicate operations across services.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::document::{Document, Operation};
use crate::validate::is_json;

/// Its method, literal path segments, parameter names and the top-level
/// properties of its JSON request and success response.
pub(crate) fn signature(doc: &Document, op: &Operation<'_>) -> BTreeSet<String> {
    let mut tokens = BTreeSet::new();
    tokens.insert(format!("method:{}", op.method));
    for segment in op
        .path
        .split('/')
        .filter(|s| !s.is_empty() && !s.contains('{'))
    {
        tokens.insert(format!("path:{}", segment.to_ascii_lowercase()));
    }
    for p in &op.parameters {
        tokens.insert(format!("param:{}", p.name.to_ascii_lowercase()));
    }
    if let Some(schema) = json_schema(doc, op.node.get("requestBody")) {
        for name in property_names(doc, schema, 0) {
            tokens.insert(format!("in:{name}"));
        }
    }
    let success = op
        .node
        .get("responses")
        .and_then(Value::as_object)
        .and_then(|r| {
            r.iter()
                .find(|(code, _)| code.starts_with('2'))
                .map(|(_, v)| v)
        });
    if let Some(schema) = json_schema(doc, success) {
        for name in property_names(doc, schema, 0) {
            tokens.insert(format!("out:{name}"));
        }
    }
    tokens
}

/// The JSON schema of a request body or response, if it has one.
fn json_schema<'d>(doc: &'d Document, holder: Option<&'d Value>) -> Option<&'d Value> {
    let holder = doc.resolve(holder?, "").ok()?;
    let content = holder.get("content")?.as_object()?;
    content
        .iter()
        .find(|(media, _)| is_json(&media.to_ascii_lowercase()))
        .and_then(|(_, entry)| entry.get("schema"))
}

/// A schema's top-level property names, through `$ref`s and `allOf`.
fn property_names(doc: &Document, schema: &Value, depth: usize) -> Vec<String> {
    let Ok(schema) = doc.resolve(schema, "") else {
        return Vec::new();
    };
    if depth > 8 {
        return Vec::new();
    }
    let mut names: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        names.extend(property_names(doc, part, depth + 1));
    }
    names
}
