//! Header rewriting across the door: hop-by-hop fields (RFC 9110 §7.6.1),
//! forwarding information, request ids and W3C trace context.

use http::HeaderMap;
use http::header::{CONNECTION, HeaderName, HeaderValue, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static PROXY_AUTHORIZATION: HeaderName = HeaderName::from_static("proxy-authorization");
static PROXY_AUTHENTICATE: HeaderName = HeaderName::from_static("proxy-authenticate");

/// Headers only the gateway may set towards an upstream.
const GATEWAY_PREFIX: &str = "x-blastdoor-";

/// Removes hop-by-hop fields: the fixed list and any field named in
/// `Connection`. Returns whether the message asked for an upgrade.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> bool {
    let mut upgrade = false;
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| {
            let name = name.trim();
            if name.eq_ignore_ascii_case("upgrade") {
                // Kept (or dropped) below, with the upgrade decision.
                upgrade = true;
                return None;
            }
            HeaderName::from_bytes(name.as_bytes()).ok()
        })
        .collect();
    for name in named {
        headers.remove(&name);
    }
    for name in [
        &CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &PROXY_AUTHORIZATION,
        &PROXY_AUTHENTICATE,
        &TE,
        &TRAILER,
        &TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    let upgrade = upgrade && headers.contains_key(UPGRADE);
    if !upgrade {
        headers.remove(UPGRADE);
    }
    upgrade
}

/// Removes any `x-blastdoor-*` field a caller sent, so none can be forged.
pub fn strip_gateway_headers(headers: &mut HeaderMap) {
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(GATEWAY_PREFIX))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(&name);
    }
}

/// A caller's `x-request-id` is kept when it is 1-128 visible characters
/// of `[A-Za-z0-9._:-]`; anything else is replaced.
pub fn valid_request_id(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    ok.then_some(s)
}

/// 128 random bits as 32 lower-case hex digits.
pub fn new_id() -> String {
    format!("{:032x}", fastrand::u128(1..))
}

/// W3C trace context for the hop to the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    /// The span id the gateway sends upstream as the parent.
    pub span_id: String,
    pub flags: String,
}

impl TraceContext {
    /// Continues the caller's trace if its `traceparent` is valid (version
    /// 00 layout, non-zero ids), else starts a new sampled one. Either way
    /// the gateway's hop gets a fresh span id.
    pub fn continue_or_start(incoming: Option<&HeaderValue>) -> TraceContext {
        let span_id = format!("{:016x}", fastrand::u64(1..));
        match incoming
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent)
        {
            Some((trace_id, flags)) => TraceContext {
                trace_id: trace_id.to_string(),
                span_id,
                flags: flags.to_string(),
            },
            None => TraceContext {
                trace_id: new_id(),
                span_id,
                flags: "01".to_string(),
            },
        }
    }

    pub fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "00-{}-{}-{}",
            self.trace_id, self.span_id, self.flags
        ))
        .ok()
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `version-traceid-parentid-flags`; returns (trace id, flags).
fn parse_traceparent(s: &str) -> Option<(&str, &str)> {
    let mut parts = s.trim().split('-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let valid = version.len() == 2
        && is_lower_hex(version)
        && version != "ff"
        && trace_id.len() == 32
        && is_lower_hex(trace_id)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.len() == 16
        && is_lower_hex(parent_id)
        && parent_id.bytes().any(|b| b != b'0')
        && flags.len() == 2
        && is_lower_hex(flags);
    valid.then_some((trace_id, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_fields() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("x-keep", HeaderValue::from_static("yes"));
        let upgrade = strip_hop_by_hop(&mut h);
        assert!(
            !upgrade,
            "Upgrade without Connection: upgrade is not an upgrade"
        );
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn detects_upgrade() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(strip_hop_by_hop(&mut h));
        assert!(h.contains_key("upgrade"));
        assert!(!h.contains_key("connection"));
    }

    #[test]
    fn gateway_headers_cannot_be_forged() {
        let mut h = HeaderMap::new();
        h.insert("x-blastdoor-consumer", HeaderValue::from_static("admin"));
        h.insert("x-other", HeaderValue::from_static("1"));
        strip_gateway_headers(&mut h);
        assert!(!h.contains_key("x-blastdoor-consumer"));
        assert!(h.contains_key("x-other"));
    }

    #[test]
    fn request_ids() {
        assert_eq!(
            valid_request_id(&HeaderValue::from_static("abc-123_x.y:z")),
            Some("abc-123_x.y:z")
        );
        assert_eq!(
            valid_request_id(&HeaderValue::from_static("has space")),
            None
        );
        assert_eq!(valid_request_id(&HeaderValue::from_static("")), None);
        let long = "a".repeat(129);
        assert_eq!(
            valid_request_id(&HeaderValue::from_str(&long).unwrap()),
            None
        );
        assert_eq!(new_id().len(), 32);
    }

    #[test]
    fn traceparent_is_continued_or_started() {
        let incoming =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let t = TraceContext::continue_or_start(Some(&incoming));
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            t.span_id, "00f067aa0ba902b7",
            "the gateway's hop gets its own span id"
        );
        assert_eq!(t.flags, "01");
        let sent = t.header_value().unwrap();
        assert!(
            sent.to_str()
                .unwrap()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );

        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            let t = TraceContext::continue_or_start(Some(&HeaderValue::from_static(bad)));
            assert_ne!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
            assert_eq!(t.trace_id.len(), 32);
        }
    }
}
