//! A schema as the diff reads it: `$ref`s followed, `allOf` branches merged
//! into one schema where they do not conflict, and the 3.1 idiom
//! `anyOf: [X, {type: "null"}]` read as a nullable X. Refactoring an inline
//! object into `allOf: [$ref: Base, {extra}]` is then no change at all.
//!
//! Every keyword remembers which schema object it was written in, so a
//! finding points where a reader can fix it.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::document::{ContractError, Document, escape};

/// `allOf` nesting merged before giving up (and leaving `allOf` as written,
/// which the comparison then treats conservatively). Also bounds recursion
/// through an `allOf` that refers back to itself.
const MAX_MERGE_DEPTH: usize = 8;

/// Keywords that describe and never constrain: conflicts between `allOf`
/// branches over them do not matter.
pub(super) fn is_annotation(keyword: &str) -> bool {
    keyword.starts_with("x-")
        || matches!(
            keyword,
            "title"
                | "description"
                | "example"
                | "examples"
                | "default"
                | "deprecated"
                | "externalDocs"
                | "xml"
                | "$comment"
                | "$id"
                | "$schema"
                | "$anchor"
        )
}

pub(crate) struct Flat<'v> {
    /// Pointer of the schema object (after `$ref`s).
    pub at: String,
    pub map: Cow<'v, Map<String, Value>>,
    /// The value as written (after `$ref`s), for schemas that are not
    /// objects.
    pub raw: &'v Value,
    /// Neither an object nor a boolean: nothing to analyse.
    pub malformed: bool,
    /// Keyword -> pointer of where it is written, where not `at/keyword`.
    origin: HashMap<String, String>,
    /// Property -> pointer of the schema whose `properties` lists it, where
    /// not `at`.
    prop_origin: HashMap<String, String>,
}

/// Follows `$ref`s from `v` (at `at`) with [`Document::resolve`], and says
/// where it ended.
pub(crate) fn follow<'a>(
    doc: &'a Document,
    v: &'a Value,
    at: &str,
) -> Result<(&'a Value, String), ContractError> {
    let target = doc.resolve(v, at)?;
    // `resolve` checked the chain; walk it again for the final pointer.
    let mut pointer = at.to_string();
    let mut current = v;
    for _ in 0..64 {
        if std::ptr::eq(current, target) {
            break;
        }
        let next = current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'));
        let Some((node, next)) = next.and_then(|p| doc.root.pointer(p).map(|n| (n, p))) else {
            break;
        };
        pointer = next.to_string();
        current = node;
    }
    Ok((target, pointer))
}

/// Reads the schema `v` written at `at` in `doc`.
pub(crate) fn flatten<'v>(
    doc: &'v Document,
    v: &'v Value,
    at: &str,
) -> Result<Flat<'v>, ContractError> {
    flatten_at_depth(doc, v, at, 0)
}

fn flatten_at_depth<'v>(
    doc: &'v Document,
    v: &'v Value,
    at: &str,
    depth: usize,
) -> Result<Flat<'v>, ContractError> {
    let (raw, at) = follow(doc, v, at)?;
    let (map, malformed) = match raw {
        Value::Object(m) => (Cow::Borrowed(m), false),
        Value::Bool(true) => (Cow::Owned(Map::new()), false),
        // `false` accepts nothing: the same as `not: {}`.
        Value::Bool(false) => {
            let mut m = Map::new();
            m.insert("not".into(), Value::Object(Map::new()));
            (Cow::Owned(m), false)
        }
        _ => (Cow::Owned(Map::new()), true),
    };
    let mut flat = Flat {
        at,
        map,
        raw,
        malformed,
        origin: HashMap::new(),
        prop_origin: HashMap::new(),
    };
    if !malformed && depth < MAX_MERGE_DEPTH {
        flat.merge_all_of(doc, depth)?;
        flat.read_nullable_idiom(doc, depth)?;
    }
    Ok(flat)
}

impl<'v> Flat<'v> {
    /// Pointer of `keyword` where it is written, or of the schema if it is
    /// not there.
    pub fn ptr(&self, keyword: &str) -> String {
        if !self.map.contains_key(keyword) {
            return self.at.clone();
        }
        match self.origin.get(keyword) {
            Some(p) => p.clone(),
            None => format!("{}/{}", self.at, escape(keyword)),
        }
    }

    /// Pointer of the schema of property `name`.
    pub fn prop_ptr(&self, name: &str) -> String {
        let holder = self.prop_origin.get(name).unwrap_or(&self.at);
        format!("{holder}/properties/{}", escape(name))
    }

    pub fn str(&self, keyword: &str) -> Option<&str> {
        self.map.get(keyword).and_then(Value::as_str)
    }

    pub fn num(&self, keyword: &str) -> Option<f64> {
        self.map.get(keyword).and_then(Value::as_f64)
    }

    pub fn is_true(&self, keyword: &str) -> bool {
        self.map.get(keyword) == Some(&Value::Bool(true))
    }

    fn prop_source(&self, name: &str) -> String {
        self.prop_origin.get(name).unwrap_or(&self.at).clone()
    }

