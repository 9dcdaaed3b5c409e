//! One operation in both documents: its id, path parameter names,
//! security, parameters, request body and responses.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::schema::{ANY, Direction, Schemas, follow};
use super::{Sink, rules, security, template_names};
use crate::document::{ContractError, Document, Operation, Parameter, escape};

/// The documents and the schema pairs already compared in this operation.
pub(super) struct Cx<'a, 's, 'r> {
    pub old: &'a Document,
    pub new: &'a Document,
    sink: &'s mut Sink<'r>,
    seen_request: HashSet<(String, String)>,
    seen_response: HashSet<(String, String)>,
}

/// A value written at a pointer (after `$ref`s).
pub(super) type At<'a> = (&'a Value, String);

impl Cx<'_, '_, '_> {
    pub(super) fn push(
        &mut self,
        rule: &rules::Rule,
        old_at: Option<String>,
        new_at: Option<String>,
        message: String,
    ) {
        self.sink.push(rule, old_at, new_at, message);
    }

    /// Compares two schemas (either may be missing: then it allows anything).
    pub(super) fn schemas(
        &mut self,
        direction: Direction,
        place: String,
        (old, old_at): (Option<&Value>, &str),
        (new, new_at): (Option<&Value>, &str),
    ) -> Result<(), ContractError> {
        let seen = match direction {
            Direction::Request => &mut self.seen_request,
            Direction::Response => &mut self.seen_response,
        };
        let mut schemas = Schemas {
            old: self.old,
            new: self.new,
            direction,
            seen,
            sink: self.sink,
            place,
        };
        schemas.compare(old.unwrap_or(&ANY), old_at, new.unwrap_or(&ANY), new_at)
    }
}

pub(super) fn compare(
    old: &Document,
    new: &Document,
    o: &Operation<'_>,
    n: &Operation<'_>,
    sink: &mut Sink<'_>,
) -> Result<(), ContractError> {
    compare_ids(o, n, sink);
    let renames = path_renames(o, n, sink);
    security::compare(old, new, o, n, sink);
    let mut cx = Cx {
        old,
        new,
        sink,
        seen_request: HashSet::new(),
        seen_response: HashSet::new(),
    };
    parameters(&mut cx, o, n, &renames)?;
    request_body(&mut cx, o, n)?;
    super::responses::compare(&mut cx, o, n)
}

fn compare_ids(o: &Operation<'_>, n: &Operation<'_>, sink: &mut Sink<'_>) {
    let Some(old_id) = &o.id else {
        return;
    };
    if n.id.as_ref() == Some(old_id) {
        return;
    }
    let message = match &n.id {
        Some(new_id) => format!("operationId `{old_id}` is now `{new_id}`"),
        None => format!("operationId `{old_id}` removed"),
    };
    let (old_at, new_at) = (format!("{}/operationId", o.pointer), n.pointer.clone());
    let new_at = if n.id.is_some() {
        format!("{new_at}/operationId")
    } else {
        new_at
    };
    sink.push(
        &rules::OPERATION_ID_CHANGED,
        Some(old_at),
        Some(new_at),
        message,
    );
}

/// New path parameter name -> old name, for parameters renamed in the
/// template (matched by position, as the URL matches them).
fn path_renames(
    o: &Operation<'_>,
    n: &Operation<'_>,
    sink: &mut Sink<'_>,
) -> HashMap<String, String> {
    let mut renames = HashMap::new();
    for (old_name, new_name) in template_names(&o.path)
        .into_iter()
        .zip(template_names(&n.path))
    {
        if old_name == new_name {
            continue;
        }
        renames.insert(new_name.to_string(), old_name.to_string());
        let message =
            format!("path parameter `{old_name}` renamed to `{new_name}` (the URL is unchanged)");
        let rule = &rules::PATH_PARAMETER_RENAMED;
        sink.push(
            rule,
            Some(o.pointer.clone()),
            Some(n.pointer.clone()),
            message,
        );
    }
    renames
}

/// How a parameter is told apart: its place and name (header names are
/// case-insensitive; renamed path parameters go by their old name).
fn param_key(p: &Parameter<'_>, renames: &HashMap<String, String>) -> (String, String) {
    let name = match p.location.as_str() {
        "header" => p.name.to_ascii_lowercase(),
        "path" => renames.get(&p.name).unwrap_or(&p.name).clone(),
        _ => p.name.clone(),
    };
    (p.location.clone(), name)
}

