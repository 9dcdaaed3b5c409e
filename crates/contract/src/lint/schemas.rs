//! Schema rules: bounded inputs (strings, arrays, numbers) and objects
//! closed or open on purpose. Schemas are walked from parameters, request
//! bodies and responses through `$ref`s; each is linted once, at its own
//! pointer.

use serde_json::Value;

use super::{
    ARRAY_MAX_ITEMS, INTEGER_MAXIMUM, Linter, OBJECT_CLOSED, STRING_MAX_LENGTH, child, entries,
};
use crate::document::{OpenApiVersion, Operation, escape};

/// Nesting followed before giving up on a schema: deeper than any real
/// contract, shallow enough for the stack.
const MAX_DEPTH: usize = 64;

/// `allOf` levels searched for a bound.
const MAX_ALL_OF_DEPTH: usize = 8;

/// Keywords holding one schema (or, for old-style tuple `items`, a list).
const SINGLE: [&str; 5] = [
    "items",
    "additionalProperties",
    "unevaluatedProperties",
    "then",
    "else",
];
/// Keywords holding a list of schemas.
const LISTS: [&str; 4] = ["allOf", "oneOf", "anyOf", "prefixItems"];
/// Keywords holding a map of names to schemas.
const MAPS: [&str; 3] = ["properties", "patternProperties", "dependentSchemas"];

/// Where a schema sits: what the service receives is held to bounds.
#[derive(Debug, Clone, Copy)]
struct Place {
    input: bool,
    /// An inline `allOf` member: its closedness belongs to the composition.
    all_of_member: bool,
    depth: usize,
}

impl<'d> Linter<'d> {
    pub(super) fn parameter_schemas(&mut self, op: &Operation<'d>) {
        let doc = self.doc;
        for p in &op.parameters {
            // The listed pointer names nothing when the path item is itself a
            // $ref; the parameter is then linted where it was listed.
            let found = match doc.root.pointer(&p.pointer) {
                Some(raw) => self.follow(raw, &p.pointer),
                None => Some((p.node, p.pointer.clone())),
            };
            let Some((node, at)) = found else {
                continue;
            };
            if !self.seen.insert(at.clone()) {
                continue;
            }
            if let Some(schema) = node.get("schema") {
                self.schema(schema, &format!("{at}/schema"), input());
            }
            self.content_schemas(node, &at, true);
        }
    }

    pub(super) fn request_body(&mut self, op: &Operation<'d>) {
        let Some(body) = op.node.get("requestBody") else {
            return;
        };
        let Some((body, at)) = self.follow(body, &format!("{}/requestBody", op.pointer)) else {
            return;
        };
        if self.seen.insert(at.clone()) {
            self.content_schemas(body, &at, true);
        }
    }

    pub(super) fn response_schemas(&mut self, op: &Operation<'d>) {
        let at = format!("{}/responses", op.pointer);
        for (code, response) in entries(op.node, "responses") {
            let Some((response, at)) = self.follow(response, &format!("{at}/{}", escape(code)))
            else {
                continue;
            };
            if self.seen.insert(at.clone()) {
                self.content_schemas(response, &at, false);
            }
        }
    }

    /// Component schemas no operation reached, linted as output (no bounds).
    pub(super) fn component_schemas(&mut self) {
        let doc = self.doc;
        let Some(components) = doc.root.get("components") else {
            return;
        };
        for (name, schema) in entries(components, "schemas") {
            let output = Place {
                input: false,
                ..input()
            };
            self.schema(schema, &child("/components", "schemas", name), output);
        }
    }

    /// The schema of each media type under `content`.
    fn content_schemas(&mut self, holder: &'d Value, at: &str, is_input: bool) {
        for (media, item) in entries(holder, "content") {
            if let Some(schema) = item.get("schema") {
                let place = Place {
                    input: is_input,
                    ..input()
                };
                self.schema(
                    schema,
                    &format!("{}/schema", child(at, "content", media)),
                    place,
                );
            }
        }
    }

