//! OTLP's protobuf, written straight from [`SpanRecord`]s into reused
//! buffers: no message tree, no string per attribute key. The layout is
//! opentelemetry-proto's `ExportTraceServiceRequest` (trace/v1, common/v1)
//! with the fields the gateway fills; the tests check it byte for byte
//! against the same messages encoded by prost.

use prost::encoding::{WireType, encoded_len_varint, key_len};

use super::{Kind, SpanRecord, Value};

/// OTLP's SpanKind and StatusCode values.
const SPAN_KIND_SERVER: u64 = 2;
const SPAN_KIND_CLIENT: u64 = 3;
const STATUS_CODE_ERROR: u64 = 2;
/// Span flags: the W3C sampled bit, "is the parent remote known", "is it".
const FLAG_SAMPLED: u32 = 0x01;
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;
const SCOPE_NAME: &str = "blastdoor";

/// Encodes export requests; its buffers are kept from one batch to the
/// next.
pub(super) struct Encoder {
    /// `Resource` and `InstrumentationScope`, encoded once.
    resource: Vec<u8>,
    scope: Vec<u8>,
    out: Vec<u8>,
    span: Vec<u8>,
    /// Scratch for the span's status and the batch's framing.
    field: Vec<u8>,
}

/// A base-128 varint, low groups first. Written here rather than with
/// prost's `encode_varint`, whose byte-at-a-time `BufMut` writes were a
/// fifth of the encoder's cost.
fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_key(buf: &mut Vec<u8>, tag: u32, wire: WireType) {
    put_uvarint(buf, u64::from(tag << 3 | wire as u32));
}

fn put_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(buf, tag, WireType::LengthDelimited);
    put_uvarint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// A non-default varint field (proto3 leaves zeros out).
fn put_varint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        put_key(buf, tag, WireType::Varint);
        put_uvarint(buf, v);
    }
}

/// Bytes a length-delimited field of `len` bytes takes, tag included.
fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// `KeyValue { key, value: AnyValue }`, written in place: the lengths are
/// worked out first, so nothing is encoded twice or copied.
fn put_attribute(buf: &mut Vec<u8>, tag: u32, key: &str, v: &Value) {
    let value_len = match v {
        Value::Str(s) => delimited_len(1, s.len()),
        Value::Bool(b) => key_len(2) + encoded_len_varint(u64::from(*b)),
        Value::Int(i) => key_len(3) + encoded_len_varint(*i as u64),
        Value::Double(_) => key_len(4) + 8,
    };
    let pair_len = delimited_len(1, key.len()) + delimited_len(2, value_len);
    put_key(buf, tag, WireType::LengthDelimited);
    put_uvarint(buf, pair_len as u64);
    put_bytes(buf, 1, key.as_bytes());
    put_key(buf, 2, WireType::LengthDelimited);
    put_uvarint(buf, value_len as u64);
    match v {
        Value::Str(s) => put_bytes(buf, 1, s.as_bytes()),
        Value::Bool(b) => {
            put_key(buf, 2, WireType::Varint);
            put_uvarint(buf, u64::from(*b));
        }
        Value::Int(i) => {
            put_key(buf, 3, WireType::Varint);
            put_uvarint(buf, *i as u64);
        }
        Value::Double(d) => {
            put_key(buf, 4, WireType::SixtyFourBit);
            buf.extend_from_slice(&d.to_le_bytes());
        }
    }
}

