//! Header rewriting across the door: hop-by-hop fields (RFC 9110 §7.6.1),
//! forwarding information, request ids and W3C trace context.

use blastdoor_auth::Caller;
use blastdoor_config::UpstreamAuth;
use blastdoor_telemetry::otlp::Tracer;
use http::HeaderMap;
use http::header::{
    AUTHORIZATION, CONNECTION, HOST, HeaderName, HeaderValue, TE, TRAILER, TRANSFER_ENCODING,
    UPGRADE,
};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub static X_BLASTDOOR_CONSUMER: HeaderName = HeaderName::from_static("x-blastdoor-consumer");
pub static X_BLASTDOOR_TEAM: HeaderName = HeaderName::from_static("x-blastdoor-team");
pub static X_BLASTDOOR_COST_USD: HeaderName = HeaderName::from_static("x-blastdoor-cost-usd");
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
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

/// What the gateway knows about the hop it forwards.
#[derive(Debug)]
pub struct Hop<'a> {
    /// The caller's IP, as text.
    pub client: &'a str,
    pub tls: bool,
    /// The caller spoke HTTP/1.1 (the only version that upgrades).
    pub http11: bool,
    /// The authority of an absolute-form or HTTP/2 request, if any.
    pub original_host: Option<HeaderValue>,
    pub request_id: &'a str,
    pub trace: &'a TraceContext,
    /// The authenticated caller (None on public services).
    pub caller: Option<&'a Caller>,
    /// Caller headers the service wants removed, besides credentials.
    pub strip: &'a [String],
    /// The service's own credential towards its upstream.
    pub upstream_auth: Option<&'a UpstreamAuth>,
}

/// Rewrites a request's headers for the hop to the upstream: hop-by-hop
/// and gateway-only fields out, forwarding fields, request id and trace
/// context in. Returns whether the request is a protocol upgrade.
pub fn rewrite_request(h: &mut HeaderMap, hop: &Hop<'_>) -> bool {
    let upgrade = strip_hop_by_hop(h) && hop.http11;
    if upgrade {
        h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        h.remove(UPGRADE);
    }
    strip_gateway_headers(h);
    // The caller's credentials never cross the door.
    h.remove(AUTHORIZATION);
    h.remove(&X_API_KEY);
    for name in hop.strip {
        h.remove(name.as_str());
    }
    if let Some(auth) = hop.upstream_auth
        && let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(auth.header.as_bytes()),
            HeaderValue::from_str(auth.value.expose()),
        )
    {
        h.insert(name, value);
    }
    if let Some(caller) = hop.caller {
        if let Some(v) = &caller.consumer_header {
            h.insert(&X_BLASTDOOR_CONSUMER, v.clone());
        }
        if let Some(v) = &caller.team_header {
            h.insert(&X_BLASTDOOR_TEAM, v.clone());
        }
    }
    let xff = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {}", hop.client),
        None => hop.client.to_string(),
    };
    if let Ok(v) = HeaderValue::try_from(xff) {
        h.insert(&X_FORWARDED_FOR, v);
    }
    let proto = if hop.tls { "https" } else { "http" };
    h.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = hop.original_host.clone().or_else(|| h.get(HOST).cloned()) {
        h.insert(&X_FORWARDED_HOST, host);
    }
    if let Ok(v) = HeaderValue::from_str(hop.request_id) {
        h.insert(&X_REQUEST_ID, v);
    }
    h.insert(&TRACEPARENT, hop.trace.header_value());
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
    let mut buf = [0u8; 32];
    write_hex(fastrand::u128(1..), &mut buf);
    buf.iter().map(|&b| char::from(b)).collect()
}

/// Writes the low `out.len()` hex digits of `v`, lower case.
fn write_hex(mut v: u128, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = b"0123456789abcdef"[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// W3C trace context for the hop to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceContext {
    pub trace_id: u128,
    /// The gateway's own span (the server span of a traced request).
    pub span_id: u64,
    pub flags: u8,
    /// The caller's span, when it sent a valid `traceparent`.
    pub parent_span_id: Option<u64>,
}

impl TraceContext {
    /// Continues the caller's trace if its `traceparent` is valid (version
    /// 00 layout, non-zero ids), else starts a new one. Either way the
    /// gateway's hop gets a fresh span id. With a tracer the sampled flag
    /// is its decision; without one, the caller's flags pass on and new
    /// traces are marked sampled.
    pub fn continue_or_start(
        incoming: Option<&HeaderValue>,
        tracer: Option<&Tracer>,
    ) -> TraceContext {
        let span_id = fastrand::u64(1..);
        let parsed = incoming
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let (trace_id, parent_span_id, flags) = match parsed {
            Some((trace_id, parent, flags)) => (trace_id, Some(parent), flags),
            None => (fastrand::u128(1..), None, 1),
        };
        let flags = match tracer {
            Some(t) => {
                let parent_sampled = parent_span_id.map(|_| flags & 1 == 1);
                (flags & !1) | u8::from(t.sample(trace_id, parent_sampled))
            }
            None => flags,
        };
        TraceContext {
            trace_id,
            span_id,
            flags,
            parent_span_id,
        }
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The `traceparent` of a child span (an upstream attempt).
    pub fn child_header(&self, span_id: u64) -> HeaderValue {
        TraceContext { span_id, ..*self }.header_value()
    }

    /// The trace id as 32 hex digits, as logs and tools show it.
    pub fn trace_id_hex(&self) -> String {
        let mut buf = [0u8; 32];
        write_hex(self.trace_id, &mut buf);
        // Hex digits are ASCII: this never fails.
        String::from_utf8(buf.to_vec()).unwrap_or_default()
    }

    /// `00-<trace id>-<span id>-<flags>`.
    pub fn header_value(&self) -> HeaderValue {
        let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
        write_hex(self.trace_id, &mut buf[3..35]);
        write_hex(u128::from(self.span_id), &mut buf[36..52]);
        write_hex(u128::from(self.flags), &mut buf[53..55]);
        // Only hex digits and dashes: always a valid header value.
        HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `version-traceid-parentid-flags`: (trace id, parent span id, flags) of
/// a valid `traceparent`.
fn parse_traceparent(s: &str) -> Option<(u128, u64, u8)> {
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
    if !valid {
        return None;
    }
    Some((
        u128::from_str_radix(trace_id, 16).ok()?,
        u64::from_str_radix(parent_id, 16).ok()?,
        u8::from_str_radix(flags, 16).ok()?,
    ))
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
        let t = TraceContext::continue_or_start(Some(&incoming), None);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            t.span_id, 0x00f0_67aa_0ba9_02b7,
            "the gateway's hop gets its own span id"
        );
        assert_eq!(t.flags, 1);
        let sent = t.header_value();
        let sent = sent.to_str().unwrap();
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(sent.ends_with("-01"), "{sent}");
        assert_eq!(sent.len(), 55);
        assert_eq!(&sent[36..52], format!("{:016x}", t.span_id));

        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            let t = TraceContext::continue_or_start(Some(&HeaderValue::from_static(bad)), None);
            assert_ne!(
                t.trace_id_hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            assert_ne!(t.trace_id, 0);
        }
    }
}
