//! Structural equality across two documents, `$ref`s followed, without
//! recursion: where the comparison gives up (too deep), this still tells
//! "unchanged" from "changed somewhere below".

use std::collections::HashSet;

use serde_json::Value;

use crate::document::Document;

/// Value pairs visited before calling two schemas different to be safe.
const MAX_STEPS: usize = 100_000;

/// Whether `a` (in `old`) and `b` (in `new`) are the same once every `$ref`
/// is replaced by what it names. Pairs met again are taken as equal, so
/// recursive schemas compare.
pub(super) fn same(old: &Document, a: &Value, new: &Document, b: &Value) -> bool {
    let mut stack = vec![(a, b)];
    let mut seen: HashSet<(*const Value, *const Value)> = HashSet::new();
    while let Some((a, b)) = stack.pop() {
        let a = old.resolve(a, "").unwrap_or(a);
        let b = new.resolve(b, "").unwrap_or(b);
        if !seen.insert((a, b)) {
            continue;
        }
        if seen.len() > MAX_STEPS {
            return false;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                for (k, v) in x {
                    let Some(w) = y.get(k) else {
                        return false;
                    };
                    stack.push((v, w));
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                stack.extend(x.iter().zip(y));
            }
            _ if a != b => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn doc(text: &str) -> Document {
        Document::parse(Path::new("t.yaml"), text.as_bytes()).unwrap()
    }

    #[test]
    fn refs_are_followed_and_loops_end() {
        let old = doc(
            "openapi: 3.1.0\npaths: {}\ncomponents: {schemas: {A: {properties: {a: {$ref: '#/components/schemas/A'}, n: {type: string}}}}}\n",
        );
        let renamed = doc(
            "openapi: 3.1.0\npaths: {}\ncomponents: {schemas: {B: {properties: {a: {$ref: '#/components/schemas/B'}, n: {type: string}}}}}\n",
        );
        let changed = doc(
            "openapi: 3.1.0\npaths: {}\ncomponents: {schemas: {A: {properties: {a: {$ref: '#/components/schemas/A'}, n: {type: integer}}}}}\n",
        );
        let a = &old.root["components"]["schemas"]["A"];
        assert!(same(
            &old,
            a,
            &renamed,
            &renamed.root["components"]["schemas"]["B"]
        ));
        assert!(!same(
            &old,
            a,
            &changed,
            &changed.root["components"]["schemas"]["A"]
        ));
    }
}
