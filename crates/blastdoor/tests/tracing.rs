#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! Spans over OTLP to an in-process collector, decoded with the official
//! OpenTelemetry protobuf types: a server span per request, a client span
//! per upstream attempt, W3C parentage, attributes, sampling, and a dead
//! collector that costs requests nothing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use common::*;
use http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::json;

/// An OTLP/HTTP collector on loopback: every span it was sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    resource: Arc<Mutex<HashMap<String, String>>>,
}

impl Collector {
    async fn start() -> (Collector, String) {
        let c = Collector::default();
        let state = c.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: http::HeaderMap, body: Bytes| async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                state.take(ExportTraceServiceRequest::decode(body).unwrap());
                StatusCode::OK
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        (c, url)
    }

    /// An OTLP/gRPC collector (HTTP/2 by prior knowledge): each Export
    /// call's one message, answered with `grpc-status` in the trailers.
    async fn start_grpc() -> (Collector, String) {
        use http_body_util::BodyExt;
        let c = Collector::default();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let state = c.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = l.accept().await.unwrap();
                let state = state.clone();
                let call =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            assert_eq!(req.version(), http::Version::HTTP_2);
                            assert_eq!(
                                req.uri().path(),
                                "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                            );
                            assert_eq!(req.headers()["content-type"], "application/grpc");
                            assert_eq!(req.headers()["te"], "trailers");
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            // Not compressed, then the message's length.
                            assert_eq!(body[0], 0);
                            let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
                            assert_eq!(len, body.len() - 5);
                            state.take(ExportTraceServiceRequest::decode(&body[5..]).unwrap());
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            let answer =
                                http_body_util::Full::new(Bytes::new()).with_trailers(async {
                                    Some(Ok::<_, std::convert::Infallible>(trailers))
                                });
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .header("content-type", "application/grpc")
                                    .body(answer)
                                    .unwrap(),
                            )
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), call),
                );
            }
        });
        (c, url)
    }

    fn take(&self, req: ExportTraceServiceRequest) {
        for rs in req.resource_spans {
            for kv in rs.resource.map(|r| r.attributes).unwrap_or_default() {
                if let Some(Value::StringValue(s)) = kv.value.and_then(|v| v.value) {
                    self.resource.lock().unwrap().insert(kv.key, s);
                }
            }
            for ss in rs.scope_spans {
                self.spans.lock().unwrap().extend(ss.spans);
            }
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

fn attr(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

fn str_attr(span: &Span, key: &str) -> String {
    match attr(span, key) {
        Some(Value::StringValue(s)) => s,
        other => panic!("{key}: {other:?}"),
    }
}

fn int_attr(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Value::IntValue(i)) => i,
        other => panic!("{key}: {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tracing_config(endpoint: &str, extra: &str) -> String {
    format!("[tracing]\notlp_endpoint = \"{endpoint}\"\nexport_interval = \"50ms\"\n{extra}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_is_a_server_span_with_a_client_span_per_attempt() {
    let (collector, endpoint) = Collector::start().await;
    // The first attempt gets a 503, the retry a priced answer.
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = MockUpstream::start({
        let calls = Arc::clone(&calls);
        move |_req| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    json(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": "busy"}))
                } else {
                    json(
                        StatusCode::OK,
                        &json!({"model": "gpt-4o-mini", "choices": [],
                                "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}),
                    )
                }
            }
        }
    })
    .await;
    let gw = start(&format!(
        "{}[store]\nkey_sync_interval = \"100ms\"\n\
         [[service]]\nname = \"chat\"\nroute = {{ prefix = \"/chat\" }}\nupstreams = [\"{}\"]\nmeter = \"openai\"\n\
         [service.price.models.\"gpt-4o-mini\"]\ninput_tokens = \"1\"\noutput_tokens = \"2\"\n",
        tracing_config(&endpoint, "service_name = \"edge-gw\""),
        upstream.url()
    ));
    let key = keys(&gw, &["create", "--name", "web", "--team", "ads"]);
    let c = Client::http1();
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let send = || {
        let mut req = with_key(
            &gw.url("/chat/v1/chat/completions"),
            "authorization",
            &format!("Bearer {key}"),
        );
        req.headers_mut().insert(
            "traceparent",
            format!("00-{caller_trace}-{caller_span}-01")
                .parse()
                .unwrap(),
        );
        req.headers_mut()
            .insert("tracestate", "vendor=opaque".parse().unwrap());
        c.send(req)
    };
    eventually("the key works", async || {
        calls.store(0, Ordering::SeqCst);
        send().await.status == StatusCode::OK
    })
    .await;
    let traceparents_seen: Vec<String> = upstream
        .seen()
        .iter()
        .rev()
        .take(2)
        .map(|s| s.headers["traceparent"].to_str().unwrap().to_string())
        .collect();

    let mut spans = Vec::new();
    eventually("three spans of the answered request", async || {
        spans = collector
            .spans()
            .into_iter()
            .filter(|s| hex(&s.trace_id) == caller_trace)
            .filter(|s| {
                s.kind != SpanKind::Server as i32
                    || attr(s, "http.response.status_code") == Some(Value::IntValue(200))
            })
            .collect();
        spans
            .iter()
            .filter(|s| s.kind == SpanKind::Client as i32)
            .count()
            >= 2
            && spans.iter().any(|s| s.kind == SpanKind::Server as i32)
    })
    .await;
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    // The server span continues the caller's trace, under the caller's span.
    assert_eq!(hex(&server.parent_span_id), caller_span);
    assert_eq!(
        server.flags & 0x301,
        0x301,
        "sampled, parent known to be remote"
    );
    assert_eq!(server.name, "GET /chat");
    assert!(server.end_time_unix_nano > server.start_time_unix_nano);
    assert_eq!(str_attr(server, "blastdoor.service"), "chat");
    assert_eq!(str_attr(server, "blastdoor.consumer"), "web");
    assert_eq!(str_attr(server, "blastdoor.team"), "ads");
    assert_eq!(int_attr(server, "http.response.status_code"), 200);
    assert_eq!(int_attr(server, "blastdoor.attempts"), 2);
    // 12 input tokens at $1 and 5 output tokens at $2.
    assert_eq!(int_attr(server, "blastdoor.cost_micros"), 22_000_000);
    assert_eq!(str_attr(server, "gen_ai.provider.name"), "openai");
    assert_eq!(str_attr(server, "gen_ai.response.model"), "gpt-4o-mini");
    assert_eq!(int_attr(server, "gen_ai.usage.input_tokens"), 12);
    assert_eq!(int_attr(server, "gen_ai.usage.output_tokens"), 5);
    assert!(server.status.is_none(), "a 200 is no error");

    // One client span per attempt, both children of the server span; each
    // attempt told the upstream its own span id.
    let mut clients: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32 && s.parent_span_id == server.span_id)
        .collect();
    clients.sort_by_key(|s| int_attr(s, "http.request.resend_count"));
    assert_eq!(clients.len(), 2, "{spans:?}");
    assert_eq!(int_attr(clients[0], "http.response.status_code"), 503);
    assert_eq!(
        clients[0].status.as_ref().unwrap().code,
        2,
        "a 503 is an error"
    );
    assert_eq!(int_attr(clients[1], "http.response.status_code"), 200);
    assert_eq!(str_attr(clients[1], "url.full"), upstream.url());
    for client in &clients {
        let sent = format!("00-{caller_trace}-{}-01", hex(&client.span_id));
        assert!(
            traceparents_seen.contains(&sent),
            "{sent} not in {traceparents_seen:?}"
        );
    }
    // tracestate passes through untouched.
    assert_eq!(
        upstream.seen().last().unwrap().headers["tracestate"],
        "vendor=opaque"
    );
    eventually("the resource names the gateway", async || {
        collector
            .resource
            .lock()
            .unwrap()
            .get("service.name")
            .map(String::as_str)
            == Some("edge-gw")
    })
    .await;
}

/// `otlp_protocol = "grpc"`: the same spans, as the TraceService's Export
/// call over HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_over_grpc_when_asked() {
    let (collector, endpoint) = Collector::start_grpc().await;
    let upstream = MockUpstream::echo().await;
    let gw = start(&format!(
        "{}{}",
        tracing_config(&endpoint, "otlp_protocol = \"grpc\""),
        service("echo", "/echo", &[upstream.url()], "")
    ));
    let c = Client::http1();
    let r = c.get(&gw.url("/echo/hi")).await;
    assert_eq!(r.status, StatusCode::OK);
    eventually("a server and a client span arrive", async || {
        collector.spans().len() >= 2
    })
    .await;
    let spans = collector.spans();
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("a server span");
    assert_eq!(server.name, "GET /echo");
    assert_eq!(str_attr(server, "url.path"), "/echo/hi");
    let client = spans
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .expect("a client span");
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(client.trace_id, server.trace_id);
    // The upstream was told the client span's id.
    let seen = upstream.seen();
    let sent = seen[0].headers["traceparent"].to_str().unwrap();
    assert!(sent.contains(&hex(&client.span_id)), "{sent}");
    eventually(
        "the collector's grpc-status 0 counts as exported",
        async || {
            let text = c.get(&gw.admin_url("/metrics")).await.text();
            text.lines().any(|l| {
                l.strip_prefix("blastdoor_otlp_spans_exported_total ")
                    .and_then(|n| n.parse::<f64>().ok())
                    .is_some_and(|n| n >= 2.0)
            })
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_follows_the_caller_and_the_ratio() {
    let (collector, endpoint) = Collector::start().await;
    let upstream = MockUpstream::echo().await;
    let gw = start(&format!(
        "{}{}",
        tracing_config(&endpoint, "sample_ratio = 0.0"),
        service("s", "/s", &[upstream.url()], "")
    ));
    let c = Client::http1();
    let get = async |traceparent: Option<&str>| {
        let mut req = http::Request::get(gw.url("/s/x"))
            .body(http_body_util::Full::default())
            .unwrap();
        if let Some(tp) = traceparent {
            req.headers_mut().insert("traceparent", tp.parse().unwrap());
        }
        c.send(req).await
    };
    let sampled = "11111111111111111111111111111111";
    let unsampled = "22222222222222222222222222222222";
    get(None).await;
    get(Some(&format!("00-{unsampled}-00f067aa0ba902b7-00"))).await;
    get(Some(&format!("00-{sampled}-00f067aa0ba902b7-01"))).await;
    // A sampled caller is followed even at ratio 0; nothing else is kept.
    eventually("the sampled caller's spans arrive", async || {
        collector
            .spans()
            .iter()
            .any(|s| hex(&s.trace_id) == sampled)
    })
    .await;
    // The unsampled upstream hop says so.
    assert!(
        upstream
            .seen()
            .iter()
            .any(|s| s.headers["traceparent"].to_str().unwrap().ends_with("-00"))
    );
    // The three requests settled in order and spans are exported in the
    // order they were queued: had the first two been recorded, they would
    // have arrived by now.
    let traces: std::collections::BTreeSet<String> =
        collector.spans().iter().map(|s| hex(&s.trace_id)).collect();
    assert_eq!(
        traces.into_iter().collect::<Vec<_>>(),
        vec![sampled.to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_costs_requests_nothing_but_a_counter() {
    let upstream = MockUpstream::echo().await;
    let gw = start(&format!(
        "{}{}",
        tracing_config(&dead_upstream(), "export_timeout = \"1s\""),
        service("s", "/s", &[upstream.url()], "")
    ));
    let c = Client::http1();
    for _ in 0..5 {
        assert_eq!(c.get(&gw.url("/s/x")).await.status, StatusCode::OK);
    }
    eventually("the dropped spans are counted", async || {
        let text = c.get(&gw.admin_url("/metrics")).await.text();
        text.lines().any(|l| {
            l.starts_with("blastdoor_otlp_spans_dropped_total{reason=\"export_failed\"}")
                && l.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()) >= Some(10.0)
        })
    })
    .await;
}