    fn schema(&mut self, node: &'d Value, at: &str, place: Place) {
        if place.depth > MAX_DEPTH {
            return;
        }
        let Some((node, pointer)) = self.follow(node, at) else {
            return;
        };
        // Reached through a $ref, a schema stands on its own.
        let all_of_member = place.all_of_member && pointer == at;
        if !self.seen.insert(pointer.clone()) || !node.is_object() {
            return;
        }
        let input = place.input && node.get("readOnly").and_then(Value::as_bool) != Some(true);
        if input {
            self.bounds(node, &pointer);
        }
        if !all_of_member {
            self.closed(node, &pointer);
        }
        let inner = Place {
            input,
            all_of_member: false,
            depth: place.depth + 1,
        };
        self.subschemas(node, &pointer, inner);
    }

    fn subschemas(&mut self, node: &'d Value, at: &str, inner: Place) {
        for key in SINGLE {
            match node.get(key) {
                Some(Value::Array(list)) => self.schema_list(list, &format!("{at}/{key}"), inner),
                Some(one @ Value::Object(_)) => self.schema(one, &format!("{at}/{key}"), inner),
                _ => {}
            }
        }
        for key in LISTS {
            if let Some(list) = node.get(key).and_then(Value::as_array) {
                let member = Place {
                    all_of_member: key == "allOf",
                    ..inner
                };
                self.schema_list(list, &format!("{at}/{key}"), member);
            }
        }
        for key in MAPS {
            for (name, schema) in entries(node, key) {
                self.schema(schema, &child(at, key, name), inner);
            }
        }
    }

    fn schema_list(&mut self, list: &'d [Value], at: &str, place: Place) {
        for (i, schema) in list.iter().enumerate() {
            self.schema(schema, &format!("{at}/{i}"), place);
        }
    }

    /// Bounds on an input schema, by its declared type(s).
    fn bounds(&mut self, node: &'d Value, at: &str) {
        if node.get("enum").is_some() || node.get("const").is_some() {
            return;
        }
        let types = declared_types(node);
        let is_binary = node.get("format").and_then(Value::as_str) == Some("binary");
        if types.contains(&"string") && !is_binary && !self.bounded(node, &["maxLength"], 0) {
            let message = "input string has no maxLength (or enum/const)";
            self.report(&STRING_MAX_LENGTH, at, message);
        }
        if types.contains(&"array") && !self.bounded(node, &["maxItems"], 0) {
            let message = "input array has no maxItems (or enum/const)";
            self.report(&ARRAY_MAX_ITEMS, at, message);
        }
        let number = types.iter().find(|t| matches!(**t, "integer" | "number"));
        if let Some(number) = number {
            // In 3.0 exclusiveMaximum is a flag on maximum; only a number bounds.
            if !self.bounded(node, &["maximum", "exclusiveMaximum"], 0) {
                let message = format!("input {number} has no maximum (or enum/const)");
                self.report(&INTEGER_MAXIMUM, at, message);
            }
        }
    }

    /// Whether the schema, or a member of its `allOf`, sets one of `keywords`
    /// to a number (or is an enum or const).
    fn bounded(&self, node: &Value, keywords: &[&str], depth: usize) -> bool {
        if keywords
            .iter()
            .any(|k| node.get(*k).is_some_and(Value::is_number))
            || node.get("enum").is_some()
            || node.get("const").is_some()
        {
            return true;
        }
        if depth >= MAX_ALL_OF_DEPTH {
            return false;
        }
        let members = node.get("allOf").and_then(Value::as_array);
        members.into_iter().flatten().any(|m| {
            self.locate(m, "")
                .is_ok_and(|(m, _)| self.bounded(m, keywords, depth + 1))
        })
    }

    /// An object with properties but no word on others accepts anything
    /// else by accident: a typo in a field name passes validation.
    fn closed(&mut self, node: &Value, at: &str) {
        if !node.get("properties").is_some_and(Value::is_object)
            || node.get("additionalProperties").is_some()
        {
            return;
        }
        if self.doc.version == OpenApiVersion::V3_1 && node.get("unevaluatedProperties").is_some() {
            return;
        }
        let message = "object has properties but no additionalProperties: say false to close it, or true to keep it open";
        self.report(&OBJECT_CLOSED, at, message);
    }
}

/// A parameter or request body: input, at the top.
fn input() -> Place {
    Place {
        input: true,
        all_of_member: false,
        depth: 0,
    }
}

/// `type: string` or, in 3.1, `type: [string, "null"]`.
fn declared_types(node: &Value) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}
