//! Two JSON schemas compared in one direction.
//!
//! In a request the client writes and the server reads: the new schema must
//! accept every value the old one did. In a response it is the other way
//! round: the old schema must accept every value the new one can produce.
//! Most checks are therefore one check on an "outer" schema, which must
//! cover an "inner" one: the new in requests, the old in responses.

mod bounds;
mod deep;
mod flat;
mod object;

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::Sink;
use super::rules::{self, Rule};
use crate::document::{ContractError, Document, OpenApiVersion};

pub(crate) use flat::{Flat, flatten, follow};

/// Nesting followed before a schema is called too deep to analyse (recursive
/// schemas stop earlier, at the first pair of schemas seen twice).
const MAX_DEPTH: usize = 64;

/// Enum values quoted in a message before "and N more".
const MAX_LISTED: usize = 8;

/// The schema that accepts anything: what a missing `schema`, `items` or
/// `additionalProperties` means.
pub(crate) static ANY: Value = Value::Bool(true);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The client sends it: the new schema must accept all the old did.
    Request,
    /// The client receives it: the old schema must accept all the new can be.
    Response,
}

/// The rules a direction reports, for the checks written once for both.
struct DirectionRules {
    type_narrowed: &'static Rule,
    type_changed: &'static Rule,
    nullable: &'static Rule,
    enumeration: &'static Rule,
    format: &'static Rule,
    constraint: &'static Rule,
    variant: &'static Rule,
}

const REQUEST_RULES: DirectionRules = DirectionRules {
    type_narrowed: &rules::REQUEST_TYPE_NARROWED,
    type_changed: &rules::REQUEST_TYPE_CHANGED,
    nullable: &rules::REQUEST_NULLABLE_REMOVED,
    enumeration: &rules::REQUEST_ENUM_NARROWED,
    format: &rules::REQUEST_FORMAT_CHANGED,
    constraint: &rules::REQUEST_CONSTRAINT_TIGHTENED,
    variant: &rules::REQUEST_VARIANT_REMOVED,
};

const RESPONSE_RULES: DirectionRules = DirectionRules {
    type_narrowed: &rules::RESPONSE_TYPE_CHANGED,
    type_changed: &rules::RESPONSE_TYPE_CHANGED,
    nullable: &rules::RESPONSE_NULLABLE_ADDED,
    enumeration: &rules::RESPONSE_ENUM_WIDENED,
    format: &rules::RESPONSE_FORMAT_CHANGED,
    constraint: &rules::RESPONSE_CONSTRAINT_LOOSENED,
    variant: &rules::RESPONSE_VARIANT_ADDED,
};

/// Keywords whose changes this diff does not reason about: any change to
/// one is reported as [`rules::SCHEMA_CHANGED_UNANALYSED`].
const UNANALYSED_KEYWORDS: [&str; 17] = [
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "patternProperties",
    "propertyNames",
    "unevaluatedProperties",
    "contains",
    "minContains",
    "maxContains",
    "prefixItems",
    "unevaluatedItems",
    "additionalItems",
    "contentSchema",
];

/// One schema comparison (a parameter, a body, a response) inside an
/// operation.
pub(crate) struct Schemas<'a, 's, 'r> {
    pub old: &'a Document,
    pub new: &'a Document,
    pub direction: Direction,
    /// Pairs of schema pointers already compared in this operation and
    /// direction: stops recursive schemas, and says a shared schema's
    /// changes once.
    pub seen: &'s mut HashSet<(String, String)>,
    pub sink: &'s mut Sink<'r>,
    /// Where in the operation, for messages: `request body (application/json)`.
    pub place: String,
}

