//! Objects: properties, `required`, `additionalProperties`. Unlike the
//! other checks these differ by direction in more than the rule's name: a
//! request may gain optional fields, a response may gain any field, and a
//! removed field matters to a response reader but only to a request writer
//! when the object is closed.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{ANY, Direction, Flat, Schemas, follow, join, lead};
use crate::diff::rules;
use crate::document::{ContractError, Document};

struct Shape<'f> {
    properties: Vec<(&'f String, &'f Value)>,
    required: BTreeSet<&'f str>,
}

impl<'f> Shape<'f> {
    fn of(f: &'f Flat<'_>) -> Shape<'f> {
        let properties = f
            .map
            .get("properties")
            .and_then(Value::as_object)
            .map(Map::iter)
            .map(Iterator::collect)
            .unwrap_or_default();
        let required = f
            .map
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Shape {
            properties,
            required,
        }
    }

    fn get(&self, name: &str) -> Option<&'f Value> {
        self.properties
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| *v)
    }
}

pub(super) fn compare(
    s: &mut Schemas<'_, '_, '_>,
    o: &Flat<'_>,
    n: &Flat<'_>,
    field: &str,
    depth: usize,
) -> Result<(), ContractError> {
    let (old, new) = (Shape::of(o), Shape::of(n));
    match s.direction {
        Direction::Request => request_properties(s, (o, &old), (n, &new), field),
        Direction::Response => response_properties(s, (o, &old), (n, &new), field),
    }
    for (name, ov) in &old.properties {
        let Some(nv) = new.get(name) else {
            continue;
        };
        if ignored(s, s.old, ov) || ignored(s, s.new, nv) {
            continue;
        }
        let (oa, na) = (o.prop_ptr(name), n.prop_ptr(name));
        s.walk(ov, &oa, nv, &na, &join(field, name), depth + 1)?;
    }
    additional_properties(s, o, n, field, depth)
}

/// A property one side of the exchange never sees: `readOnly` ones are not
/// sent in requests, `writeOnly` ones not returned in responses.
fn ignored(s: &Schemas<'_, '_, '_>, doc: &Document, v: &Value) -> bool {
    let flag = match s.direction {
        Direction::Request => "readOnly",
        Direction::Response => "writeOnly",
    };
    let set = |v: &Value| v.get(flag) == Some(&Value::Bool(true));
    set(v) || follow(doc, v, "").is_ok_and(|(target, _)| set(target))
}

type Side<'x, 'f> = (&'x Flat<'f>, &'x Shape<'x>);

fn request_properties(
    s: &mut Schemas<'_, '_, '_>,
    (o, old): Side<'_, '_>,
    (n, new): Side<'_, '_>,
    field: &str,
) {
    for (name, nv) in &new.properties {
        if old.get(name).is_some() || ignored(s, s.new, nv) {
            continue;
        }
        let (rule, what) = if new.required.contains(name.as_str()) {
            (&rules::REQUEST_PROPERTY_ADDED_REQUIRED, "required property")
        } else {
            (&rules::REQUEST_PROPERTY_ADDED_OPTIONAL, "optional property")
        };
        let what = format!("{what} `{}` added", join(field, name));
        s.report(rule, Some(o.at.clone()), Some(n.prop_ptr(name)), &what);
    }
    // Required without being described: required all the same.
    for name in new.required.difference(&old.required) {
        if new.get(name).is_none() && old.get(name).is_none() {
            let what = format!("required property `{}` added", join(field, name));
            let rule = &rules::REQUEST_PROPERTY_ADDED_REQUIRED;
            s.report(rule, Some(o.at.clone()), Some(n.ptr("required")), &what);
        }
    }
    for (name, ov) in &old.properties {
        let Some(nv) = new.get(name) else {
            if !ignored(s, s.old, ov) {
                report_request_removed(s, o, n, name, field);
            }
            continue;
        };
        if new.required.contains(name.as_str())
            && !old.required.contains(name.as_str())
            && !ignored(s, s.new, nv)
        {
            let what = format!("property `{}` is now required", join(field, name));
            let rule = &rules::REQUEST_PROPERTY_BECAME_REQUIRED;
            s.report(rule, Some(o.prop_ptr(name)), Some(n.prop_ptr(name)), &what);
        }
    }
}

