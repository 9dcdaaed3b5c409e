//! Faithful wire-format simulators of OpenAI and Anthropic: the JSON bodies
//! and server-sent events the real APIs send (ids, `object`, `created`,
//! dated model snapshots, `usage` where and how each API puts it), so the
//! official SDKs parse them as they would the real thing.
//!
//! Usage is derived from the request (its prompt's length, the reply's
//! length), so every call reports different numbers; each call's reported
//! usage is recorded for the test to price independently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};

use blastdoor_testkit::MockUpstream;
use blastdoor_testkit::upstream::{MockBody, channel_body, full, json};

#[path = "anthropic_sim.rs"]
mod anthropic_sim;
pub use anthropic_sim::anthropic;

/// One call as the simulator answered it.
#[derive(Debug, Clone)]
pub struct SimCall {
    /// The `x-request-id` the gateway sent on.
    pub request_id: String,
    pub path: String,
    pub stream: bool,
    /// The model the response named (a dated snapshot for aliases).
    pub model: String,
    /// The final usage object as reported on the wire: for an Anthropic
    /// stream, `message_start`'s usage with `message_delta`'s counts over it.
    pub usage: Value,
    /// The reply text; empty for embeddings.
    pub text: String,
    /// The credential headers the upstream received.
    pub authorization: Option<String>,
    pub api_key: Option<String>,
    /// Anthropic streams: whether `message_delta` repeated the input counts.
    pub cumulative_delta: bool,
}

#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<SimCall>>>);

impl Calls {
    fn push(&self, call: SimCall) {
        self.0.lock().unwrap().push(call);
    }

    pub fn all(&self) -> Vec<SimCall> {
        self.0.lock().unwrap().clone()
    }

    pub fn by_request(&self, request_id: &str) -> Vec<SimCall> {
        self.all()
            .into_iter()
            .filter(|c| c.request_id == request_id)
            .collect()
    }
}

pub struct Simulator {
    pub upstream: MockUpstream,
    pub calls: Calls,
}

impl Simulator {
    pub fn url(&self) -> String {
        self.upstream.url()
    }

    /// An upstream answering every request with `answer`, which records
    /// the calls it bills.
    async fn start(answer: fn(SimRequest, &Calls) -> http::Response<MockBody>) -> Simulator {
        let calls = Calls::default();
        let recorded = calls.clone();
        let upstream = MockUpstream::start(move |req: http::Request<Incoming>| {
            let calls = recorded.clone();
            async move { answer(read(req).await, &calls) }
        })
        .await;
        Simulator { upstream, calls }
    }
}

/// A request as the simulators read it.
struct SimRequest {
    path: String,
    request_id: String,
    authorization: Option<String>,
    api_key: Option<String>,
    body: Value,
}

async fn read(req: http::Request<Incoming>) -> SimRequest {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let bytes = body.collect().await.unwrap().to_bytes();
    SimRequest {
        path: parts.uri.path().to_string(),
        request_id: header("x-request-id").unwrap_or_default(),
        authorization: header("authorization"),
        api_key: header("x-api-key"),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

static IDS: AtomicU64 = AtomicU64::new(1);

/// A fresh id of `len` characters from `alphabet`, after `prefix`.
fn id(prefix: &str, len: usize, alphabet: &[u8]) -> String {
    let mut n = IDS
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut s = prefix.to_string();
    for _ in 0..len {
        s.push(char::from(alphabet[(n % alphabet.len() as u64) as usize]));
        n = n.rotate_left(7) ^ 0x5851_F42D_4C95_7F2D;
    }
    s
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8] = b"0123456789abcdef";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Bytes of text in a request's prompt: every string under `v`, except
/// the names of roles and block types.
fn prompt_bytes(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.len() as u64,
        Value::Array(items) => items.iter().map(prompt_bytes).sum(),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "role" | "type" | "cache_control"))
            .map(|(_, v)| prompt_bytes(v))
            .sum(),
        _ => 0,
    }
}

/// The reply, in the pieces a stream sends it in.
fn reply_pieces(prompt_bytes: u64) -> Vec<String> {
    let welcome = " welcome".repeat(1 + (prompt_bytes % 7) as usize);
    let text = format!("The door heard {prompt_bytes} bytes and opens:{welcome} through, caller.");
    text.split_inclusive(' ').map(str::to_string).collect()
}

/// The SSE framing both APIs use.
fn sse(event: Option<&str>, data: &str) -> Bytes {
    match event {
        Some(name) => Bytes::from(format!("event: {name}\ndata: {data}\n\n")),
        None => Bytes::from(format!("data: {data}\n\n")),
    }
}