impl Schemas<'_, '_, '_> {
    pub fn compare(
        &mut self,
        old: &Value,
        old_at: &str,
        new: &Value,
        new_at: &str,
    ) -> Result<(), ContractError> {
        self.walk(old, old_at, new, new_at, "", 0)
    }

    fn walk(
        &mut self,
        old: &Value,
        old_at: &str,
        new: &Value,
        new_at: &str,
        field: &str,
        depth: usize,
    ) -> Result<(), ContractError> {
        let o = flatten(self.old, old, old_at)?;
        let n = flatten(self.new, new, new_at)?;
        if !self.seen.insert((o.at.clone(), n.at.clone())) {
            return Ok(());
        }
        if o.malformed || n.malformed || depth >= MAX_DEPTH {
            if !deep::same(self.old, o.raw, self.new, n.raw) {
                let why = if o.malformed || n.malformed {
                    "is not a schema this diff can read"
                } else {
                    "is nested too deeply to analyse"
                };
                self.unanalysed(&o, &n, field, why);
            }
            return Ok(());
        }
        if !self.compare_types(&o, &n, field) {
            return Ok(());
        }
        self.compare_nullable(&o, &n, field);
        self.compare_format(&o, &n, field);
        self.compare_enum(&o, &n, field);
        bounds::compare(self, &o, &n, field);
        object::compare(self, &o, &n, field, depth)?;
        self.compare_items(&o, &n, field, depth)?;
        let mut odd = self.compare_compositions(&o, &n, field, depth)?;
        odd.extend(changed_unanalysed_keywords(&o, &n));
        if !odd.is_empty() {
            let why = format!(
                "changed in ways this diff does not analyse ({})",
                odd.join(", ")
            );
            self.unanalysed(&o, &n, field, &why);
        }
        Ok(())
    }

    fn rules(&self) -> &'static DirectionRules {
        match self.direction {
            Direction::Request => &REQUEST_RULES,
            Direction::Response => &RESPONSE_RULES,
        }
    }

    /// (outer, inner): the outer must accept every value the inner does.
    fn outer_inner<T>(&self, old: T, new: T) -> (T, T) {
        match self.direction {
            Direction::Request => (new, old),
            Direction::Response => (old, new),
        }
    }

    fn report(&mut self, rule: &Rule, old_at: Option<String>, new_at: Option<String>, what: &str) {
        let message = format!("{}: {what}", self.place);
        self.sink.push(rule, old_at, new_at, message);
    }

    /// Reports a change at `keyword` of both schemas.
    fn report_at(&mut self, rule: &Rule, o: &Flat<'_>, n: &Flat<'_>, keyword: &str, what: &str) {
        self.report(rule, Some(o.ptr(keyword)), Some(n.ptr(keyword)), what);
    }

    fn unanalysed(&mut self, o: &Flat<'_>, n: &Flat<'_>, field: &str, why: &str) {
        let what = format!("{} {why}; review it by hand", subject(field));
        self.report(
            &rules::SCHEMA_CHANGED_UNANALYSED,
            Some(o.at.clone()),
            Some(n.at.clone()),
            &what,
        );
    }

    /// False when the types have nothing in common: then the rest of the
    /// schema has nothing meaningful left to compare.
    fn compare_types(&mut self, o: &Flat<'_>, n: &Flat<'_>, field: &str) -> bool {
        let (old_types, new_types) = (types(o), types(n));
        let (outer, inner) = self.outer_inner(&old_types, &new_types);
        let Some(outer) = outer else {
            return true;
        };
        // An inner schema that says nothing at all (a schema added where
        // there was none, or dropped): the type says it all, and listing
        // every property as added or removed would only repeat it.
        let (_, inner_flat) = self.outer_inner(o, n);
        let overlap = match inner {
            None => true,
            Some(inner) => {
                if inner.iter().all(|t| accepts(outer, t)) {
                    return true;
                }
                inner
                    .iter()
                    .any(|t| accepts(outer, t) || (t == "number" && outer.contains("integer")))
            }
        };
        let rule = if overlap {
            self.rules().type_narrowed
        } else {
            self.rules().type_changed
        };
        let what = format!(
            "{}type was {}, now {}",
            lead(field),
            describe_types(old_types.as_ref()),
            describe_types(new_types.as_ref())
        );
        self.report_at(rule, o, n, "type", &what);
        overlap && !is_unconstrained(inner_flat)
    }

    fn compare_nullable(&mut self, o: &Flat<'_>, n: &Flat<'_>, field: &str) {
        let old_null = nullable(o, self.old.version);
        let new_null = nullable(n, self.new.version);
        let (outer, inner) = self.outer_inner((old_null, o), (new_null, n));
        // An untyped inner schema already differs in type, said above.
        if !inner.0 || outer.0 || types(inner.1).is_none() {
            return;
        }
        let what = match self.direction {
            Direction::Request => format!("{} no longer accepts null", subject(field)),
            Direction::Response => format!("{} may now be null", subject(field)),
        };
        let keyword = if n.map.contains_key("nullable") || o.map.contains_key("nullable") {
            "nullable"
        } else {
            "type"
        };
        self.report_at(self.rules().nullable, o, n, keyword, &what);
    }

    fn compare_format(&mut self, o: &Flat<'_>, n: &Flat<'_>, field: &str) {
        let (old_format, new_format) = (o.str("format"), n.str("format"));
        let (outer, inner) = self.outer_inner(old_format, new_format);
        let Some(outer) = outer else {
            return;
        };
        if inner == Some(outer) || inner.is_some_and(|i| format_widens(i, outer)) {
            return;
        }
        let what = match (old_format, new_format) {
            (Some(a), Some(b)) => format!("{}format was `{a}`, now `{b}`", lead(field)),
            (None, Some(b)) => format!("{}format `{b}` added", lead(field)),
            (Some(a), None) => format!("{}format `{a}` removed", lead(field)),
            (None, None) => return,
        };
        self.report_at(self.rules().format, o, n, "format", &what);
    }

    fn compare_enum(&mut self, o: &Flat<'_>, n: &Flat<'_>, field: &str) {
        let (old_values, new_values) = (enum_values(o), enum_values(n));
        let (outer, inner) = self.outer_inner(&old_values, &new_values);
        let Some(outer) = outer else {
            return;
        };
        let missing: Vec<&Value> = match inner {
            Some(inner) => inner.iter().filter(|v| !outer.contains(v)).collect(),
            None => Vec::new(),
        };
        let what = match (self.direction, inner.is_some()) {
            (_, true) if missing.is_empty() => return,
            (Direction::Request, true) => format!("no longer accepts {}", list(&missing)),
            (Direction::Response, true) => format!("may now be {}", list(&missing)),
            (Direction::Request, false) => format!("is now limited to {}", list(outer)),
            (Direction::Response, false) => format!("is no longer limited to {}", list(outer)),
        };
        let keyword = if o.map.contains_key("const") || n.map.contains_key("const") {
            "const"
        } else {
            "enum"
        };
        let what = format!("{} {what}", subject(field));
        self.report_at(self.rules().enumeration, o, n, keyword, &what);
    }

    fn compare_items(
        &mut self,
        o: &Flat<'_>,
        n: &Flat<'_>,
        field: &str,
        depth: usize,
    ) -> Result<(), ContractError> {
        let (old_items, new_items) = (o.map.get("items"), n.map.get("items"));
        if old_items.is_none() && new_items.is_none() {
            return Ok(());
        }
        self.walk(
            old_items.unwrap_or(&ANY),
            &o.ptr("items"),
            new_items.unwrap_or(&ANY),
            &n.ptr("items"),
            &format!("{field}[]"),
            depth + 1,
        )
    }

    /// Compares `oneOf`, `anyOf` and (unmerged) `allOf`; returns the
    /// keywords it could not analyse.
    fn compare_compositions(
        &mut self,
        o: &Flat<'_>,
        n: &Flat<'_>,
        field: &str,
        depth: usize,
    ) -> Result<Vec<&'static str>, ContractError> {
        let mut odd = Vec::new();
        for keyword in ["oneOf", "anyOf", "allOf"] {
            let old_branches = o.map.get(keyword).and_then(Value::as_array);
            let new_branches = n.map.get(keyword).and_then(Value::as_array);
            let analysed = match (old_branches, new_branches) {
                (None, None) => true,
                (Some(ob), Some(nb)) => {
                    self.compare_branches(keyword, o, n, (ob, nb), field, depth)?
                }
                _ => false,
            };
            if !analysed {
                odd.push(keyword);
            }
        }
        Ok(odd)
    }

    /// Branches that are all `$ref`s are matched by target, so adding or
    /// removing a variant reads as such; otherwise branches are compared
    /// in order if there are as many, and not at all if not.
    fn compare_branches(
        &mut self,
        keyword: &str,
        o: &Flat<'_>,
        n: &Flat<'_>,
        (old_branches, new_branches): (&[Value], &[Value]),
        field: &str,
        depth: usize,
    ) -> Result<bool, ContractError> {
        let (old_base, new_base) = (o.ptr(keyword), n.ptr(keyword));
        let targets = (ref_targets(old_branches), ref_targets(new_branches));
        let (Some(old_refs), Some(new_refs)) = targets else {
            if old_branches.len() != new_branches.len() {
                return Ok(false);
            }
            for (i, (ob, nb)) in old_branches.iter().zip(new_branches).enumerate() {
                let (oa, na) = (format!("{old_base}/{i}"), format!("{new_base}/{i}"));
                self.walk(ob, &oa, nb, &na, field, depth + 1)?;
            }
            return Ok(true);
        };
        if keyword == "allOf" && old_refs != new_refs {
            return Ok(false);
        }
        self.report_lost_variants(
            keyword,
            (&old_refs, &new_refs),
            (&old_base, &new_base),
            field,
        );
        for (i, (target, ob)) in old_refs.iter().zip(old_branches).enumerate() {
            let Some(j) = new_refs.iter().position(|t| t == target) else {
                continue;
            };
            let Some(nb) = new_branches.get(j) else {
                continue;
            };
            let (oa, na) = (format!("{old_base}/{i}"), format!("{new_base}/{j}"));
            self.walk(ob, &oa, nb, &na, field, depth + 1)?;
        }
        Ok(true)
    }

    /// Variants of the inner schema the outer one no longer has.
    fn report_lost_variants(
        &mut self,
        keyword: &str,
        (old_refs, new_refs): (&[&str], &[&str]),
        (old_base, new_base): (&str, &str),
        field: &str,
    ) {
        let (outer, inner) = self.outer_inner(old_refs, new_refs);
        for (i, target) in inner.iter().enumerate() {
            if outer.contains(target) {
                continue;
            }
            let (what, old_at, new_at) = match self.direction {
                Direction::Request => (
                    format!("{}`{keyword}` variant `{target}` removed", lead(field)),
                    format!("{old_base}/{i}"),
                    new_base.to_string(),
                ),
                Direction::Response => (
                    format!("{}`{keyword}` variant `{target}` added", lead(field)),
                    old_base.to_string(),
                    format!("{new_base}/{i}"),
                ),
            };
            self.report(self.rules().variant, Some(old_at), Some(new_at), &what);
        }
    }
}

