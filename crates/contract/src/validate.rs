//! Requests checked against an operation: path, query and header
//! parameters (strings coerced to the schema's type first) and the JSON
//! body. A violation names where it is, the field and the rule it breaks,
//! never the offending value (it may be a secret).

use std::collections::BTreeSet;
use std::fmt;

use jsonschema::Validator;
use serde_json::Value;

use crate::document::{ContractError, Document, Operation, Parameter};
use crate::schema::{compile, describe};
use crate::signature::signature;

/// Violations reported per request, at most.
pub(crate) const MAX_VIOLATIONS: usize = 5;

/// Where in the request a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Path,
    Query,
    Header,
    Body,
    /// A response (status, content type or body) the gateway sampled.
    Response,
}

impl Place {
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Path => "path parameter",
            Place::Query => "query parameter",
            Place::Header => "header",
            Place::Body => "body",
            Place::Response => "response",
        }
    }
}

/// One way a request breaks its operation's contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub place: Place,
    /// The parameter's name, or the JSON pointer in the body ("" for the
    /// body as a whole).
    pub field: String,
    /// The rule broken: a JSON Schema keyword, or `required`,
    /// `content-type`, `json`.
    pub rule: String,
    /// What the rule asks, without the value sent.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.place, self.field.as_str()) {
            (Place::Body, "") => write!(f, "body")?,
            (Place::Body, field) => write!(f, "body field {field}")?,
            (Place::Response, "") => write!(f, "response")?,
            (Place::Response, field) => write!(f, "response field {field}")?,
            (place, field) => write!(f, "{} `{field}`", place.as_str())?,
        }
        write!(f, " breaks `{}`: {}", self.rule, self.detail)
    }
}

/// A parameter ready to check.
#[derive(Debug)]
struct ParamCheck {
    name: String,
    place: Place,
    required: bool,
    /// What the string is turned into before the schema sees it.
    shape: Shape,
    schema: Option<Validator>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    String,
    Integer,
    Number,
    Boolean,
    /// Repeated keys (or comma-separated with `explode: false`).
    Array {
        items: ItemShape,
        explode: bool,
    },
    /// Not checked (objects in query strings and the like).
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemShape {
    String,
    Integer,
    Number,
    Boolean,
}

/// The request body an operation takes.
#[derive(Debug)]
struct BodyCheck {
    required: bool,
    /// Media types listed, lower case (`application/json`, `*/*`...).
    media_types: Vec<String>,
    /// The JSON body's schema, if one of the media types is JSON.
    json: Option<Validator>,
}

/// One operation, compiled.
#[derive(Debug)]
pub struct CompiledOperation {
    /// Its place in [`crate::Contract::operations`].
    pub index: usize,
    /// The `operationId`, or `METHOD /template` when it has none: the
    /// `operation` label in metrics and the ledger.
    pub id: String,
    pub method: String,
    pub path: String,
    pub deprecated: bool,
    /// For a deprecated operation: when (`x-deprecated-at`) and until when
    /// (`x-sunset`) as Unix seconds, from dates like "2027-03-31".
    pub deprecated_at: Option<i64>,
    pub sunset: Option<i64>,
    /// What the operation looks like, for finding near-duplicates across
    /// services: its method, literal path segments, parameter names and
    /// the top-level properties of its JSON request and success response.
    pub signature: BTreeSet<String>,
    params: Vec<ParamCheck>,
    body: Option<BodyCheck>,
    /// Documented responses, most specific status first.
    responses: Vec<crate::response::ResponseCheck>,
}

/// What a request looks like to the validator.
pub struct RequestView<'r> {
    pub path_params: &'r [(String, String)],
    /// The raw query string, without `?`.
    pub query: Option<&'r str>,
    pub header: &'r dyn Fn(&str) -> Option<&'r str>,
    pub content_type: Option<&'r str>,
    /// The whole body, if it was read (None: not read; it is then not
    /// checked).
    pub body: Option<&'r [u8]>,
}

