//! Schemas from a contract compiled for checking, and what their rules
//! ask, in words (for violations, which never repeat the value sent).

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value};

use crate::document::{ContractError, Document, OpenApiVersion};

/// What a keyword asks, in words, from the schema's side only.
pub(crate) fn describe(kind: &jsonschema::error::ValidationErrorKind) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match kind {
        K::Required { property } => format!("the property {property} is required"),
        K::AdditionalProperties { unexpected } => {
            format!("unexpected properties: {}", names(unexpected))
        }
        K::MaxLength { limit } => format!("at most {limit} characters"),
        K::MinLength { limit } => format!("at least {limit} characters"),
        K::MaxItems { limit } => format!("at most {limit} items"),
        K::MinItems { limit } => format!("at least {limit} items"),
        K::Maximum { limit } => format!("at most {limit}"),
        K::Minimum { limit } => format!("at least {limit}"),
        K::ExclusiveMaximum { limit } => format!("less than {limit}"),
        K::ExclusiveMinimum { limit } => format!("more than {limit}"),
        K::Type { kind } => format!("must be {}", type_names(kind)),
        K::Enum { options } => format!("must be one of {options}"),
        K::Constant { expected_value } => format!("must be {expected_value}"),
        K::Format { format } => format!("must be a valid {format}"),
        K::Pattern { pattern } => format!("must match {pattern}"),
        K::UniqueItems => "items must be unique".into(),
        K::MaxProperties { limit } => format!("at most {limit} properties"),
        K::MinProperties { limit } => format!("at least {limit} properties"),
        other => format!("does not satisfy `{}`", other.keyword()),
    }
}

/// Property names the caller sent, as a detail may show them: a few,
/// each shortened, control characters escaped.
fn names(unexpected: &[String]) -> String {
    const SHOWN: usize = 5;
    const LONGEST: usize = 64;
    let mut shown: Vec<String> = unexpected
        .iter()
        .take(SHOWN)
        .map(|n| {
            n.chars()
                .take(LONGEST)
                .flat_map(char::escape_debug)
                .collect()
        })
        .collect();
    if unexpected.len() > SHOWN {
        shown.push(format!("and {} more", unexpected.len() - SHOWN));
    }
    shown.join(", ")
}

fn type_names(kind: &jsonschema::error::TypeKind) -> String {
    use jsonschema::error::TypeKind;
    match kind {
        TypeKind::Single(t) => format!("of type {t}"),
        TypeKind::Multiple(set) => {
            let names: Vec<String> = set.iter().map(|t| t.to_string()).collect();
            format!("of type {}", names.join(" or "))
        }
    }
}

/// Compiles a schema found in the document: its local `$ref`s resolve
/// against the document's components; OpenAPI 3.0's `nullable` becomes a
/// `null` type (3.0 schemas are checked as JSON Schema draft 4, whose
/// boolean `exclusiveMaximum` they use; 3.1 schemas as 2020-12).
pub fn compile(doc: &Document, schema: &Value, at: &str) -> Result<Validator, ContractError> {
    let mut root = Map::new();
    if let Some(components) = doc.root.get("components") {
        root.insert("components".into(), components.clone());
    }
    root.insert("allOf".into(), Value::Array(vec![schema.clone()]));
    let mut root = Value::Object(root);
    let draft = match doc.version {
        OpenApiVersion::V3_0 => {
            nullable_to_type(&mut root);
            Draft::Draft4
        }
        OpenApiVersion::V3_1 => Draft::Draft202012,
    };
    jsonschema::options()
        .with_draft(draft)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| ContractError::Invalid {
            path: doc.path.display().to_string(),
            pointer: at.to_string(),
            message: format!("the schema does not compile: {e}"),
        })
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema: `null` added to `type`
/// (and to `enum`, which would otherwise still refuse it).
fn nullable_to_type(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(t) = map.get("type").and_then(Value::as_str).map(str::to_string) {
                    map.insert(
                        "type".into(),
                        Value::Array(vec![Value::String(t), Value::String("null".into())]),
                    );
                }
                if let Some(Value::Array(options)) = map.get_mut("enum")
                    && !options.contains(&Value::Null)
                {
                    options.push(Value::Null);
                }
            }
            map.values_mut().for_each(nullable_to_type);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_type),
        _ => {}
    }
}
