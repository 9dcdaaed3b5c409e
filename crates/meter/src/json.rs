//! The `json` meter: units read from the response body with JSON pointers;
//! a pointer ending in `/#len` counts the array it points to.

use serde_json::Value;

use crate::Usage;

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
        Some(x) => x
            .as_u64()
            .or_else(|| {
                x.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1e18)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| format!("{pointer} is not a whole, non-negative number")),
        None => Err(format!("{pointer} is missing")),
    }
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
