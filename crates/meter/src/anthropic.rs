//! Anthropic's usage shapes: the messages API, whole and streamed.

use serde_json::Value;

use crate::Usage;

/// Applies an Anthropic `usage` object. Stream deltas repeat cumulative
/// counts, so values are set, not added.
pub fn apply_usage(u: &Value, out: &mut Usage) {
    for (field, unit) in [
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("cache_read_input_tokens", "cached_input_tokens"),
        ("cache_creation_input_tokens", "cache_write_tokens"),
    ] {
        if let Some(n) = u[field].as_u64() {
            out.set(unit, n);
        }
    }
}

/// A whole message.
pub fn from_message(v: &Value) -> Usage {
    let mut out = Usage {
        model: v["model"].as_str().map(str::to_string),
        ..Usage::default()
    };
    if v["usage"].is_object() {
        apply_usage(&v["usage"], &mut out);
    } else {
        out.problem = Some("no usage in the response".to_string());
    }
    out
}

/// One streamed event's data: `message_start` carries the message with its
/// input usage, `message_delta` the output so far. Returns whether it
/// carried usage.
pub fn apply_event(v: &Value, out: &mut Usage) -> bool {
    match v["type"].as_str() {
        Some("message_start") => {
            if let Some(model) = v["message"]["model"].as_str() {
                out.model = Some(model.to_string());
            }
            apply_usage(&v["message"]["usage"], out);
            v["message"]["usage"].is_object()
        }
        Some("message_delta") => {
            apply_usage(&v["usage"], out);
            v["usage"].is_object()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_with_cache() {
        let u = from_message(&json!({
            "model": "claude-sonnet-4-5", "type": "message",
            "usage": {"input_tokens": 12, "output_tokens": 30, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7}
        }));
        assert_eq!(u.get("input_tokens"), 12);
        assert_eq!(u.get("output_tokens"), 30);
        assert_eq!(u.get("cached_input_tokens"), 100);
        assert_eq!(u.get("cache_write_tokens"), 7);
    }
}
