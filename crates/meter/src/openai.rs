//! OpenAI's usage shapes: chat completions, the Responses API, embeddings
//! and image generation; whole bodies and stream events.

use serde_json::Value;

use crate::Usage;

fn n(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// Applies an OpenAI `usage` object (chat/embeddings or Responses naming).
/// Cached input is split from input, reasoning from output, so every unit
/// is priced once.
pub fn apply_usage(u: &Value, out: &mut Usage) {
    let input = n(&u["prompt_tokens"]).or_else(|| n(&u["input_tokens"]));
    let cached = n(&u["prompt_tokens_details"]["cached_tokens"])
        .or_else(|| n(&u["input_tokens_details"]["cached_tokens"]));
    let output = n(&u["completion_tokens"]).or_else(|| n(&u["output_tokens"]));
    let reasoning = n(&u["completion_tokens_details"]["reasoning_tokens"])
        .or_else(|| n(&u["output_tokens_details"]["reasoning_tokens"]));
    if let Some(input) = input {
        out.set("input_tokens", input.saturating_sub(cached.unwrap_or(0)));
    }
    if let Some(cached) = cached {
        out.set("cached_input_tokens", cached);
    }
    if let Some(output) = output {
        out.set(
            "output_tokens",
            output.saturating_sub(reasoning.unwrap_or(0)),
        );
    }
    if let Some(reasoning) = reasoning {
        out.set("reasoning_tokens", reasoning);
    }
}

/// Images in an image-generation response (`data` entries with an image).
fn images(v: &Value) -> Option<u64> {
    let data = v["data"].as_array()?;
    let is_image = |d: &Value| d.get("b64_json").is_some() || d.get("url").is_some();
    (!data.is_empty() && data.iter().all(is_image)).then_some(data.len() as u64)
}

/// A whole (non-streamed) response body.
pub fn from_body(v: &Value) -> Usage {
    let mut out = Usage {
        model: v["model"].as_str().map(str::to_string),
        ..Usage::default()
    };
    let mut found = false;
    if v["usage"].is_object() {
        apply_usage(&v["usage"], &mut out);
        found = true;
    }
    if let Some(count) = images(v) {
        out.set("images", count);
        found = true;
    }
    if !found {
        out.problem = Some("no usage in the response".to_string());
    }
    out
}

/// One streamed event's data. Returns whether it carried usage.
pub fn apply_event(v: &Value, out: &mut Usage) -> bool {
    if let Some(model) = v["model"]
        .as_str()
        .or_else(|| v["response"]["model"].as_str())
    {
        out.model = Some(model.to_string());
    }
    // Chat completions: a final chunk with `usage` (possibly alongside
    // `choices`). Responses API: `response.completed` carries the response.
    let usage = if v["usage"].is_object() {
        &v["usage"]
    } else {
        &v["response"]["usage"]
    };
    if usage.is_object() {
        apply_usage(usage, out);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_completion_with_cache_and_reasoning() {
        let u = from_body(&json!({
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {
                "prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
                "prompt_tokens_details": {"cached_tokens": 40},
                "completion_tokens_details": {"reasoning_tokens": 20}
            }
        }));
        assert_eq!(u.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(
            (u.get("input_tokens"), u.get("cached_input_tokens")),
            (60, 40)
        );
        assert_eq!(
            (u.get("output_tokens"), u.get("reasoning_tokens")),
            (30, 20)
        );
        assert!(u.problem.is_none());
    }

    #[test]
    fn responses_embeddings_and_images() {
        let r = from_body(
            &json!({"model": "o4-mini", "usage": {"input_tokens": 10, "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 3}}}),
        );
        assert_eq!(
            (
                r.get("input_tokens"),
                r.get("output_tokens"),
                r.get("reasoning_tokens")
            ),
            (10, 2, 3)
        );
        let e = from_body(
            &json!({"object": "list", "data": [{"embedding": [0.1]}], "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8}}),
        );
        assert_eq!(e.get("input_tokens"), 8);
        assert_eq!(e.get("images"), 0, "embeddings are not images");
        let i =
            from_body(&json!({"created": 1, "data": [{"b64_json": "AAA"}, {"b64_json": "BBB"}]}));
        assert_eq!(i.get("images"), 2);
        assert!(i.problem.is_none());
    }

    #[test]
    fn missing_usage_is_flagged_not_zero() {
        let u = from_body(&json!({"choices": []}));
        assert!(u.problem.is_some());
    }
}
