//! The `json` meter: units read from the response body with JSON pointers;
//! a pointer ending in `/#len` counts the array it points to.
//!
//! [`from_body`] reads the body once and keeps only what the pointers
//! name: everything else is skipped unparsed into values, so a body with
//! megabytes of base64 pictures costs a scan, not a copy of each string.

mod walk;

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeSeed;
use serde_json::Value;

use crate::Usage;
use walk::{Found, MAX_TARGETS, Node, Target, Want};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointerUnit {
    pub unit: String,
    /// RFC 6901 pointer, optionally ending in `/#len`.
    pub pointer: String,
}

fn read(v: &Value, pointer: &str) -> Result<u64, String> {
    if let Some(array_at) = pointer.strip_suffix("/#len") {
        let target = if array_at.is_empty() {
            Some(v)
        } else {
            v.pointer(array_at)
        };
        return match target {
            Some(Value::Array(a)) => Ok(a.len() as u64),
            Some(_) => Err(format!("{array_at} is not an array")),
            None => Err(format!("{array_at} is missing")),
        };
    }
    match v.pointer(pointer) {
        Some(x) => whole(x).ok_or_else(|| format!("{pointer} is not a whole, non-negative number")),
        None => Err(format!("{pointer} is missing")),
    }
}

/// A whole, non-negative number (an integral float below 1e18 counts).
fn whole(x: &Value) -> Option<u64> {
    x.as_u64().or_else(|| {
        x.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1e18)
            .map(|f| f as u64)
    })
}

/// A json meter's units, with their pointers split once (at config time)
/// for [`from_body`]. Cheap to clone.
#[derive(Clone)]
pub struct JsonUnits(Arc<Plan>);

struct Plan {
    units: Vec<JsonPointerUnit>,
    /// One per unit, then the top-level `model`.
    targets: Vec<Target>,
}

impl JsonUnits {
    pub fn new(units: Vec<JsonPointerUnit>) -> JsonUnits {
        let mut targets: Vec<Target> = units
            .iter()
            .map(|u| match u.pointer.strip_suffix("/#len") {
                Some(array_at) => Target::new(array_at, Want::Len),
                None => Target::new(&u.pointer, Want::Number),
            })
            .collect();
        targets.push(Target::new("/model", Want::Model));
        JsonUnits(Arc::new(Plan { units, targets }))
    }
}

impl std::ops::Deref for JsonUnits {
    type Target = [JsonPointerUnit];

    fn deref(&self) -> &[JsonPointerUnit] {
        &self.0.units
    }
}

impl fmt::Debug for JsonUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.units.fmt(f)
    }
}

impl PartialEq for JsonUnits {
    fn eq(&self, other: &JsonUnits) -> bool {
        self.0.units == other.0.units
    }
}

impl Eq for JsonUnits {}

