//! Security requirements. An operation's `security` (or the document's, if
//! the operation has none) lists alternatives; a request must meet one, and
//! meeting one means holding every scheme it names with its scopes. A client
//! that met an old alternative keeps working if some new alternative asks
//! for no more than it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Sink, rules};
use crate::document::{Document, Operation};

/// Scheme name -> the scopes required with it.
type Requirement = BTreeMap<String, BTreeSet<String>>;

pub(super) fn compare(
    old: &Document,
    new: &Document,
    o: &Operation<'_>,
    n: &Operation<'_>,
    sink: &mut Sink<'_>,
) {
    let (old_reqs, old_at) = effective(old, o);
    let (new_reqs, new_at) = effective(new, n);
    for req in &old_reqs {
        if new_reqs.iter().any(|alt| asks_no_more(alt, req)) {
            continue;
        }
        let same_schemes = new_reqs
            .iter()
            .any(|alt| alt.keys().all(|scheme| req.contains_key(scheme)));
        let (rule, what) = if same_schemes {
            (&rules::SECURITY_SCOPE_ADDED, "needs more scopes")
        } else {
            (&rules::SECURITY_ADDED, "no longer suffices")
        };
        let message = format!(
            "security: a request authorised with {} {what}; now one of: {}",
            describe(req),
            describe_all(&new_reqs)
        );
        sink.push(rule, old_at.clone(), new_at.clone(), message);
    }
    let anonymous = |reqs: &[Requirement]| reqs.iter().any(BTreeMap::is_empty);
    if anonymous(&new_reqs) && !anonymous(&old_reqs) {
        let message = "security: the operation now accepts requests without credentials".into();
        sink.push(&rules::SECURITY_REMOVED, old_at, new_at, message);
    }
}

/// Whether meeting `held` also meets `alt`.
fn asks_no_more(alt: &Requirement, held: &Requirement) -> bool {
    alt.iter()
        .all(|(scheme, scopes)| held.get(scheme).is_some_and(|have| scopes.is_subset(have)))
}

/// The requirements that apply to `op`, and where they are written. None
/// written means anyone may call it: one empty requirement.
fn effective(doc: &Document, op: &Operation<'_>) -> (Vec<Requirement>, Option<String>) {
    let (list, at) = match (op.node.get("security"), doc.root.get("security")) {
        (Some(list), _) => (list, format!("{}/security", op.pointer)),
        (None, Some(list)) => (list, "/security".to_string()),
        (None, None) => return (vec![Requirement::new()], None),
    };
    let reqs: Vec<Requirement> = list
        .as_array()
        .map(|alts| alts.iter().filter_map(requirement).collect())
        .unwrap_or_default();
    if reqs.is_empty() {
        // `security: []` switches security off.
        return (vec![Requirement::new()], Some(at));
    }
    (reqs, Some(at))
}

fn requirement(v: &Value) -> Option<Requirement> {
    let schemes = v.as_object()?;
    Some(
        schemes
            .iter()
            .map(|(scheme, scopes)| {
                let scopes = scopes
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                (scheme.clone(), scopes)
            })
            .collect(),
    )
}

fn describe(req: &Requirement) -> String {
    if req.is_empty() {
        return "no credentials".into();
    }
    req.iter()
        .map(|(scheme, scopes)| {
            if scopes.is_empty() {
                format!("`{scheme}`")
            } else {
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                format!("`{scheme}` [{}]", scopes.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

fn describe_all(reqs: &[Requirement]) -> String {
    reqs.iter().map(describe).collect::<Vec<_>>().join("; ")
}
