//! Spans out over OTLP (HTTP with protobuf bodies, or gRPC), never in a
//! request's way.
//!
//! The proxy builds a [`SpanRecord`] for each sampled request and upstream
//! attempt when the request settles (start and end are known then, so no
//! span lives across an await) and hands it over with one non-blocking
//! send. A thread of its own batches them, encodes the OTLP protobuf and
//! POSTs it (as an HTTP body, or as the one message of a gRPC Export call). When the collector is slow or gone, the queue fills and spans
//! are dropped and counted (`blastdoor_otlp_spans_dropped_total`): requests
//! never wait and memory stays bounded.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use blastdoor_config::{OtlpProtocol, Tracing};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::metrics::TracingMetrics;

#[path = "otlp_wire.rs"]
mod wire;

/// Spans per request to the collector.
const MAX_BATCH: usize = 512;
/// How often the exporter looks at its queue (at most; less with a
/// shorter `export_interval`). At this pace a queue of `max_queue` spans
/// (default 8192) holds up at ~80,000 spans per second.
const POLL: Duration = Duration::from_millis(50);
/// The gRPC method spans are exported with.
const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// What a span says about itself: an attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The gateway answering its caller.
    Server,
    /// One attempt to reach an upstream.
    Client,
}

/// One finished span, as the request path hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0: a root span.
    pub parent_span_id: u64,
    /// The parent is the caller's span (in another process).
    pub remote_parent: bool,
    pub kind: Kind,
    pub name: String,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    /// Marks the span failed (status ERROR), with a message.
    pub error: Option<String>,
    pub attributes: Vec<(&'static str, Value)>,
}

/// Hands finished spans to the exporter thread; cheap to share.
#[derive(Debug)]
pub struct Tracer {
    tx: mpsc::Sender<SpanRecord>,
    /// `sample_ratio` as a threshold on 63 bits of the trace id, the way
    /// OpenTelemetry's TraceIdRatioBased sampler decides, so that every
    /// process of a trace decides alike.
    threshold: u64,
    parent_based: bool,
    dropped_queue_full: Counter,
}

impl Tracer {
    /// Whether a trace is recorded: the caller's flag when it sent one (and
    /// `parent_based`), else the ratio applied to the trace id.
    pub fn sample(&self, trace_id: u128, parent_sampled: Option<bool>) -> bool {
        match parent_sampled {
            Some(sampled) if self.parent_based => sampled,
            _ => ((trace_id as u64) >> 1) < self.threshold,
        }
    }

    /// Queues a finished span; a full queue drops it (and counts it).
    pub fn record(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            self.dropped_queue_full.inc();
        }
    }
}

/// Stops the exporter: what is queued is sent, within the export timeout.
#[derive(Debug)]
pub struct ExporterHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ExporterHandle {
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the exporter thread.
pub fn start(
    config: &Tracing,
    metrics: TracingMetrics,
) -> std::io::Result<(Arc<Tracer>, ExporterHandle)> {
    let (tx, rx) = mpsc::channel(config.max_queue);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let exporter = Exporter::new(config, metrics.clone())?;
    let thread = std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => rt.block_on(exporter.run(rx, stop_rx)),
                Err(e) => tracing::error!(error = %e, "cannot start the span exporter"),
            }
        })?;
    let threshold = (config.sample_ratio * (1u64 << 63) as f64) as u64;
    Ok((
        Arc::new(Tracer {
            tx,
            threshold,
            parent_based: config.parent_based,
            dropped_queue_full: metrics.dropped_queue_full,
        }),
        ExporterHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
    ))
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

struct Exporter {
    client: HttpsClient,
    endpoint: http::Uri,
    protocol: OtlpProtocol,
    headers: Vec<(HeaderName, HeaderValue)>,
    interval: Duration,
    timeout: Duration,
    encoder: wire::Encoder,
    metrics: TracingMetrics,
    /// Export failures in a row; the log speaks at the first and then
    /// every hundredth, so a dead collector does not flood it.
    failures: u64,
}