/// A `text/event-stream` response fed from `events`, one write each.
fn event_stream(events: Vec<Bytes>, extra_header: (&str, &str)) -> http::Response<MockBody> {
    let (tx, body) = channel_body();
    tokio::spawn(async move {
        for e in events {
            if tx.send(e).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    });
    http::Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .header(extra_header.0, extra_header.1)
        .body(body)
        .unwrap()
}

fn error(status: StatusCode, v: Value) -> http::Response<MockBody> {
    full(status, "application/json", v.to_string())
}

// --- OpenAI ---

/// The snapshot OpenAI names in its answer for an alias.
fn openai_snapshot(model: &str) -> String {
    match model {
        "gpt-4o-mini" => "gpt-4o-mini-2024-07-18".into(),
        "gpt-4o" => "gpt-4o-2024-08-06".into(),
        "o4-mini" => "o4-mini-2025-04-16".into(),
        other => other.into(),
    }
}

/// OpenAI's token counts for a prompt and reply: (prompt, cached,
/// completion including reasoning, reasoning).
fn openai_tokens(model: &str, prompt: u64, pieces: usize) -> (u64, u64, u64, u64) {
    let prompt_tokens = 900 + 7 * prompt;
    let cached = 128 * (prompt % 5);
    let reasoning = if model.starts_with('o') {
        2 * prompt + 31
    } else {
        0
    };
    let completion = 2 * pieces as u64 + 1 + reasoning;
    (prompt_tokens, cached, completion, reasoning)
}

fn chat_usage(t: (u64, u64, u64, u64)) -> Value {
    let (prompt, cached, completion, reasoning) = t;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

fn responses_usage(t: (u64, u64, u64, u64)) -> Value {
    let (input, cached, output, reasoning) = t;
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input + output
    })
}

/// An OpenAI-shaped upstream: POST /v1/chat/completions, /v1/responses,
/// /v1/embeddings (and GET /v1/models, for probes).
pub async fn openai() -> Simulator {
    Simulator::start(openai_answer).await
}

fn openai_answer(req: SimRequest, calls: &Calls) -> http::Response<MockBody> {
    let model = req.body["model"].as_str().unwrap_or_default().to_string();
    match req.path.as_str() {
        "/v1/models" => json(StatusCode::OK, &json!({"object": "list", "data": []})),
        _ if model.is_empty() => error(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "you must provide a model parameter", "type": "invalid_request_error", "param": null, "code": null}}),
        ),
        "/v1/chat/completions" => chat_completions(req, &model, calls),
        "/v1/responses" => responses(req, &model, calls),
        "/v1/embeddings" => embeddings(req, &model, calls),
        _ => error(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("Invalid URL (POST {})", req.path), "type": "invalid_request_error", "param": null, "code": null}}),
        ),
    }
}

fn record(calls: &Calls, req: &SimRequest, stream: bool, model: &str, usage: &Value, text: &str) {
    calls.push(SimCall {
        request_id: req.request_id.clone(),
        path: req.path.clone(),
        stream,
        model: model.to_string(),
        usage: usage.clone(),
        text: text.to_string(),
        authorization: req.authorization.clone(),
        api_key: req.api_key.clone(),
        cumulative_delta: false,
    });
}