fn report_request_removed(
    s: &mut Schemas<'_, '_, '_>,
    o: &Flat<'_>,
    n: &Flat<'_>,
    name: &str,
    field: &str,
) {
    let (rule, what) = if closed(n) {
        (
            &rules::REQUEST_PROPERTY_REMOVED_CLOSED,
            format!(
                "property `{}` removed and no other properties are allowed: requests sending it now fail",
                join(field, name)
            ),
        )
    } else {
        (
            &rules::REQUEST_PROPERTY_REMOVED,
            format!(
                "property `{}` removed (still allowed as an additional property, but the server may ignore it)",
                join(field, name)
            ),
        )
    };
    s.report(rule, Some(o.prop_ptr(name)), Some(n.at.clone()), &what);
}

fn response_properties(
    s: &mut Schemas<'_, '_, '_>,
    (o, old): Side<'_, '_>,
    (n, new): Side<'_, '_>,
    field: &str,
) {
    for (name, ov) in &old.properties {
        if new.get(name).is_none() && !ignored(s, s.old, ov) {
            let what = format!("property `{}` removed", join(field, name));
            let rule = &rules::RESPONSE_PROPERTY_REMOVED;
            s.report(rule, Some(o.prop_ptr(name)), Some(n.at.clone()), &what);
        }
    }
    for name in old.required.difference(&new.required) {
        let (ov, nv) = (old.get(name), new.get(name));
        if ov.is_some_and(|v| ignored(s, s.old, v)) {
            continue;
        }
        let (what, new_at) = match nv {
            Some(_) => (
                format!("property `{}` is no longer required", join(field, name)),
                n.prop_ptr(name),
            ),
            // Removed and described: reported above.
            None if ov.is_some() => continue,
            None => (
                format!("required property `{}` removed", join(field, name)),
                n.at.clone(),
            ),
        };
        let rule = if nv.is_some() {
            &rules::RESPONSE_PROPERTY_BECAME_OPTIONAL
        } else {
            &rules::RESPONSE_PROPERTY_REMOVED
        };
        let old_at = if ov.is_some() {
            o.prop_ptr(name)
        } else {
            o.ptr("required")
        };
        s.report(rule, Some(old_at), Some(new_at), &what);
    }
    for (name, nv) in &new.properties {
        if old.get(name).is_none() && !ignored(s, s.new, nv) {
            let what = format!("property `{}` added", join(field, name));
            let rule = &rules::RESPONSE_PROPERTY_ADDED;
            s.report(rule, Some(o.at.clone()), Some(n.prop_ptr(name)), &what);
        }
    }
}

/// `additionalProperties: false` (or 3.1's `unevaluatedProperties: false`).
fn closed(f: &Flat<'_>) -> bool {
    let is_false = |k: &str| f.map.get(k) == Some(&Value::Bool(false));
    is_false("additionalProperties") || is_false("unevaluatedProperties")
}

fn additional_properties(
    s: &mut Schemas<'_, '_, '_>,
    o: &Flat<'_>,
    n: &Flat<'_>,
    field: &str,
    depth: usize,
) -> Result<(), ContractError> {
    if s.direction == Direction::Request && closed(n) && !closed(o) {
        let keyword = if n.map.get("additionalProperties") == Some(&Value::Bool(false)) {
            "additionalProperties"
        } else {
            "unevaluatedProperties"
        };
        let what = format!("{}additional properties are no longer allowed", lead(field));
        s.report_at(
            &rules::REQUEST_ADDITIONAL_PROPERTIES_CLOSED,
            o,
            n,
            keyword,
            &what,
        );
    }
    // Two open objects: the schemas of their additional properties compare
    // like any others (a missing one allows anything).
    let schema = |f: &Flat<'_>| {
        f.map
            .get("additionalProperties")
            .filter(|v| v.is_object())
            .cloned()
    };
    let (old_extra, new_extra) = (schema(o), schema(n));
    if closed(o) || closed(n) || (old_extra.is_none() && new_extra.is_none()) {
        return Ok(());
    }
    s.walk(
        old_extra.as_ref().unwrap_or(&ANY),
        &o.ptr("additionalProperties"),
        new_extra.as_ref().unwrap_or(&ANY),
        &n.ptr("additionalProperties"),
        &format!("{field}.*"),
        depth + 1,
    )
}
