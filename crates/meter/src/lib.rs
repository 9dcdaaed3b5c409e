//! Meters: usage read from the real response as it streams. Pure: bytes in,
//! usage out; the proxy feeds each body chunk and asks for the usage when
//! the response ends (or the caller goes away: what was delivered counts).
//!
//! Units (the names prices refer to):
//! - `input_tokens`: prompt tokens not served from a cache;
//! - `cached_input_tokens`: prompt tokens read from the provider's cache;
//! - `cache_write_tokens`: prompt tokens written to the cache (Anthropic);
//! - `output_tokens`: completion tokens, reasoning excluded;
//! - `reasoning_tokens`: hidden reasoning tokens (billed as output by most
//!   providers: give them a price);
//! - `images`: images returned;
//! - any name a `json` or `header` meter defines.

mod anthropic;
mod json;
mod openai;
pub mod price;
mod sse;
mod usage;

pub use json::{JsonPointerUnit, JsonUnits};
pub use price::{Priced, Pricing};
pub use usage::Usage;

/// How a service's responses are metered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterSpec {
    None,
    OpenAi,
    Anthropic,
    /// Units read from the JSON response body with JSON pointers.
    Json(JsonUnits),
    /// Units read from numeric response headers: (unit, header name).
    Header(Vec<(String, String)>),
}

impl MeterSpec {
    /// Every unit this meter can report.
    pub fn units(&self) -> Vec<String> {
        let fixed: &[&str] = match self {
            MeterSpec::None => &[],
            MeterSpec::OpenAi => &[
                "input_tokens",
                "cached_input_tokens",
                "output_tokens",
                "reasoning_tokens",
                "images",
            ],
            MeterSpec::Anthropic => &[
                "input_tokens",
                "cached_input_tokens",
                "cache_write_tokens",
                "output_tokens",
            ],
            MeterSpec::Json(units) => return units.iter().map(|u| u.unit.clone()).collect(),
            MeterSpec::Header(units) => return units.iter().map(|(u, _)| u.clone()).collect(),
        };
        fixed.iter().map(|u| u.to_string()).collect()
    }
}

/// Largest response body a meter keeps to parse at the end (a JSON body);
/// past it the usage is reported as unreadable, never guessed.
pub const MAX_BUFFERED_BODY: usize = 64 * 1024 * 1024;

/// A meter for one response.
#[derive(Debug)]
pub enum Meter {
    None,
    /// A JSON body, parsed when complete.
    Body {
        kind: BodyKind,
        buf: Vec<u8>,
        overflow: bool,
    },
    /// Server-sent events, parsed event by event.
    Stream(sse::SseMeter),
    /// Usage already known from the response head.
    Known(Usage),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    OpenAi,
    Anthropic,
    Json(JsonUnits),
}

impl Meter {
    /// Starts metering a response with this content type and headers
    /// (lower-case names).
    pub fn start<'h>(
        spec: &MeterSpec,
        content_type: &str,
        headers: impl Fn(&str) -> Option<&'h str>,
    ) -> Meter {
        const SSE: &str = "text/event-stream";
        let streaming = content_type
            .trim_start()
            .get(..SSE.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(SSE));
        let body = |kind| Meter::Body {
            kind,
            buf: Vec::new(),
            overflow: false,
        };
        match spec {
            MeterSpec::None => Meter::None,
            MeterSpec::Header(units) => Meter::Known(usage_from_headers(units, headers)),
            MeterSpec::OpenAi if streaming => {
                Meter::Stream(sse::SseMeter::new(sse::Dialect::OpenAi))
            }
            MeterSpec::Anthropic if streaming => {
                Meter::Stream(sse::SseMeter::new(sse::Dialect::Anthropic))
            }
            MeterSpec::OpenAi => body(BodyKind::OpenAi),
            MeterSpec::Anthropic => body(BodyKind::Anthropic),
            MeterSpec::Json(units) => body(BodyKind::Json(units.clone())),
        }
    }

    /// Whether usage is read from the whole body at once (so it can be
    /// known before the response is sent on).
    pub fn wants_whole_body(&self) -> bool {
        matches!(self, Meter::Body { .. })
    }

    /// The usage, if it is already known (header meters, or a whole body
    /// metered up front).
    pub fn known(&self) -> Option<&Usage> {
        match self {
            Meter::Known(u) => Some(u),
            _ => None,
        }
    }

    /// Feeds the next chunk of the response body.
    pub fn feed(&mut self, chunk: &[u8]) {
        match self {
            Meter::None | Meter::Known(_) => {}
            Meter::Stream(s) => s.feed(chunk),
            Meter::Body { buf, overflow, .. } => {
                if buf.len() + chunk.len() > MAX_BUFFERED_BODY {
                    *overflow = true;
                    buf.clear();
                } else if !*overflow {
                    buf.extend_from_slice(chunk);
                }
            }
        }
    }

    /// The usage of a whole body read at once, parsed where it lies (no
    /// copy into the meter's buffer).
    pub fn finish_whole(self, body: &[u8]) -> Usage {
        match self {
            Meter::Body { kind, buf, .. } if buf.is_empty() => {
                if body.len() > MAX_BUFFERED_BODY {
                    return Usage::unreadable("response body too large to meter");
                }
                parse_body(&kind, body)
                    .unwrap_or_else(|| Usage::unreadable("response body is not JSON"))
            }
            mut other => {
                other.feed(body);
                other.finish()
            }
        }
    }

    /// The usage of what was fed so far.
    pub fn finish(self) -> Usage {
        match self {
            Meter::None => Usage::default(),
            Meter::Known(u) => u,
            Meter::Stream(s) => s.finish(),
            Meter::Body { overflow: true, .. } => {
                Usage::unreadable("response body too large to meter")
            }
            Meter::Body { kind, buf, .. } => parse_body(&kind, &buf)
                .unwrap_or_else(|| Usage::unreadable("response body is not JSON")),
        }
    }
}