fn chat_completions(req: SimRequest, model: &str, calls: &Calls) -> http::Response<MockBody> {
    let prompt = prompt_bytes(&req.body["messages"]);
    let pieces = reply_pieces(prompt);
    let text: String = pieces.concat();
    let usage = chat_usage(openai_tokens(model, prompt, pieces.len()));
    let snapshot = openai_snapshot(model);
    let id = id("chatcmpl-", 29, BASE62);
    let created = now();
    let fingerprint = "fp_f85bea6784";
    let stream = req.body["stream"] == true;
    let include_usage = req.body["stream_options"]["include_usage"] == true;
    // Without `include_usage` a stream reports no usage at all: record it
    // as such, so a test expecting usage there fails.
    let reported = if !stream || include_usage {
        usage.clone()
    } else {
        Value::Null
    };
    record(calls, &req, stream, &snapshot, &reported, &text);
    if !stream {
        return json(
            StatusCode::OK,
            &json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": snapshot,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": null, "annotations": []},
                    "logprobs": null,
                    "finish_reason": "stop"
                }],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": fingerprint
            }),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": snapshot,
            "service_tier": "default",
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "obfuscation": "Xb3k"
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        sse(None, &c.to_string())
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    for p in &pieces {
        events.push(chunk(json!({"content": p}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if include_usage {
        let last = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": snapshot,
            "service_tier": "default",
            "system_fingerprint": fingerprint,
            "choices": [],
            "usage": usage,
            "obfuscation": "q9"
        });
        events.push(sse(None, &last.to_string()));
    }
    events.push(sse(None, "[DONE]"));
    event_stream(events, ("openai-processing-ms", "42"))
}

fn responses(req: SimRequest, model: &str, calls: &Calls) -> http::Response<MockBody> {
    let prompt = prompt_bytes(&req.body["input"]) + prompt_bytes(&req.body["instructions"]);
    let pieces = reply_pieces(prompt);
    let text: String = pieces.concat();
    let tokens = openai_tokens(model, prompt, pieces.len());
    let usage = responses_usage(tokens);
    let snapshot = openai_snapshot(model);
    let stream = req.body["stream"] == true;
    record(calls, &req, stream, &snapshot, &usage, &text);

    let resp_id = id("resp_", 48, HEX);
    let msg_id = id("msg_", 48, HEX);
    let reasoning_item = (tokens.3 > 0)
        .then(|| json!({"id": id("rs_", 48, HEX), "type": "reasoning", "summary": []}));
    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
    let message = |status: &str, content: Vec<Value>| json!({"id": msg_id, "type": "message", "status": status, "role": "assistant", "content": content});
    let response = |status: &str, output: Vec<Value>, usage: Value| {
        json!({
            "id": resp_id,
            "object": "response",
            "created_at": now(),
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": null,
            "instructions": req.body["instructions"].clone(),
            "max_output_tokens": null,
            "model": snapshot,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": null,
            "reasoning": {"effort": if tokens.3 > 0 { json!("medium") } else { Value::Null }, "summary": null},
            "service_tier": "default",
            "store": true,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": null,
            "metadata": {}
        })
    };
    let mut final_output: Vec<Value> = reasoning_item.iter().cloned().collect();
    final_output.push(message("completed", vec![part(&text)]));
    if !stream {
        return json(StatusCode::OK, &response("completed", final_output, usage));
    }
    let mut seq = 0u64;
    let mut events = Vec::new();
    let mut event = |mut data: Value| {
        data["sequence_number"] = json!(seq);
        seq += 1;
        events.push(sse(data["type"].as_str(), &data.to_string()));
    };
    let started = response("in_progress", vec![], Value::Null);
    event(json!({"type": "response.created", "response": started}));
    event(json!({"type": "response.in_progress", "response": started}));
    let mut index = 0;
    if let Some(item) = &reasoning_item {
        event(json!({"type": "response.output_item.added", "output_index": 0, "item": item}));
        event(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
        index = 1;
    }
    event(
        json!({"type": "response.output_item.added", "output_index": index, "item": message("in_progress", vec![])}),
    );
    event(
        json!({"type": "response.content_part.added", "item_id": msg_id, "output_index": index, "content_index": 0, "part": part("")}),
    );
    for p in &pieces {
        event(
            json!({"type": "response.output_text.delta", "item_id": msg_id, "output_index": index, "content_index": 0, "delta": p, "logprobs": [], "obfuscation": "aB3x"}),
        );
    }
    event(
        json!({"type": "response.output_text.done", "item_id": msg_id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
    );
    event(
        json!({"type": "response.content_part.done", "item_id": msg_id, "output_index": index, "content_index": 0, "part": part(&text)}),
    );
    event(
        json!({"type": "response.output_item.done", "output_index": index, "item": message("completed", vec![part(&text)])}),
    );
    event(
        json!({"type": "response.completed", "response": response("completed", final_output, usage)}),
    );
    event_stream(events, ("openai-processing-ms", "42"))
}

/// Dimensions of the simulated embeddings.
const DIMENSIONS: usize = 8;

/// A deterministic unit-ish vector for input `i` of `n` bytes.
fn vector(i: usize, n: usize) -> Vec<f32> {
    (0..DIMENSIONS)
        .map(|d| ((i * 31 + n * 7 + d * 13) % 97) as f32 / 97.0 - 0.5)
        .collect()
}

fn embeddings(req: SimRequest, model: &str, calls: &Calls) -> http::Response<MockBody> {
    let inputs: Vec<Value> = match &req.body["input"] {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let base64 = req.body["encoding_format"] == "base64";
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let v = vector(i, prompt_bytes(input) as usize);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = inputs
        .iter()
        .map(|i| 4000 + 13 * prompt_bytes(i))
        .sum::<u64>();
    let usage = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    record(calls, &req, false, model, &usage, "");
    json(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model, "usage": usage}),
    )
}
