//! Requests checked against an operation: path, query and header
//! parameters (strings coerced to the schema's type first) and the JSON
//! body. A violation names where it is, the field and the rule it breaks,
//! never the offending value (it may be a secret).

use std::collections::BTreeSet;
use std::fmt;

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value};

use crate::document::{ContractError, Document, OpenApiVersion, Operation, Parameter};

/// Violations reported per request, at most.
const MAX_VIOLATIONS: usize = 5;

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
    responses: Vec<ResponseCheck>,
}

/// One documented response: a status (exact, a class like `4XX`, or
/// `default`), its media types and JSON schema.
#[derive(Debug)]
struct ResponseCheck {
    status: StatusSpec,
    media_types: Vec<String>,
    json: Option<Validator>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StatusSpec {
    Exact(u16),
    Class(u16),
    Default,
}

impl StatusSpec {
    fn parse(s: &str) -> Option<StatusSpec> {
        if s == "default" {
            return Some(StatusSpec::Default);
        }
        let upper = s.to_ascii_uppercase();
        if let Some(class) = upper.strip_suffix("XX") {
            return class
                .parse()
                .ok()
                .filter(|c| (1..6).contains(c))
                .map(StatusSpec::Class);
        }
        s.parse()
            .ok()
            .filter(|c| (100..600).contains(c))
            .map(StatusSpec::Exact)
    }

    fn covers(self, status: u16) -> bool {
        match self {
            StatusSpec::Exact(s) => s == status,
            StatusSpec::Class(c) => status / 100 == c,
            StatusSpec::Default => true,
        }
    }
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
            responses: response_checks(doc, op)?,
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
        let violation = |field: String, rule: &str, detail: String| Violation {
            place: Place::Response,
            field,
            rule: rule.to_string(),
            detail,
        };
        let Some(spec) = self.responses.iter().find(|r| r.status.covers(status)) else {
            return vec![violation(
                String::new(),
                "status",
                format!("status {status} is not documented"),
            )];
        };
        let empty = body.is_some_and(<[u8]>::is_empty);
        if spec.media_types.is_empty() || empty {
            return Vec::new();
        }
        let Some(sent) = content_type else {
            return vec![violation(
                String::new(),
                "content-type",
                "a content-type is required".into(),
            )];
        };
        let Some(listed) = spec.media_types.iter().find(|m| media_matches(m, sent)) else {
            return vec![violation(
                String::new(),
                "content-type",
                format!(
                    "the content type is not one of {}",
                    spec.media_types.join(", ")
                ),
            )];
        };
        let (Some(schema), Some(bytes), true) = (&spec.json, body, is_json(listed)) else {
            return Vec::new();
        };
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(_) => return vec![violation(String::new(), "json", "not valid JSON".into())],
        };
        schema
            .iter_errors(&value)
            .take(MAX_VIOLATIONS)
            .map(|e| {
                violation(
                    e.instance_path().as_str().to_string(),
                    e.kind().keyword(),
                    describe(e.kind()),
                )
            })
            .collect()
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

fn signature(doc: &Document, op: &Operation<'_>) -> BTreeSet<String> {
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

fn response_checks(
    doc: &Document,
    op: &Operation<'_>,
) -> Result<Vec<ResponseCheck>, ContractError> {
    let Some(responses) = op.node.get("responses").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (code, response) in responses {
        let Some(status) = StatusSpec::parse(code) else {
            continue;
        };
        let at = format!("{}/responses/{}", op.pointer, crate::document::escape(code));
        let response = doc.resolve(response, &at)?;
        let mut media_types = Vec::new();
        let mut json = None;
        for (media, entry) in response
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
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
        out.push(ResponseCheck {
            status,
            media_types,
            json,
        });
    }
    out.sort_by_key(|r| r.status);
    Ok(out)
}

fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

fn media_matches(listed: &str, sent: &str) -> bool {
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

/// What a keyword asks, in words, from the schema's side only.
fn describe(kind: &jsonschema::error::ValidationErrorKind) -> String {
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