fn parameters(
    cx: &mut Cx<'_, '_, '_>,
    o: &Operation<'_>,
    n: &Operation<'_>,
    renames: &HashMap<String, String>,
) -> Result<(), ContractError> {
    let mut taken = vec![false; n.parameters.len()];
    for op in &o.parameters {
        let found = counterpart(op, &n.parameters, &taken, renames);
        let Some((slot, np)) = found.and_then(|i| taken.get_mut(i).zip(n.parameters.get(i))) else {
            let message = format!("{} removed", describe_param(op));
            let old_at = Some(op.pointer.clone());
            cx.push(&rules::REQUEST_PARAM_REMOVED, old_at, None, message);
            continue;
        };
        *slot = true;
        compare_parameter(cx, op, np)?;
    }
    for (np, _) in n.parameters.iter().zip(&taken).filter(|(_, t)| !**t) {
        let (rule, kind) = if np.required {
            (&rules::REQUEST_PARAM_ADDED_REQUIRED, "required")
        } else {
            (&rules::REQUEST_PARAM_ADDED_OPTIONAL, "optional")
        };
        let message = format!("{kind} {} added", describe_param(np));
        cx.push(rule, None, Some(np.pointer.clone()), message);
    }
    Ok(())
}

/// Which new parameter `op` became, among those not yet `taken`: the same
/// one, else one of the same name in another place (a move).
fn counterpart(
    op: &Parameter<'_>,
    new: &[Parameter<'_>],
    taken: &[bool],
    renames: &HashMap<String, String>,
) -> Option<usize> {
    let free = |i: usize| !taken.get(i).copied().unwrap_or(true);
    let key = param_key(op, &HashMap::new());
    let mut candidates = new.iter().enumerate().filter(|(i, _)| free(*i));
    let same = candidates
        .clone()
        .find(|(_, np)| param_key(np, renames) == key);
    let moved = || {
        candidates
            .find(|(_, np)| np.location != op.location && np.name.eq_ignore_ascii_case(&op.name))
    };
    same.or_else(moved).map(|(i, _)| i)
}

fn describe_param(p: &Parameter<'_>) -> String {
    format!("{} parameter `{}`", p.location, p.name)
}

fn compare_parameter(
    cx: &mut Cx<'_, '_, '_>,
    op: &Parameter<'_>,
    np: &Parameter<'_>,
) -> Result<(), ContractError> {
    let (old_at, new_at) = (Some(op.pointer.clone()), Some(np.pointer.clone()));
    if op.location != np.location {
        let message = format!("{} moved to {}", describe_param(op), describe_param(np));
        cx.push(&rules::PARAMETER_LOCATION_CHANGED, old_at, new_at, message);
        return Ok(());
    }
    if np.required && !op.required {
        let message = format!("{} is now required", describe_param(np));
        cx.push(
            &rules::REQUEST_PARAM_BECAME_REQUIRED,
            old_at.clone(),
            new_at.clone(),
            message,
        );
    }
    let (old_style, new_style) = (style(op), style(np));
    if old_style != new_style {
        let show = |(s, e): (&str, bool)| format!("style `{s}`, explode {e}");
        let message = format!(
            "{}: serialisation was {}, now {}",
            describe_param(np),
            show(old_style),
            show(new_style)
        );
        cx.push(&rules::PARAMETER_STYLE_CHANGED, old_at, new_at, message);
    }
    let (old_schema, old_at) = parameter_schema(cx.old, op)?;
    let (new_schema, new_at) = parameter_schema(cx.new, np)?;
    let place = describe_param(np);
    cx.schemas(
        Direction::Request,
        place,
        (old_schema, &old_at),
        (new_schema, &new_at),
    )
}

/// The effective `style` and `explode`, defaults filled in as the
/// specification gives them.
fn style<'p>(p: &Parameter<'p>) -> (&'p str, bool) {
    let default = match p.location.as_str() {
        "query" | "cookie" => "form",
        _ => "simple",
    };
    let style = p
        .node
        .get("style")
        .and_then(Value::as_str)
        .unwrap_or(default);
    let explode = p
        .node
        .get("explode")
        .and_then(Value::as_bool)
        .unwrap_or(style == "form");
    (style, explode)
}

/// A parameter's schema: `schema`, or the one in its single `content` entry.
fn parameter_schema<'d>(
    doc: &'d Document,
    p: &Parameter<'d>,
) -> Result<(Option<&'d Value>, String), ContractError> {
    // `p.pointer` is where the parameter is listed; its schema is written
    // where the listing's `$ref` leads.
    let (node, at) = match doc.root.pointer(&p.pointer) {
        Some(listed) => follow(doc, listed, &p.pointer)?,
        None => (p.node, p.pointer.clone()),
    };
    if let Some(schema) = node.get("schema") {
        return Ok((Some(schema), format!("{at}/schema")));
    }
    let content = node.get("content").and_then(Value::as_object);
    if let Some((media, entry)) = content.and_then(|c| c.iter().next()) {
        let at = format!("{at}/content/{}/schema", escape(media));
        return Ok((entry.get("schema"), at));
    }
    Ok((None, at))
}

