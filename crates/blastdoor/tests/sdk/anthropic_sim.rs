//! The Anthropic messages API simulator: plain and streamed answers with
//! usage as the real API reports it.

use super::*;

fn anthropic_snapshot(model: &str) -> String {
    match model {
        "claude-sonnet-4-5" => "claude-sonnet-4-5-20250929".into(),
        "claude-haiku-4-5" => "claude-haiku-4-5-20251001".into(),
        other => other.into(),
    }
}

/// Anthropic's counts: (input not from or to a cache, cache reads, cache
/// writes, output).
fn anthropic_tokens(prompt: u64, pieces: usize) -> (u64, u64, u64, u64) {
    (
        15 + 3 * prompt,
        256 * (prompt % 4),
        (7 * prompt) % 500 + 1,
        2 * pieces as u64 + 3,
    )
}

/// An Anthropic-shaped upstream: POST /v1/messages.
pub async fn anthropic() -> Simulator {
    Simulator::start(anthropic_answer).await
}

fn anthropic_answer(req: SimRequest, calls: &Calls) -> http::Response<MockBody> {
    match req.path.as_str() {
        "/v1/messages" => messages(req, calls),
        "/v1/models" => json(
            StatusCode::OK,
            &json!({"data": [], "has_more": false, "first_id": null, "last_id": null}),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            json!({"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}),
        ),
    }
}

fn messages(req: SimRequest, calls: &Calls) -> http::Response<MockBody> {
    let model = req.body["model"].as_str().unwrap_or_default().to_string();
    if model.is_empty() || req.body["max_tokens"].as_u64().is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "model and max_tokens: Field required"}}),
        );
    }
    let prompt = prompt_bytes(&req.body["messages"]) + prompt_bytes(&req.body["system"]);
    let pieces = reply_pieces(prompt);
    let text: String = pieces.concat();
    let (input, cache_read, cache_write, output) = anthropic_tokens(prompt, pieces.len());
    let snapshot = anthropic_snapshot(&model);
    let usage = |output: u64| {
        json!({
            "input_tokens": input,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output,
            "service_tier": "standard"
        })
    };
    let msg_id = id("msg_01", 22, BASE62);
    let stream = req.body["stream"] == true;
    // The API has sent `message_delta` usage in two shapes: output tokens
    // only, and (later) every count, cumulative. Prompts of even length get
    // the second.
    let cumulative_delta = stream && prompt.is_multiple_of(2);
    calls.push(SimCall {
        request_id: req.request_id.clone(),
        path: req.path.clone(),
        stream,
        model: snapshot.clone(),
        usage: usage(output),
        text: text.clone(),
        authorization: req.authorization.clone(),
        api_key: req.api_key.clone(),
        cumulative_delta,
    });
    let message = |content: Value, stop: Value, usage: Value| {
        json!({
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": snapshot,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": null,
            "usage": usage
        })
    };
    let request_id = id("req_011C", 16, BASE62);
    if !stream {
        let mut r = json(
            StatusCode::OK,
            &message(
                json!([{"type": "text", "text": text}]),
                json!("end_turn"),
                usage(output),
            ),
        );
        r.headers_mut()
            .insert("request-id", request_id.parse().unwrap());
        return r;
    }
    let mut events = Vec::new();
    let mut event = |data: Value| events.push(sse(data["type"].as_str(), &data.to_string()));
    // message_start carries the input counts and the output so far (1).
    event(json!({"type": "message_start", "message": message(json!([]), Value::Null, usage(1))}));
    event(
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    event(json!({"type": "ping"}));
    for p in &pieces {
        event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
        );
    }
    event(json!({"type": "content_block_stop", "index": 0}));
    let delta_usage = if cumulative_delta {
        json!({"input_tokens": input, "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read, "output_tokens": output})
    } else {
        json!({"output_tokens": output})
    };
    event(
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": delta_usage}),
    );
    event(json!({"type": "message_stop"}));
    event_stream(events, ("request-id", &request_id))
}