/// The units a JSON body reports, read in one pass over it; `None` if it
/// is not JSON.
pub fn from_body(body: &[u8], units: &JsonUnits) -> Option<Usage> {
    let Plan { units, targets } = &*units.0;
    if targets.len() > MAX_TARGETS {
        let v = serde_json::from_slice::<Value>(body).ok()?;
        return Some(from_pointers(&v, units));
    }
    let found = RefCell::new(smallvec::smallvec![None; targets.len()]);
    let root = Node {
        targets,
        found: &found,
        live: (0..targets.len())
            .filter(|&i| targets[i].path.is_some())
            .fold(0, |m, i| m | 1 << i),
        depth: 0,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    root.deserialize(&mut de).ok()?;
    de.end().ok()?;
    let mut found = found.into_inner();
    let model = match found.pop().flatten() {
        Some(Found::Value(Value::String(m))) => Some(m),
        _ => None,
    };
    let mut out = Usage {
        model,
        ..Usage::default()
    };
    for (u, f) in units.iter().zip(found) {
        let array_at = u.pointer.strip_suffix("/#len");
        let read = match (f, array_at) {
            (Some(Found::Len(n)), _) => Ok(n),
            (Some(Found::NotArray), Some(at)) => Err(format!("{at} is not an array")),
            (None, Some(at)) => Err(format!("{at} is missing")),
            (Some(Found::Value(v)), None) => whole(&v)
                .ok_or_else(|| format!("{} is not a whole, non-negative number", u.pointer)),
            (None, None) => Err(format!("{} is missing", u.pointer)),
            (Some(_), _) => Err(format!("{} cannot be read", u.pointer)),
        };
        match read {
            Ok(n) => out.add(&u.unit, n),
            Err(e) => out.problem = Some(e),
        }
    }
    Some(out)
}

pub fn from_pointers(v: &Value, units: &[JsonPointerUnit]) -> Usage {
    let mut out = Usage {
        model: v["model"].as_str().map(str::to_string),
        ..Usage::default()
    };
    for u in units {
        match read(v, &u.pointer) {
            Ok(n) => out.add(&u.unit, n),
            Err(e) => out.problem = Some(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unit(unit: &str, pointer: &str) -> JsonPointerUnit {
        JsonPointerUnit {
            unit: unit.into(),
            pointer: pointer.into(),
        }
    }

    #[test]
    fn numbers_and_array_lengths() {
        let body = json!({"data": [{"b64_json": "x"}, {"b64_json": "y"}], "usage": {"video_seconds": 4, "frames": 96.0}});
        let u = from_pointers(
            &body,
            &[
                unit("image", "/data/#len"),
                unit("video_second", "/usage/video_seconds"),
                unit("frame", "/usage/frames"),
            ],
        );
        assert_eq!(u.get("image"), 2);
        assert_eq!(u.get("video_second"), 4);
        assert_eq!(u.get("frame"), 96);
        assert!(u.problem.is_none());
    }

    /// The one-pass reader agrees with resolving pointers in a parsed
    /// value, on hits, misses and wrong kinds alike.
    #[test]
    fn one_pass_reading_agrees_with_the_parsed_value() {
        let bodies = [
            json!({"model": "m1", "data": [{"b64_json": "x"}, {"b64_json": "y"}], "usage": {"images": 2, "f": 3.0, "neg": -1, "half": 1.5}}),
            json!({"data": {"not": "an array"}, "usage": [4, 5, {"n": 6}], "a/b": {"~": 7}, "model": 3}),
            json!([1, [2, 3], {"0": 9}]),
            json!(12),
            json!({"data": [], "data2": [[1, 2], []], "usage": null}),
        ];
        let pointers = [
            "/data/#len",
            "/usage/images",
            "/usage/f",
            "/usage/neg",
            "/usage/half",
            "/missing",
            "/usage/1",
            "/usage/2/n",
            "/usage/01",
            "/a~1b/~0",
            "",
            "/#len",
            "/1/#len",
            "/2/0",
            "/data2/0/#len",
            "/data2/#len",
            "no-slash",
            "/usage/images/deeper",
            "/data/0/b64_json",
        ];
        for body in &bodies {
            let bytes = serde_json::to_vec(body).unwrap();
            for p in pointers {
                let units = [unit("u", p)];
                assert_eq!(
                    from_body(&bytes, &JsonUnits::new(units.to_vec())),
                    Some(from_pointers(body, &units)),
                    "{p} in {body}"
                );
            }
            let all: Vec<JsonPointerUnit> = pointers
                .iter()
                .enumerate()
                .map(|(i, p)| unit(&format!("u{i}"), p))
                .collect();
            assert_eq!(
                from_body(&bytes, &JsonUnits::new(all.clone())),
                Some(from_pointers(body, &all)),
                "{body}"
            );
        }
        // A later duplicate key wins, as in a parsed value.
        let dup = br#"{"usage": {"n": 1}, "usage": {"m": 2}}"#;
        let v: Value = serde_json::from_slice(dup).unwrap();
        for p in ["/usage/n", "/usage/m"] {
            let units = [unit("u", p)];
            let plan = JsonUnits::new(units.to_vec());
            assert_eq!(
                from_body(dup, &plan),
                Some(from_pointers(&v, &units)),
                "{p}"
            );
        }
        let n = JsonUnits::new(vec![unit("u", "/n")]);
        assert_eq!(from_body(b"{\"n\": 1", &n), None, "not JSON");
        // Strings no pointer names are still checked (found by fuzzing).
        assert_eq!(
            from_body(b"{\"n\": 1, \"x\": \"\xff\"}", &n),
            None,
            "not UTF-8"
        );
        assert_eq!(
            from_body(b"{\"n\": 1, \"x\": [\"\\ud800\"]}", &n),
            None,
            "a lone surrogate"
        );
        assert_eq!(
            from_body(b"{\"n\": 1, \"\xff\": 2}", &n),
            None,
            "a key that is not UTF-8"
        );
        assert_eq!(from_body(b"{} trailing", &n), None, "not JSON");
        // More units than the one-pass reader tracks: read from the parsed value.
        let many: Vec<JsonPointerUnit> = (0..70).map(|i| unit(&format!("u{i}"), "/n")).collect();
        let body = br#"{"n": 3}"#;
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            from_body(body, &JsonUnits::new(many.clone())),
            Some(from_pointers(&v, &many))
        );
    }

    #[test]
    fn missing_or_wrong_values_are_flagged() {
        let body = json!({"data": {"not": "an array"}, "usage": {"n": -1, "f": 1.5}});
        for p in ["/data/#len", "/missing", "/usage/n", "/usage/f"] {
            let u = from_pointers(&body, &[unit("x", p)]);
            assert!(u.problem.is_some(), "{p}");
            assert_eq!(u.get("x"), 0);
        }
    }
}
