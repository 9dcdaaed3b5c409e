//! An OpenAI-shaped chat model simulator: `POST /v1/chat/completions`
//! (plain JSON or SSE streaming, with `usage`), `GET /v1/models`. Its
//! answers are deterministic, so the demo and the tests can rely on them.
//! A stand-in for a real model, not a model.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

/// Delay between streamed tokens: slow enough to watch them arrive.
const TOKEN_DELAY: Duration = Duration::from_millis(40);

pub fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/healthz", get(|| async { "ok\n" }))
}

async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [
            { "id": "sim-small", "object": "model", "owned_by": "blastdoor-demo" },
            { "id": "sim-large", "object": "model", "owned_by": "blastdoor-demo" }
        ]
    }))
}

fn openai_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "message": message, "type": "invalid_request_error" } })),
    )
        .into_response()
}

/// The words of the reply to `messages`.
fn reply_words(messages: &[Value]) -> Vec<String> {
    let last = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let echo: String = last.chars().take(200).collect();
    format!("You said: \"{echo}\". This answer comes from blastdoor's simulated chat model.")
        .split(' ')
        .map(str::to_string)
        .collect()
}

fn prompt_tokens(messages: &[Value]) -> usize {
    messages
        .iter()
        .filter_map(|m| m["content"].as_str())
        .map(|c| c.split_whitespace().count())
        .sum::<usize>()
        + 3 * messages.len()
}

async fn completions(body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "the request body is not valid JSON",
        );
    };
    let Some(messages) = req["messages"].as_array().filter(|m| !m.is_empty()) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "`messages` must be a non-empty array",
        );
    };
    let model = req["model"].as_str().unwrap_or("sim-small").to_string();
    let words = reply_words(messages);
    let usage = json!({
        "prompt_tokens": prompt_tokens(messages),
        "completion_tokens": words.len(),
        "total_tokens": prompt_tokens(messages) + words.len(),
    });
    let id = format!("chatcmpl-sim{:016x}", fastrand_like(&body));
    if req["stream"] == true {
        let include_usage = req["stream_options"]["include_usage"] == true;
        return stream(id, model, words, include_usage.then_some(usage));
    }
    Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": words.join(" ") },
            "finish_reason": "stop"
        }],
        "usage": usage,
    }))
    .into_response()
}

/// A cheap deterministic id from the request bytes.
fn fastrand_like(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn chunk(id: &str, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }]
    })
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// Server-sent events, one token per event, paced so a caller sees them
/// arrive one by one.
fn stream(id: String, model: String, words: Vec<String>, usage: Option<Value>) -> Response {
    let mut events = vec![sse(&chunk(
        &id,
        &model,
        json!({ "role": "assistant", "content": "" }),
        None,
    ))];
    let n = words.len();
    for (i, w) in words.into_iter().enumerate() {
        let text = if i + 1 < n { format!("{w} ") } else { w };
        events.push(sse(&chunk(&id, &model, json!({ "content": text }), None)));
    }
    events.push(sse(&chunk(&id, &model, json!({}), Some("stop"))));
    if let Some(usage) = usage {
        let mut last = chunk(&id, &model, json!({}), None);
        last["choices"] = json!([]);
        last["usage"] = usage;
        events.push(sse(&last));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let body = futures_util::stream::unfold(events.into_iter().enumerate(), |mut it| async move {
        let (i, event) = it.next()?;
        if i > 0 {
            tokio::time::sleep(TOKEN_DELAY).await;
        }
        Some((Ok::<_, Infallible>(event), it))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