impl Exporter {
    fn new(config: &Tracing, metrics: TracingMetrics) -> std::io::Result<Exporter> {
        let url: http::Uri = config
            .endpoint
            .parse()
            .map_err(|e| std::io::Error::other(format!("otlp_endpoint: {e}")))?;
        let endpoint = match config.protocol {
            OtlpProtocol::HttpProtobuf => url,
            // A gRPC collector is named by its address; the call has a
            // path of its own.
            OtlpProtocol::Grpc => {
                let mut parts = url.into_parts();
                parts.path_and_query = Some(http::uri::PathAndQuery::from_static(GRPC_EXPORT));
                http::Uri::from_parts(parts)
                    .map_err(|e| std::io::Error::other(format!("otlp_endpoint: {e}")))?
            }
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.export_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http();
        let (https, http2_only) = match config.protocol {
            OtlpProtocol::HttpProtobuf => (https.enable_http1().wrap_connector(http), false),
            OtlpProtocol::Grpc => (https.enable_http2().wrap_connector(http), true),
        };
        let headers = config
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value.expose()).ok()?,
                ))
            })
            .collect();
        Ok(Exporter {
            client: Client::builder(TokioExecutor::new())
                .http2_only(http2_only)
                .build(https),
            endpoint,
            protocol: config.protocol,
            headers,
            interval: config.export_interval,
            timeout: config.export_timeout,
            encoder: wire::Encoder::new(&[
                ("service.name", Value::Str(config.service_name.clone())),
                (
                    "service.version",
                    Value::Str(env!("CARGO_PKG_VERSION").into()),
                ),
                ("telemetry.sdk.name", Value::Str("blastdoor".into())),
                ("telemetry.sdk.language", Value::Str("rust".into())),
            ]),
            metrics,
            failures: 0,
        })
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<SpanRecord>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        // The queue is polled, never awaited: a receiver waiting on it would
        // be woken (a futex call and a context switch) for nearly every span.
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut tick = tokio::time::interval(self.interval.min(POLL));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_export = tokio::time::Instant::now();
        let mut stopping = false;
        while !stopping {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop => stopping = true,
            }
            loop {
                match rx.try_recv() {
                    Ok(span) => {
                        batch.push(span);
                        if batch.len() == MAX_BATCH {
                            self.export(std::mem::take(&mut batch)).await;
                            last_export = tokio::time::Instant::now();
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                }
            }
            let due = last_export.elapsed() >= self.interval || stopping;
            if due && !batch.is_empty() {
                self.export(std::mem::take(&mut batch)).await;
                last_export = tokio::time::Instant::now();
            }
        }
    }

    async fn export(&mut self, spans: Vec<SpanRecord>) {
        let n = spans.len() as u64;
        let encoded = self.encoder.encode(&spans);
        let (body, content_type) = match self.protocol {
            OtlpProtocol::HttpProtobuf => {
                (Bytes::copy_from_slice(encoded), "application/x-protobuf")
            }
            OtlpProtocol::Grpc => (grpc_message(encoded), "application/grpc"),
        };
        drop(spans);
        let Ok(mut req) = Request::post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
        else {
            return;
        };
        let headers = req.headers_mut();
        if self.protocol == OtlpProtocol::Grpc {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let sent = tokio::time::timeout(self.timeout, async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let (head, body) = resp.into_parts();
            // Read the (small) answer so the connection can be reused.
            let trailers = body
                .collect()
                .await
                .ok()
                .and_then(|c| c.trailers().cloned());
            if !head.status.is_success() {
                return Err(format!("the collector answered {}", head.status));
            }
            match self.protocol {
                OtlpProtocol::HttpProtobuf => Ok(()),
                // The call's outcome is in the trailers, or in the head of
                // an answer that has nothing else.
                OtlpProtocol::Grpc => grpc_outcome(trailers.as_ref().unwrap_or(&head.headers)),
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)));
        match sent {
            Ok(()) => {
                self.metrics.exported.inc_by(n);
                if self.failures > 0 {
                    tracing::info!(
                        failures = self.failures,
                        "the OTLP collector takes spans again"
                    );
                }
                self.failures = 0;
            }
            Err(e) => {
                self.metrics.dropped_export_failed.inc_by(n);
                if self.failures.is_multiple_of(100) {
                    tracing::warn!(endpoint = %self.endpoint, error = %e, spans = n, "spans could not be exported and were dropped");
                }
                self.failures += 1;
            }
        }
    }
}