impl CompiledOperation {
    pub fn compile(
        doc: &Document,
        op: &Operation<'_>,
        index: usize,
    ) -> Result<CompiledOperation, ContractError> {
        let params = op
            .parameters
            .iter()
            .filter(|p| p.location != "cookie")
            .map(|p| param_check(doc, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompiledOperation {
            index,
            id: op
                .id
                .clone()
                .unwrap_or_else(|| format!("{} {}", op.method, op.path)),
            method: op.method.clone(),
            path: op.path.clone(),
            deprecated: op.node.get("deprecated").and_then(Value::as_bool) == Some(true),
            deprecated_at: date_field(doc, op, "x-deprecated-at")?,
            sunset: date_field(doc, op, "x-sunset")?,
            signature: signature(doc, op),
            params,
            body: body_check(doc, op)?,
            responses: crate::response::compile(doc, op)?,
        })
    }

    /// Whether the contract says anything about this operation's
    /// responses (else sampling them is pointless).
    pub fn documents_responses(&self) -> bool {
        !self.responses.is_empty()
    }

    /// A response's violations: a status the operation does not document,
    /// a media type it does not list, a JSON body its schema refuses.
    /// `body` None: not captured (too large); only the head is checked.
    pub fn check_response(
        &self,
        status: u16,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Vec<Violation> {
        crate::response::check(&self.responses, status, content_type, body)
    }

    /// Whether checking this operation needs the whole request body.
    pub fn wants_body(&self) -> bool {
        self.body.as_ref().is_some_and(|b| b.json.is_some())
    }

    /// The request's violations (at most a few; empty: it conforms).
    pub fn check(&self, req: &RequestView<'_>) -> Vec<Violation> {
        let mut out = Vec::new();
        let query: Vec<(String, String)> = req
            .query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        for p in &self.params {
            let values: Vec<&str> = match p.place {
                Place::Path => req
                    .path_params
                    .iter()
                    .filter(|(n, _)| *n == p.name)
                    .map(|(_, v)| v.as_str())
                    .collect(),
                Place::Query => query
                    .iter()
                    .filter(|(n, _)| *n == p.name)
                    .map(|(_, v)| v.as_str())
                    .collect(),
                Place::Header => (req.header)(&p.name).into_iter().collect(),
                Place::Body | Place::Response => Vec::new(),
            };
            check_param(p, &values, &mut out);
        }
        if let Some(body) = &self.body {
            check_body(body, req, &mut out);
        }
        out.truncate(MAX_VIOLATIONS);
        out
    }
}

/// An extension holding a calendar date ("2027-03-31"), as Unix seconds at
/// its UTC midnight.
fn date_field(doc: &Document, op: &Operation<'_>, key: &str) -> Result<Option<i64>, ContractError> {
    let Some(v) = op.node.get(key) else {
        return Ok(None);
    };
    match v.as_str().and_then(crate::calendar::parse_date) {
        Some(secs) => Ok(Some(secs)),
        None => Err(ContractError::Invalid {
            path: doc.path.display().to_string(),
            pointer: format!("{}/{key}", op.pointer),
            message: format!("{key} must be a date like \"2027-03-31\""),
        }),
    }
}

fn param_check(doc: &Document, p: &Parameter<'_>) -> Result<ParamCheck, ContractError> {
    let place = match p.location.as_str() {
        "path" => Place::Path,
        "query" => Place::Query,
        _ => Place::Header,
    };
    let explode = p
        .node
        .get("explode")
        .and_then(Value::as_bool)
        .unwrap_or(p.location != "path" && p.location != "header");
    let shape = p
        .schema
        .map_or(Shape::String, |s| shape_of(doc, s, explode));
    let schema = match p.schema {
        Some(s) if shape != Shape::Opaque => {
            Some(compile(doc, s, &format!("{}/schema", p.pointer))?)
        }
        _ => None,
    };
    Ok(ParamCheck {
        name: p.name.clone(),
        place,
        required: p.required,
        shape,
        schema,
    })
}

fn type_of<'a>(doc: &'a Document, schema: &'a Value) -> Option<&'a str> {
    let schema = doc.resolve(schema, "").ok()?;
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // 3.1: ["integer", "null"] and the like.
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn shape_of(doc: &Document, schema: &Value, explode: bool) -> Shape {
    let item = |t: Option<&str>| match t {
        Some("integer") => ItemShape::Integer,
        Some("number") => ItemShape::Number,
        Some("boolean") => ItemShape::Boolean,
        _ => ItemShape::String,
    };
    match type_of(doc, schema) {
        Some("integer") => Shape::Integer,
        Some("number") => Shape::Number,
        Some("boolean") => Shape::Boolean,
        Some("array") => {
            let items = doc
                .resolve(schema, "")
                .ok()
                .and_then(|s| s.get("items"))
                .and_then(|i| type_of(doc, i));
            Shape::Array {
                items: item(items),
                explode,
            }
        }
        Some("object") => Shape::Opaque,
        _ => Shape::String,
    }
}

fn check_param(p: &ParamCheck, values: &[&str], out: &mut Vec<Violation>) {
    let violation = |rule: &str, detail: String| Violation {
        place: p.place,
        field: p.name.clone(),
        rule: rule.to_string(),
        detail,
    };
    if values.is_empty() {
        if p.required {
            out.push(violation("required", "it is required and missing".into()));
        }
        return;
    }
    let Some(schema) = &p.schema else { return };
    let value = match coerce(p.shape, values) {
        Ok(v) => v,
        Err(expected) => {
            out.push(violation("type", format!("must be {expected}")));
            return;
        }
    };
    if let Some(e) = schema.iter_errors(&value).next() {
        out.push(violation(e.kind().keyword(), describe(e.kind())));
    }
}

/// Turns a parameter's string(s) into the JSON the schema expects; Err
/// names the type it should have been.
fn coerce(shape: Shape, values: &[&str]) -> Result<Value, &'static str> {
    let one = |item: ItemShape, s: &str| -> Result<Value, &'static str> {
        match item {
            ItemShape::String => Ok(Value::String(s.to_string())),
            ItemShape::Integer => s.parse::<i64>().map(Value::from).map_err(|_| "an integer"),
            ItemShape::Number => s
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or("a number"),
            ItemShape::Boolean => match s {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err("true or false"),
            },
        }
    };
    let last = values.last().copied().unwrap_or_default();
    match shape {
        Shape::String | Shape::Opaque => one(ItemShape::String, last),
        Shape::Integer => one(ItemShape::Integer, last),
        Shape::Number => one(ItemShape::Number, last),
        Shape::Boolean => one(ItemShape::Boolean, last),
        Shape::Array { items, explode } => {
            // `explode: false` joins the items with commas, so an empty
            // array is an empty value (`tags=`), not one empty item.
            let parts: Vec<&str> = if explode {
                values.to_vec()
            } else if last.is_empty() {
                Vec::new()
            } else {
                last.split(',').collect()
            };
            parts
                .into_iter()
                .map(|s| one(items, s))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
    }
}

fn body_check(doc: &Document, op: &Operation<'_>) -> Result<Option<BodyCheck>, ContractError> {
    let Some(body) = op.node.get("requestBody") else {
        return Ok(None);
    };
    let at = format!("{}/requestBody", op.pointer);
    let body = doc.resolve(body, &at)?;
    let content = body.get("content").and_then(Value::as_object);
    let mut json = None;
    let mut media_types = Vec::new();
    for (media, entry) in content.into_iter().flatten() {
        let media = media.to_ascii_lowercase();
        if json.is_none()
            && is_json(&media)
            && let Some(schema) = entry.get("schema")
        {
            let pointer = format!("{at}/content/{}/schema", crate::document::escape(&media));
            json = Some(compile(doc, schema, &pointer)?);
        }
        media_types.push(media);
    }
    Ok(Some(BodyCheck {
        required: body.get("required").and_then(Value::as_bool) == Some(true),
        media_types,
        json,
    }))
}

pub(crate) fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

pub(crate) fn media_matches(listed: &str, sent: &str) -> bool {
    let sent = sent
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let listed = listed.split(';').next().unwrap_or("").trim();
    listed == "*/*"
        || listed == sent
        || listed
            .strip_suffix("/*")
            .is_some_and(|main| sent.split('/').next() == Some(main))
}

fn check_body(body: &BodyCheck, req: &RequestView<'_>, out: &mut Vec<Violation>) {
    let violation = |field: String, rule: &str, detail: String| Violation {
        place: Place::Body,
        field,
        rule: rule.to_string(),
        detail,
    };
    let Some(bytes) = req.body else { return };
    if bytes.is_empty() {
        if body.required {
            out.push(violation(
                String::new(),
                "required",
                "a request body is required".into(),
            ));
        }
        return;
    }
    let Some(content_type) = req.content_type else {
        out.push(violation(
            String::new(),
            "content-type",
            format!(
                "a content-type is required ({})",
                body.media_types.join(", ")
            ),
        ));
        return;
    };
    let Some(listed) = body
        .media_types
        .iter()
        .find(|m| media_matches(m, content_type))
    else {
        out.push(violation(
            String::new(),
            "content-type",
            format!(
                "the content type is not one of {}",
                body.media_types.join(", ")
            ),
        ));
        return;
    };
    if !is_json(listed) {
        return;
    }
    let Some(schema) = &body.json else { return };
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            out.push(violation(
                String::new(),
                "json",
                format!("not valid JSON (line {}, column {})", e.line(), e.column()),
            ));
            return;
        }
    };
    for e in schema.iter_errors(&value).take(MAX_VIOLATIONS) {
        out.push(violation(
            e.instance_path().as_str().to_string(),
            e.kind().keyword(),
            describe(e.kind()),
        ));
    }
}