/// The value of `key` in `holder`, after `$ref`s, and where it is written.
pub(super) fn child<'d>(
    doc: &'d Document,
    holder: &'d Value,
    at: &str,
    key: &str,
) -> Result<Option<At<'d>>, ContractError> {
    let Some(v) = holder.get(key) else {
        return Ok(None);
    };
    follow(doc, v, &format!("{at}/{}", escape(key))).map(Some)
}

fn request_body(
    cx: &mut Cx<'_, '_, '_>,
    o: &Operation<'_>,
    n: &Operation<'_>,
) -> Result<(), ContractError> {
    let old_body = child(cx.old, o.node, &o.pointer, "requestBody")?;
    let new_body = child(cx.new, n.node, &n.pointer, "requestBody")?;
    let required = |b: &Value| b.get("required") == Some(&Value::Bool(true));
    match (old_body, new_body) {
        (None, None) => Ok(()),
        (Some((_, old_at)), None) => {
            let message = "request body removed (clients sending one may be ignored)".into();
            cx.push(&rules::REQUEST_BODY_REMOVED, Some(old_at), None, message);
            Ok(())
        }
        (None, Some((body, new_at))) => {
            if required(body) {
                let message = "a required request body was added".into();
                cx.push(
                    &rules::REQUEST_BODY_BECAME_REQUIRED,
                    None,
                    Some(new_at),
                    message,
                );
            }
            Ok(())
        }
        (Some(old_body), Some(new_body)) => {
            if required(new_body.0) && !required(old_body.0) {
                let message = "the request body is now required".into();
                let (old_at, new_at) = (Some(old_body.1.clone()), Some(new_body.1.clone()));
                cx.push(
                    &rules::REQUEST_BODY_BECAME_REQUIRED,
                    old_at,
                    new_at,
                    message,
                );
            }
            request_contents(cx, old_body, new_body)
        }
    }
}

/// One entry of a `content` map: normalised media type, entry, pointer.
pub(super) struct Media<'d> {
    pub kind: String,
    pub entry: &'d Value,
    pub at: String,
}

pub(super) fn media_types<'d>(holder: &'d Value, at: &str) -> Vec<Media<'d>> {
    let Some(content) = holder.get("content").and_then(Value::as_object) else {
        return Vec::new();
    };
    content
        .iter()
        .map(|(key, entry)| Media {
            kind: normalise_media(key),
            entry,
            at: format!("{at}/content/{}", escape(key)),
        })
        .collect()
}

/// `Application/JSON; charset=utf-8` -> `application/json`: parameters do
/// not change which documents a media type describes.
fn normalise_media(key: &str) -> String {
    key.split(';')
        .next()
        .unwrap_or(key)
        .trim()
        .to_ascii_lowercase()
}

/// Whether a request media range `range` accepts bodies of type `kind`.
fn covers(range: &str, kind: &str) -> bool {
    range == kind
        || range == "*/*"
        || range
            .strip_suffix("/*")
            .is_some_and(|major| kind.split('/').next() == Some(major))
}

fn request_contents(
    cx: &mut Cx<'_, '_, '_>,
    (ob, old_at): At<'_>,
    (nb, new_at): At<'_>,
) -> Result<(), ContractError> {
    let (old_media, new_media) = (media_types(ob, &old_at), media_types(nb, &new_at));
    for om in &old_media {
        // The same type, else a range that still takes it.
        let found = new_media
            .iter()
            .find(|nm| nm.kind == om.kind)
            .or_else(|| new_media.iter().find(|nm| covers(&nm.kind, &om.kind)));
        let Some(nm) = found else {
            let message = format!("request body `{}` is no longer accepted", om.kind);
            cx.push(
                &rules::REQUEST_CONTENT_TYPE_REMOVED,
                Some(om.at.clone()),
                Some(new_at.clone()),
                message,
            );
            continue;
        };
        let place = format!("request body ({})", om.kind);
        let (oa, na) = (format!("{}/schema", om.at), format!("{}/schema", nm.at));
        cx.schemas(
            Direction::Request,
            place,
            (om.entry.get("schema"), &oa),
            (nm.entry.get("schema"), &na),
        )?;
    }
    for nm in &new_media {
        if !old_media.iter().any(|om| om.kind == nm.kind) {
            let message = format!("request body `{}` is now accepted", nm.kind);
            cx.push(
                &rules::REQUEST_CONTENT_TYPE_ADDED,
                Some(old_at.clone()),
                Some(nm.at.clone()),
                message,
            );
        }
    }
    Ok(())
}
