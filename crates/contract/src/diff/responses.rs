//! Responses: matched by status code (a range like `2XX` stands in for the
//! codes it covers), then compared by media type and header.

use serde_json::Value;

use super::operation::{At, Cx, media_types};
use super::rules;
use super::schema::{Direction, follow};
use crate::document::{ContractError, Document, Operation, escape};

struct Status<'d> {
    /// Upper case: `200`, `2XX`, `DEFAULT`.
    code: String,
    node: &'d Value,
    at: String,
}

impl Status<'_> {
    fn success(&self) -> bool {
        self.code.starts_with('2')
    }

    /// Whether this is a range (`2XX`) that covers `code`.
    fn covers(&self, code: &str) -> bool {
        let (range, code) = (self.code.as_bytes(), code.as_bytes());
        matches!(range, [first, b'X', b'X'] if code.len() == 3 && code.first() == Some(first) && code != range)
    }

    fn shown(&self) -> String {
        if self.code == "DEFAULT" {
            "default".into()
        } else {
            self.code.clone()
        }
    }
}

fn statuses<'d>(doc: &'d Document, op: &Operation<'d>) -> Result<Vec<Status<'d>>, ContractError> {
    let at = format!("{}/responses", op.pointer);
    let Some(map) = op.node.get("responses").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(map.len());
    for (code, v) in map {
        let (node, at) = follow(doc, v, &format!("{at}/{}", escape(code)))?;
        out.push(Status {
            code: code.to_ascii_uppercase(),
            node,
            at,
        });
    }
    Ok(out)
}

pub(super) fn compare(
    cx: &mut Cx<'_, '_, '_>,
    o: &Operation<'_>,
    n: &Operation<'_>,
) -> Result<(), ContractError> {
    let old = statuses(cx.old, o)?;
    let new = statuses(cx.new, n)?;
    for os in &old {
        let found = new
            .iter()
            .find(|ns| ns.code == os.code)
            .or_else(|| new.iter().find(|ns| ns.covers(&os.code)));
        match found {
            Some(ns) => compare_response(cx, &os.shown(), os, ns)?,
            None => report_removed(cx, os),
        }
    }
    for ns in &new {
        // Already compared above: the same code, or a range standing in
        // for an old code that is gone.
        let gone = |code: &str| !new.iter().any(|x| x.code == code);
        if old
            .iter()
            .any(|os| os.code == ns.code || (ns.covers(&os.code) && gone(&os.code)))
        {
            continue;
        }
        match old.iter().find(|os| os.covers(&ns.code)) {
            Some(os) => compare_response(cx, &ns.shown(), os, ns)?,
            None => report_added(cx, ns),
        }
    }
    Ok(())
}

fn report_removed(cx: &mut Cx<'_, '_, '_>, os: &Status<'_>) {
    let (rule, message) = if os.success() {
        let m = format!("success response {} removed", os.shown());
        (&rules::RESPONSE_SUCCESS_STATUS_REMOVED, m)
    } else {
        let m = format!("response {} removed", os.shown());
        (&rules::RESPONSE_STATUS_REMOVED, m)
    };
    cx.push(rule, Some(os.at.clone()), None, message);
}

fn report_added(cx: &mut Cx<'_, '_, '_>, ns: &Status<'_>) {
    let (rule, message) = if ns.success() {
        let m = format!(
            "success response {} added (clients may not expect it)",
            ns.shown()
        );
        (&rules::RESPONSE_SUCCESS_STATUS_ADDED, m)
    } else {
        let m = format!("response {} added", ns.shown());
        (&rules::RESPONSE_STATUS_ADDED, m)
    };
    cx.push(rule, None, Some(ns.at.clone()), message);
}

fn compare_response(
    cx: &mut Cx<'_, '_, '_>,
    code: &str,
    os: &Status<'_>,
    ns: &Status<'_>,
) -> Result<(), ContractError> {
    let (old_media, new_media) = (media_types(os.node, &os.at), media_types(ns.node, &ns.at));
    for om in &old_media {
        // Exactly: a response that may now be `*/*` is not still JSON.
        let Some(nm) = new_media.iter().find(|nm| nm.kind == om.kind) else {
            let message = format!("response {code} no longer returns `{}`", om.kind);
            let rule = &rules::RESPONSE_CONTENT_TYPE_REMOVED;
            cx.push(rule, Some(om.at.clone()), Some(ns.at.clone()), message);
            continue;
        };
        let place = format!("response {code} ({})", om.kind);
        let (oa, na) = (format!("{}/schema", om.at), format!("{}/schema", nm.at));
        let (old_schema, new_schema) = (om.entry.get("schema"), nm.entry.get("schema"));
        cx.schemas(
            Direction::Response,
            place,
            (old_schema, &oa),
            (new_schema, &na),
        )?;
    }
    for nm in &new_media {
        if !old_media.iter().any(|om| om.kind == nm.kind) {
            let message = format!("response {code} may now return `{}`", nm.kind);
            let rule = &rules::RESPONSE_CONTENT_TYPE_ADDED;
            cx.push(rule, Some(os.at.clone()), Some(nm.at.clone()), message);
        }
    }
    compare_headers(cx, code, os, ns)
}

/// Response headers by name, case-insensitively; `Content-Type` is
/// ignored, as the specification says.
fn headers<'d>(
    doc: &'d Document,
    status: &Status<'d>,
) -> Result<Vec<(String, At<'d>)>, ContractError> {
    let Some(map) = status.node.get("headers").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let at = format!("{}/headers", status.at);
    let mut out = Vec::new();
    for (name, header) in map {
        if name.eq_ignore_ascii_case("content-type") {
            continue;
        }
        let header = follow(doc, header, &format!("{at}/{}", escape(name)))?;
        out.push((name.clone(), header));
    }
    Ok(out)
}

fn compare_headers(
    cx: &mut Cx<'_, '_, '_>,
    code: &str,
    os: &Status<'_>,
    ns: &Status<'_>,
) -> Result<(), ContractError> {
    let old = headers(cx.old, os)?;
    let new = headers(cx.new, ns)?;
    let required = |h: &Value| h.get("required") == Some(&Value::Bool(true));
    for (name, (oh, old_at)) in &old {
        let found = new.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
        let Some((_, (nh, new_at))) = found else {
            let (rule, kind) = if required(oh) {
                (&rules::RESPONSE_HEADER_REMOVED, "required")
            } else {
                (&rules::RESPONSE_OPTIONAL_HEADER_REMOVED, "optional")
            };
            let message = format!("response {code}: {kind} header `{name}` removed");
            cx.push(rule, Some(old_at.clone()), Some(ns.at.clone()), message);
            continue;
        };
        if required(oh) && !required(nh) {
            let message = format!("response {code}: header `{name}` is no longer required");
            let rule = &rules::RESPONSE_HEADER_BECAME_OPTIONAL;
            cx.push(rule, Some(old_at.clone()), Some(new_at.clone()), message);
        }
        let place = format!("response {code} header `{name}`");
        let (oa, na) = (format!("{old_at}/schema"), format!("{new_at}/schema"));
        cx.schemas(
            Direction::Response,
            place,
            (oh.get("schema"), &oa),
            (nh.get("schema"), &na),
        )?;
    }
    Ok(())
}