    /// A copy of this schema without `keyword`, to merge branches into.
    fn without(&self, keyword: &str) -> Flat<'v> {
        let mut map = self.map.as_ref().clone();
        map.remove(keyword);
        Flat {
            at: self.at.clone(),
            map: Cow::Owned(map),
            raw: self.raw,
            malformed: false,
            origin: self.origin.clone(),
            prop_origin: self.prop_origin.clone(),
        }
    }

    /// Merges every `allOf` branch in, or leaves `allOf` as written if two
    /// branches say different things about the same keyword or property.
    fn merge_all_of(&mut self, doc: &'v Document, depth: usize) -> Result<(), ContractError> {
        let Cow::Borrowed(source) = self.map else {
            return Ok(());
        };
        let Some(Value::Array(branches)) = source.get("allOf") else {
            return Ok(());
        };
        let mut merged = self.without("allOf");
        for (i, branch) in branches.iter().enumerate() {
            let at = format!("{}/allOf/{i}", self.at);
            let branch = flatten_at_depth(doc, branch, &at, depth + 1)?;
            if branch.malformed || !merged.absorb(&branch) {
                return Ok(());
            }
        }
        *self = merged;
        Ok(())
    }

    /// Reads `anyOf`/`oneOf: [X, {type: "null"}]` as X with null allowed.
    fn read_nullable_idiom(&mut self, doc: &Document, depth: usize) -> Result<(), ContractError> {
        for keyword in ["anyOf", "oneOf"] {
            let Some(Value::Array(branches)) = self.map.get(keyword) else {
                continue;
            };
            let [first, second] = branches.as_slice() else {
                continue;
            };
            let (other, index) = if is_null_schema(doc, first) {
                (second.clone(), 1)
            } else if is_null_schema(doc, second) {
                (first.clone(), 0)
            } else {
                continue;
            };
            let at = format!("{}/{keyword}/{index}", self.at);
            let branch = flatten_at_depth(doc, &other, &at, depth + 1)?;
            let mut merged = self.without(keyword);
            if branch.malformed || !merged.absorb(&branch) {
                continue;
            }
            merged.allow_null(format!("{}/{keyword}", self.at));
            merged.raw = self.raw;
            *self = merged;
            return Ok(());
        }
        Ok(())
    }

    /// Adds `"null"` to the types; `at` is where that is said.
    fn allow_null(&mut self, at: String) {
        self.origin.insert("type".into(), at);
        let map = self.map.to_mut();
        match map.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                map.insert("type".into(), Value::from(vec![t, "null".to_string()]));
            }
            Some(Value::Array(ts)) if !ts.iter().any(|t| t == "null") => ts.push("null".into()),
            // No type: any value, null included.
            _ => {}
        }
    }

    /// Merges `other`'s keywords into this schema. False if they conflict.
    fn absorb(&mut self, other: &Flat<'_>) -> bool {
        for (keyword, value) in other.map.iter() {
            let ok = match keyword.as_str() {
                "properties" => self.absorb_properties(other, value),
                "required" => self.absorb_required(value),
                _ => self.absorb_keyword(other, keyword, value),
            };
            if !ok {
                return false;
            }
        }
        true
    }

    fn absorb_properties(&mut self, other: &Flat<'_>, value: &Value) -> bool {
        let Some(theirs) = value.as_object() else {
            return false;
        };
        let map = self.map.to_mut();
        let ours = map
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(ours) = ours.as_object_mut() else {
            return false;
        };
        for (name, schema) in theirs {
            // Two branches constraining one property intersect; that is
            // more than a merge can say.
            if ours.contains_key(name) {
                return false;
            }
            ours.insert(name.clone(), schema.clone());
            self.prop_origin
                .insert(name.clone(), other.prop_source(name));
        }
        true
    }

    fn absorb_required(&mut self, value: &Value) -> bool {
        let Some(theirs) = value.as_array() else {
            return false;
        };
        let map = self.map.to_mut();
        let ours = map
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(ours) = ours.as_array_mut() else {
            return false;
        };
        for name in theirs {
            if !ours.contains(name) {
                ours.push(name.clone());
            }
        }
        true
    }

    fn absorb_keyword(&mut self, other: &Flat<'_>, keyword: &str, value: &Value) -> bool {
        match self.map.get(keyword) {
            Some(ours) if ours == value || is_annotation(keyword) => true,
            Some(_) => false,
            None => {
                self.map.to_mut().insert(keyword.to_string(), value.clone());
                self.origin.insert(keyword.to_string(), other.ptr(keyword));
                true
            }
        }
    }
}

/// `{type: "null"}` (after `$ref`s), with nothing else but annotations.
fn is_null_schema(doc: &Document, v: &Value) -> bool {
    let Ok(Value::Object(m)) = doc.resolve(v, "") else {
        return false;
    };
    let is_null_type = match m.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => ts.len() == 1 && ts.iter().all(|t| t == "null"),
        _ => false,
    };
    is_null_type && m.keys().all(|k| k == "type" || is_annotation(k))
}
