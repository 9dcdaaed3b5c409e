//! Asks OpenAI-style streams to report their usage.
//!
//! OpenAI sends `usage` in a stream only when the request says
//! `stream_options.include_usage = true`; without it a streamed call could
//! not be priced. For services metered as `openai` (with `include_usage`
//! on, the default), a streamed request that did not ask gets the option
//! added. The caller then also receives OpenAI's documented final chunk:
//! `choices: []` with the `usage` object, which the official SDKs accept.
//! Only request bodies read whole (up to 64 KiB) are rewritten; a larger
//! one is forwarded as sent and its usage, if missing, is flagged.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, HeaderValue};
use serde_json::Value;

use crate::body::RequestBody;

/// The body to forward: `body` itself, or a copy asking for usage.
pub fn ask_for_usage(headers: &mut HeaderMap, body: RequestBody) -> RequestBody {
    let RequestBody::Buffered(Some(bytes)) = &body else {
        return body;
    };
    let Some(rewritten) = with_include_usage(bytes) else {
        return body;
    };
    headers.insert(CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
    RequestBody::Buffered(Some(rewritten))
}

/// The JSON body with `stream_options.include_usage = true`, if it is a
/// streamed request that did not ask for usage.
fn with_include_usage(bytes: &[u8]) -> Option<Bytes> {
    let mut v: Value = serde_json::from_slice(bytes).ok()?;
    if v["stream"] != Value::Bool(true) || v["stream_options"]["include_usage"] == Value::Bool(true)
    {
        return None;
    }
    let options = v
        .as_object_mut()?
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Default::default()));
    options
        .as_object_mut()?
        .insert("include_usage".to_string(), Value::Bool(true));
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rewrite(v: Value) -> Option<Value> {
        with_include_usage(&serde_json::to_vec(&v).unwrap())
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn asks_streamed_requests_for_usage() {
        let out = rewrite(json!({"model": "m", "stream": true, "messages": []})).unwrap();
        assert_eq!(out["stream_options"]["include_usage"], true);
        assert_eq!(out["model"], "m");
        let out = rewrite(json!({"stream": true, "stream_options": {"other": 1}})).unwrap();
        assert_eq!(
            out["stream_options"],
            json!({"other": 1, "include_usage": true})
        );
    }

    #[test]
    fn leaves_everything_else_alone() {
        assert!(rewrite(json!({"stream": false})).is_none());
        assert!(rewrite(json!({"messages": []})).is_none());
        assert!(
            rewrite(json!({"stream": true, "stream_options": {"include_usage": true}})).is_none()
        );
        assert!(rewrite(json!({"stream": true, "stream_options": "weird"})).is_none());
        assert!(with_include_usage(b"not json").is_none());
    }

    #[test]
    fn fixes_the_declared_length() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("15"));
        let body = RequestBody::Buffered(Some(Bytes::from_static(br#"{"stream":true}"#)));
        let RequestBody::Buffered(Some(out)) = ask_for_usage(&mut headers, body) else {
            panic!()
        };
        assert_eq!(headers[CONTENT_LENGTH], out.len().to_string().as_str());
        assert!(out.len() > 15);
    }
}