fn parse_body(kind: &BodyKind, body: &[u8]) -> Option<Usage> {
    Some(match kind {
        BodyKind::Json(units) => json::from_body(body, units)?,
        BodyKind::OpenAi => openai::from_body(&serde_json::from_slice(body).ok()?),
        BodyKind::Anthropic => anthropic::from_message(&serde_json::from_slice(body).ok()?),
    })
}

fn usage_from_headers<'h>(
    units: &[(String, String)],
    headers: impl Fn(&str) -> Option<&'h str>,
) -> Usage {
    let mut usage = Usage::default();
    for (unit, header) in units {
        match headers(header).map(|v| v.trim().parse::<u64>()) {
            Some(Ok(n)) => usage.add(unit, n),
            Some(Err(_)) => usage.problem = Some(format!("header {header} is not a whole number")),
            None => usage.problem = Some(format!("header {header} is missing")),
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_headers(_: &str) -> Option<&'static str> {
        None
    }

    #[test]
    fn picks_stream_or_body_parsing_by_content_type() {
        let mut m = Meter::start(
            &MeterSpec::OpenAi,
            "text/event-stream; charset=utf-8",
            no_headers,
        );
        m.feed(b"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n");
        assert_eq!(m.finish().get("output_tokens"), 2);
        // Media types are case-insensitive; a prefix of one is not it.
        for (content_type, stream) in [
            (" Text/Event-Stream", true),
            ("TEXT/EVENT-STREAM;charset=utf-8", true),
            ("text/event", false),
            ("", false),
        ] {
            let m = Meter::start(&MeterSpec::OpenAi, content_type, no_headers);
            assert_eq!(matches!(m, Meter::Stream(_)), stream, "{content_type:?}");
        }
        let mut m = Meter::start(&MeterSpec::OpenAi, "application/json", no_headers);
        m.feed(br#"{"usage":{"prompt_tokens":1,"#);
        m.feed(br#""completion_tokens":3}}"#);
        assert_eq!(m.finish().get("output_tokens"), 3);
        let mut m = Meter::start(&MeterSpec::Anthropic, "application/json", no_headers);
        m.feed(b"not json");
        assert!(m.finish().problem.is_some());
        assert_eq!(
            Meter::start(&MeterSpec::None, "application/json", no_headers).finish(),
            Usage::default()
        );
    }

    #[test]
    fn header_meter_reads_numeric_headers() {
        let spec = MeterSpec::Header(vec![("credit".into(), "x-usage-credits".into())]);
        let u = Meter::start(&spec, "application/json", |h| {
            (h == "x-usage-credits").then_some(" 7 ")
        })
        .finish();
        assert_eq!(u.get("credit"), 7);
        let u = Meter::start(&spec, "application/json", |_| Some("lots")).finish();
        assert!(u.problem.is_some());
        let u = Meter::start(&spec, "application/json", no_headers).finish();
        assert!(u.problem.unwrap().contains("missing"));
    }

    #[test]
    fn oversized_bodies_are_flagged() {
        let mut m = Meter::start(
            &MeterSpec::Json(JsonUnits::new(vec![])),
            "application/json",
            no_headers,
        );
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..(MAX_BUFFERED_BODY / chunk.len() + 1) {
            m.feed(&chunk);
        }
        assert!(m.finish().problem.unwrap().contains("too large"));
    }
}