/// A gRPC message: not compressed, its length, then the protobuf.
fn grpc_message(encoded: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + encoded.len());
    framed.put_u8(0);
    // A batch of at most MAX_BATCH spans is far below 4 GiB.
    framed.put_u32(u32::try_from(encoded.len()).unwrap_or(u32::MAX));
    framed.extend_from_slice(encoded);
    framed.freeze()
}

/// `grpc-status` 0 is success; any other code fails the export, with the
/// collector's `grpc-message`.
fn grpc_outcome(fields: &http::HeaderMap) -> Result<(), String> {
    let text = |name: &str| fields.get(name).and_then(|v| v.to_str().ok());
    match text("grpc-status") {
        Some("0") => Ok(()),
        Some(code) => Err(format!(
            "the collector answered grpc-status {code}: {}",
            text("grpc-message").unwrap_or("(no message)")
        )),
        None => Err("the collector's answer carried no grpc-status".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracer whose queue holds one span (and the queue's far end).
    fn tracer(ratio: f64, parent_based: bool) -> (Tracer, mpsc::Receiver<SpanRecord>) {
        let (tx, rx) = mpsc::channel(1);
        let tracer = Tracer {
            tx,
            threshold: (ratio * (1u64 << 63) as f64) as u64,
            parent_based,
            dropped_queue_full: Counter::default(),
        };
        (tracer, rx)
    }

    #[test]
    fn a_grpc_message_is_flag_length_protobuf() {
        let framed = grpc_message(b"\x0a\x03abc");
        assert_eq!(&framed[..], b"\x00\x00\x00\x00\x05\x0a\x03abc");
    }

    #[test]
    fn a_grpc_call_succeeds_on_status_zero_only() {
        let fields = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert_eq!(grpc_outcome(&fields(&[("grpc-status", "0")])), Ok(()));
        assert_eq!(
            grpc_outcome(&fields(&[
                ("grpc-status", "14"),
                ("grpc-message", "overloaded")
            ])),
            Err("the collector answered grpc-status 14: overloaded".to_string())
        );
        assert!(
            grpc_outcome(&fields(&[])).is_err(),
            "no status is no success"
        );
    }

    #[test]
    fn sampling_follows_the_parent_or_the_ratio() {
        let (all, _) = tracer(1.0, true);
        let (none, _) = tracer(0.0, true);
        assert!(all.sample(42, None));
        assert!(!none.sample(42, None));
        assert!(none.sample(42, Some(true)), "a sampled caller wins");
        assert!(!all.sample(42, Some(false)), "so does an unsampled one");
        assert!(
            !tracer(0.0, false).0.sample(42, Some(true)),
            "unless told not to follow"
        );
        // Half the trace ids, decided by their low 63 bits.
        let (half, _) = tracer(0.5, true);
        let kept = (0..10_000u128)
            .filter(|i| half.sample(fastrand::u128(..) ^ i, None))
            .count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (t, mut queue) = tracer(1.0, true);
        let span = SpanRecord {
            trace_id: 1,
            span_id: 2,
            parent_span_id: 0,
            remote_parent: false,
            kind: Kind::Server,
            name: "GET".into(),
            start_unix_nanos: 1,
            end_unix_nanos: 2,
            error: None,
            attributes: vec![],
        };
        t.record(span.clone());
        t.record(span.clone());
        assert_eq!(
            t.dropped_queue_full.get(),
            1,
            "the second found the queue full"
        );
        assert_eq!(queue.try_recv().ok(), Some(span));
    }
}
