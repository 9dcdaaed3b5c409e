//! The json meter's units: JSON pointers (RFC 6901, optionally ending in
//! `/#len` to count an array) evaluated over arbitrary JSON, checked
//! against an independent resolver.
//!
//! Input: one pointer per line, a blank line, then the response body.

#![no_main]

use blastdoor_fuzz::{JSON, hash, meter, split};
use blastdoor_meter::{JsonPointerUnit, JsonUnits, MeterSpec};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// RFC 6901, written out independently of `Value::pointer`.
fn resolve<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(v);
    }
    let mut at = v;
    for token in pointer.strip_prefix('/')?.split('/') {
        let key = token.replace("~1", "/").replace("~0", "~");
        at = match at {
            Value::Object(map) => map.get(&key)?,
            Value::Array(items) => {
                let digits = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
                if !digits || (key.len() > 1 && key.starts_with('0')) {
                    return None;
                }
                items.get(key.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(at)
}

/// What a unit should read: an array's length for `/#len`, else a whole,
/// non-negative number (an integral float below 1e18 counts).
fn expected(v: &Value, pointer: &str) -> Option<u64> {
    if let Some(array_at) = pointer.strip_suffix("/#len") {
        return resolve(v, array_at)?.as_array().map(|a| a.len() as u64);
    }
    let n = resolve(v, pointer)?;
    n.as_u64().or_else(|| {
        let f = n.as_f64()?;
        (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1e18).then_some(f as u64)
    })
}

fuzz_target!(|data: &[u8]| {
    let split_at = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split_at {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let units: Vec<JsonPointerUnit> = String::from_utf8_lossy(head)
        .split('\n')
        .take(16)
        .enumerate()
        .map(|(i, pointer)| JsonPointerUnit {
            unit: format!("u{i}"),
            pointer: pointer.to_string(),
        })
        .collect();
    let spec = MeterSpec::Json(JsonUnits::new(units.clone()));
    let usage = meter(&spec, JSON, [body]);
    assert_eq!(usage, meter(&spec, JSON, split(body, hash(data))), "cuts");

    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        assert!(
            usage.problem.is_some(),
            "a body that is not JSON is flagged"
        );
        assert!(usage.units.is_empty() && usage.model.is_none());
        return;
    };
    assert_eq!(
        usage.model.as_deref(),
        v.get("model").and_then(Value::as_str)
    );
    let mut all_read = true;
    for u in &units {
        match expected(&v, &u.pointer) {
            Some(n) => assert_eq!(usage.units.get(&u.unit), Some(&n), "{u:?}"),
            None => {
                all_read = false;
                assert!(!usage.units.contains_key(&u.unit), "{u:?}: {usage:?}");
            }
        }
    }
    assert_eq!(usage.problem.is_none(), all_read, "{units:?}: {usage:?}");
});