/// The non-null types a schema allows; None for any type. Objects and
/// arrays written without `type` are taken as typed: adding the missing
/// `type: object` to such a schema is a fix, not a change.
fn types(f: &Flat<'_>) -> Option<BTreeSet<String>> {
    let mut set = declared_types(f)?;
    set.remove("null");
    Some(set)
}

fn declared_types(f: &Flat<'_>) -> Option<BTreeSet<String>> {
    let one = |t: &str| Some(BTreeSet::from([t.to_string()]));
    match f.map.get("type") {
        Some(Value::String(t)) => one(t),
        Some(Value::Array(ts)) => Some(
            ts.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
        ),
        Some(_) => None,
        None if ["properties", "required", "additionalProperties"]
            .iter()
            .any(|k| f.map.contains_key(*k)) =>
        {
            one("object")
        }
        None if f.map.contains_key("items") => one("array"),
        None => None,
    }
}

/// A schema with no keywords but annotations: anything goes.
fn is_unconstrained(f: &Flat<'_>) -> bool {
    f.map.keys().all(|k| flat::is_annotation(k))
}

/// Whether null is allowed: a 3.1 `"null"` type, a 3.0 `nullable: true`
/// (only 3.0 has the keyword: a 3.1 validator ignores it), or no type.
fn nullable(f: &Flat<'_>, version: OpenApiVersion) -> bool {
    match declared_types(f) {
        None => true,
        Some(set) => {
            set.contains("null") || (version == OpenApiVersion::V3_0 && f.is_true("nullable"))
        }
    }
}