impl Encoder {
    pub(super) fn new(resource: &[(&str, Value)]) -> Encoder {
        let mut res = Vec::new();
        for (k, v) in resource {
            put_attribute(&mut res, 1, k, v);
        }
        let mut scope = Vec::new();
        put_bytes(&mut scope, 1, SCOPE_NAME.as_bytes());
        put_bytes(&mut scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
        Encoder {
            resource: res,
            scope,
            out: Vec::new(),
            span: Vec::new(),
            field: Vec::new(),
        }
    }

    /// One `ExportTraceServiceRequest` holding `spans`. The spans are
    /// written once, into `out` past room for the framing; the framing
    /// (whose varint lengths are known only then) goes in front of them,
    /// so a batch is never copied from one message level to the next.
    pub(super) fn encode(&mut self, spans: &[SpanRecord]) -> &[u8] {
        let room = self.framing_room();
        self.out.clear();
        self.out.resize(room, 0);
        put_bytes(&mut self.out, 1, &self.scope);
        for r in spans {
            self.encode_span(r);
            put_bytes(&mut self.out, 2, &self.span);
        }
        let scope_spans_len = self.out.len() - room;
        // Request { resource_spans = 1: ResourceSpans { resource = 1, scope_spans = 2 } }.
        let resource_spans_len = delimited_len(1, self.resource.len())
            + key_len(2)
            + encoded_len_varint(scope_spans_len as u64);
        self.field.clear();
        put_key(&mut self.field, 1, WireType::LengthDelimited);
        put_uvarint(
            &mut self.field,
            (resource_spans_len + scope_spans_len) as u64,
        );
        put_bytes(&mut self.field, 1, &self.resource);
        put_key(&mut self.field, 2, WireType::LengthDelimited);
        put_uvarint(&mut self.field, scope_spans_len as u64);
        let start = room - self.field.len();
        self.out[start..room].copy_from_slice(&self.field);
        &self.out[start..]
    }

    /// The most the framing before the scope spans can take: the resource,
    /// three keys and two varints of at most ten bytes.
    fn framing_room(&self) -> usize {
        delimited_len(1, self.resource.len()) + 3 + 2 * 10
    }

    fn encode_span(&mut self, r: &SpanRecord) {
        let b = &mut self.span;
        b.clear();
        put_bytes(b, 1, &r.trace_id.to_be_bytes());
        put_bytes(b, 2, &r.span_id.to_be_bytes());
        if r.parent_span_id != 0 {
            put_bytes(b, 4, &r.parent_span_id.to_be_bytes());
        }
        put_bytes(b, 5, r.name.as_bytes());
        let kind = match r.kind {
            Kind::Server => SPAN_KIND_SERVER,
            Kind::Client => SPAN_KIND_CLIENT,
        };
        put_varint(b, 6, kind);
        put_key(b, 7, WireType::SixtyFourBit);
        b.extend_from_slice(&r.start_unix_nanos.to_le_bytes());
        put_key(b, 8, WireType::SixtyFourBit);
        b.extend_from_slice(&r.end_unix_nanos.to_le_bytes());
        for (k, v) in &r.attributes {
            put_attribute(b, 9, k, v);
        }
        if let Some(message) = &r.error {
            // Status { message = 2, code = 3 }
            self.field.clear();
            put_bytes(&mut self.field, 2, message.as_bytes());
            put_varint(&mut self.field, 3, STATUS_CODE_ERROR);
            put_bytes(b, 15, &self.field);
        }
        let remote = r.parent_span_id != 0 && r.remote_parent;
        let flags = FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | if remote { FLAG_IS_REMOTE } else { 0 };
        put_key(b, 16, WireType::ThirtyTwoBit);
        b.extend_from_slice(&flags.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// The same messages, declared for prost (field for field as in
    /// opentelemetry-proto), as the reference encoding.
    mod reference {
        use super::super::{FLAG_HAS_IS_REMOTE, FLAG_IS_REMOTE, FLAG_SAMPLED};

        const SPAN_KIND_SERVER: i32 = 2;
        const SPAN_KIND_CLIENT: i32 = 3;
        const STATUS_CODE_ERROR: i32 = 2;
        use super::super::{Kind, SpanRecord, Value};
        use prost::Message;

        #[derive(Clone, PartialEq, Message)]
        pub struct ExportTraceServiceRequest {
            #[prost(message, repeated, tag = "1")]
            pub resource_spans: Vec<ResourceSpans>,
        }

        #[derive(Clone, PartialEq, Message)]
        pub struct ResourceSpans {
            #[prost(message, optional, tag = "1")]
            pub resource: Option<Resource>,
            #[prost(message, repeated, tag = "2")]
            pub scope_spans: Vec<ScopeSpans>,
        }

        #[derive(Clone, PartialEq, Message)]
        pub struct Resource {
            #[prost(message, repeated, tag = "1")]
            pub attributes: Vec<KeyValue>,
        }

        #[derive(Clone, PartialEq, Message)]
        pub struct ScopeSpans {
            #[prost(message, optional, tag = "1")]
            pub scope: Option<InstrumentationScope>,
            #[prost(message, repeated, tag = "2")]
            pub spans: Vec<Span>,
        }

        #[derive(Clone, PartialEq, Message)]
        pub struct InstrumentationScope {
            #[prost(string, tag = "1")]
            pub name: String,
            #[prost(string, tag = "2")]
            pub version: String,
        }

        #[derive(Clone, PartialEq, Message)]
        pub struct Span {
            #[prost(bytes = "vec", tag = "1")]
            pub trace_id: Vec<u8>,
            #[prost(bytes = "vec", tag = "2")]
            pub span_id: Vec<u8>,
            #[prost(bytes = "vec", tag = "4")]
            pub parent_span_id: Vec<u8>,
            #[prost(string, tag = "5")]
            pub name: String,
            #[prost(int32, tag = "6")]
            pub kind: i32,
            #[prost(fixed64, tag = "7")]
            pub start_time_unix_nano: u64,
            #[prost(fixed64, tag = "8")]
            pub end_time_unix_nano: u64,
            #[prost(message, repeated, tag = "9")]
            pub attributes: Vec<KeyValue>,
            #[prost(message, optional, tag = "15")]
            pub status: Option<Status>,
            #[prost(fixed32, tag = "16")]
            pub flags: u32,
        }

        #[derive(Clone, PartialEq, Message)]
        pub struct Status {
            #[prost(string, tag = "2")]
            pub message: String,
            #[prost(int32, tag = "3")]
            pub code: i32,
        }

        #[derive(Clone, PartialEq, Message)]
        pub struct KeyValue {
            #[prost(string, tag = "1")]
            pub key: String,
            #[prost(message, optional, tag = "2")]
            pub value: Option<AnyValue>,
        }

        #[derive(Clone, PartialEq, Message)]
        pub struct AnyValue {
            #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4")]
            pub value: Option<any_value::Value>,
        }

        pub mod any_value {
            #[derive(Clone, PartialEq, prost::Oneof)]
            pub enum Value {
                #[prost(string, tag = "1")]
                String(String),
                #[prost(bool, tag = "2")]
                Bool(bool),
                #[prost(int64, tag = "3")]
                Int(i64),
                #[prost(double, tag = "4")]
                Double(f64),
            }
        }

        pub fn kv(key: &str, value: Value) -> KeyValue {
            use any_value::Value as V;
            KeyValue {
                key: key.to_string(),
                value: Some(AnyValue {
                    value: Some(match value {
                        Value::Str(s) => V::String(s),
                        Value::Int(i) => V::Int(i),
                        Value::Bool(b) => V::Bool(b),
                        Value::Double(d) => V::Double(d),
                    }),
                }),
            }
        }

        pub fn span(r: SpanRecord) -> Span {
            let remote = r.parent_span_id != 0 && r.remote_parent;
            Span {
                trace_id: r.trace_id.to_be_bytes().to_vec(),
                span_id: r.span_id.to_be_bytes().to_vec(),
                parent_span_id: if r.parent_span_id == 0 {
                    Vec::new()
                } else {
                    r.parent_span_id.to_be_bytes().to_vec()
                },
                name: r.name,
                kind: match r.kind {
                    Kind::Server => SPAN_KIND_SERVER,
                    Kind::Client => SPAN_KIND_CLIENT,
                },
                start_time_unix_nano: r.start_unix_nanos,
                end_time_unix_nano: r.end_unix_nanos,
                attributes: r.attributes.into_iter().map(|(k, v)| kv(k, v)).collect(),
                status: r.error.map(|message| Status {
                    message,
                    code: STATUS_CODE_ERROR,
                }),
                flags: FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | if remote { FLAG_IS_REMOTE } else { 0 },
            }
        }

        /// One `ExportTraceServiceRequest` holding `spans`.
        pub fn encode(resource: &Resource, spans: Vec<SpanRecord>) -> Vec<u8> {
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "blastdoor".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                        }),
                        spans: spans.into_iter().map(span).collect(),
                    }],
                }],
            }
            .encode_to_vec()
        }
    }

    fn record(kind: Kind, parent: u64, remote: bool, error: Option<&str>) -> SpanRecord {
        SpanRecord {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            span_id: 0x00f0_67aa_0ba9_02b7,
            parent_span_id: parent,
            remote_parent: remote,
            kind,
            name: "GET /imagegen".into(),
            start_unix_nanos: 1_700_000_000_000_000_000,
            end_unix_nanos: 1_700_000_000_250_000_000,
            error: error.map(str::to_string),
            attributes: vec![
                ("blastdoor.service", Value::Str("imagegen".into())),
                ("http.response.status_code", Value::Int(200)),
                ("blastdoor.complete", Value::Bool(true)),
                ("blastdoor.ratio", Value::Double(0.25)),
                ("blastdoor.negative", Value::Int(-3)),
                ("blastdoor.empty", Value::Str(String::new())),
                ("blastdoor.retried", Value::Bool(false)),
                // Lengths past 127 take two varint bytes, at every level.
                ("url.full", Value::Str("x".repeat(300))),
            ],
        }
    }

    #[test]
    fn encodes_exactly_as_prost_does() {
        let resource = [
            ("service.name", Value::Str("edge".into())),
            (
                "service.version",
                Value::Str(env!("CARGO_PKG_VERSION").into()),
            ),
        ];
        let spans = vec![
            record(Kind::Server, 0x1234, true, None),
            record(Kind::Client, 0x1234, false, Some("connect")),
            record(Kind::Server, 0, false, Some("answered 503")),
        ];
        let reference_resource = reference::Resource {
            attributes: resource
                .iter()
                .map(|(k, v)| reference::kv(k, v.clone()))
                .collect(),
        };
        let mut encoder = Encoder::new(&resource);
        let ours = encoder.encode(&spans).to_vec();
        let theirs = reference::encode(&reference_resource, spans.clone());
        assert_eq!(ours, theirs);
        // Buffers are reused: a second batch encodes alike.
        assert_eq!(encoder.encode(&spans), theirs.as_slice());
        let decoded = reference::ExportTraceServiceRequest::decode(ours.as_slice()).unwrap();
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 3);
        // A batch past 16 KiB: its lengths take three varint bytes, and the
        // framing written in front of the spans grows with them.
        let many: Vec<SpanRecord> = spans.iter().cycle().take(150).cloned().collect();
        let theirs = reference::encode(&reference_resource, many.clone());
        assert!(theirs.len() > 1 << 14);
        assert_eq!(encoder.encode(&many), theirs.as_slice());
    }
}