/// Whether a schema of types `set` accepts values of type `t`.
fn accepts(set: &BTreeSet<String>, t: &str) -> bool {
    set.contains(t) || (t == "integer" && set.contains("number"))
}

fn describe_types(set: Option<&BTreeSet<String>>) -> String {
    match set {
        None => "any".into(),
        Some(s) if s.is_empty() => "`null`".into(),
        Some(s) => s
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// Formats whose values are all values of a wider one.
fn format_widens(narrow: &str, wide: &str) -> bool {
    matches!((narrow, wide), ("int32", "int64") | ("float", "double"))
}

/// The values allowed by `enum` or `const`.
fn enum_values(f: &Flat<'_>) -> Option<Vec<Value>> {
    if let Some(c) = f.map.get("const") {
        return Some(vec![c.clone()]);
    }
    f.map.get("enum").and_then(Value::as_array).cloned()
}

fn list<V: std::borrow::Borrow<Value>>(values: &[V]) -> String {
    let mut shown: Vec<String> = values
        .iter()
        .take(MAX_LISTED)
        .map(|v| v.borrow().to_string())
        .collect();
    if values.len() > MAX_LISTED {
        shown.push(format!("and {} more", values.len() - MAX_LISTED));
    }
    shown.join(", ")
}

/// The `$ref` of every branch, or None if any branch is written inline.
fn ref_targets(branches: &[Value]) -> Option<Vec<&str>> {
    branches
        .iter()
        .map(|b| b.get("$ref").and_then(Value::as_str))
        .collect()
}

fn changed_unanalysed_keywords(o: &Flat<'_>, n: &Flat<'_>) -> Vec<&'static str> {
    // `unevaluatedProperties: false` is read as a closed object elsewhere.
    let get = |f: &Flat<'_>, k: &str| {
        f.map
            .get(k)
            .filter(|v| !(k == "unevaluatedProperties" && v.is_boolean()))
            .cloned()
    };
    let discriminator = |f: &Flat<'_>| {
        f.map
            .get("discriminator")
            .and_then(|d| d.get("propertyName"))
            .cloned()
    };
    let mut changed: Vec<&'static str> = UNANALYSED_KEYWORDS
        .iter()
        .filter(|k| get(o, k) != get(n, k))
        .copied()
        .collect();
    if discriminator(o) != discriminator(n) {
        changed.push("discriminator");
    }
    changed
}

/// How a message names the value: `the value` at the top, else its path.
fn subject(field: &str) -> String {
    if field.is_empty() {
        "the value".into()
    } else {
        format!("`{field}`")
    }
}

/// `` `field`: `` before a statement about a field; nothing at the top.
fn lead(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("`{field}`: ")
    }
}

/// `parent.name`, or `name` at the top.
fn join(field: &str, name: &str) -> String {
    if field.is_empty() {
        name.to_string()
    } else {
        format!("{field}.{name}")
    }
}
