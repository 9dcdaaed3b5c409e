#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: usage read from real responses (whole and streamed), priced,
//! and never silently free.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{Value, json};

/// An OpenAI-shaped upstream: JSON or SSE, echoing the requested model.
/// Like OpenAI, a stream reports usage only when asked to.
async fn openai_upstream() -> MockUpstream {
    MockUpstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let model = v["model"].as_str().unwrap_or("gpt-4o-mini").to_string();
        let usage = json!({"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 200}});
        if v["stream"] == true {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                let first = json!({"model": model, "choices": [{"delta": {"content": "hi"}}]});
                let mut last = json!({"model": model, "choices": [{"delta": {}, "finish_reason": "stop"}]});
                if v["stream_options"]["include_usage"] == true {
                    last["usage"] = usage;
                }
                for event in [format!("data: {first}\n\n"), format!("data: {last}\n\n"), "data: [DONE]\n\n".to_string()] {
                    tx.send(Bytes::from(event)).await.unwrap();
                }
            });
            return http::Response::builder()
                .header("content-type", "text/event-stream")
                .header("x-blastdoor-cost-usd", "999")
                .body(body)
                .unwrap();
        }
        json(StatusCode::OK, &json!({"model": model, "choices": [], "usage": usage}))
    })
    .await
}

const PRICES: &str = r#"meter = "openai"
[service.price]
per_request = "0.001"
[service.price.models."gpt-4o-mini"]
input_tokens = "0.15/1M"
cached_input_tokens = "0.075/1M"
output_tokens = "0.60/1M"
"#;

async fn access_lines(gw: &GatewayProcess, n: usize) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let lines: Vec<Value> = gw
            .stdout()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= n || start.elapsed() > blastdoor_testkit::WAIT {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_and_streamed_responses_are_priced() {
    let up = openai_upstream().await;
    let gw = start(
        &[
            service("chat", "/chat", &[up.url()], PRICES),
            service(
                "strict",
                "/strict",
                &[up.url()],
                &PRICES.replace(
                    "meter = \"openai\"",
                    "meter = \"openai\"\nunpriced = \"reject\"",
                ),
            ),
        ]
        .concat(),
    );
    let c = Client::http1();
    let r = c
        .post(
            &gw.url("/chat/v1/chat/completions"),
            r#"{"model":"gpt-4o-mini","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("x-blastdoor-cost-usd"),
        Some("0.001435"),
        "a whole body is priced before it is sent"
    );
    let r = c
        .post(
            &gw.url("/chat/v1/chat/completions"),
            r#"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#,
        )
        .await;
    assert!(r.text().contains("[DONE]"));
    assert_eq!(
        r.header("x-blastdoor-cost-usd"),
        None,
        "a stream's cost is known only at its end; an upstream cannot set it"
    );
    let r = c
        .post(
            &gw.url("/chat/v1/chat/completions"),
            r#"{"model":"gpt-9-preview","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "allow: admitted, flagged");
    let r = c
        .post(
            &gw.url("/strict/v1/chat/completions"),
            r#"{"model":"gpt-9-preview","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED);
    assert!(
        r.problem("unpriced")["detail"]
            .as_str()
            .unwrap()
            .contains("gpt-9-preview")
    );
    assert_eq!(up.hits(), 3, "the refused call never reached the upstream");

    let lines = access_lines(&gw, 4).await;
    // 0.001 + 800 x 0.15/1M + 200 x 0.075/1M + 500 x 0.60/1M = 0.001435
    for (i, line) in lines[..2].iter().enumerate() {
        assert_eq!(line["cost_usd"], "0.001435", "line {i}: {line}");
        assert_eq!(line["units"]["input_tokens"], 800);
        assert_eq!(line["units"]["cached_input_tokens"], 200);
        assert_eq!(line["units"]["output_tokens"], 500);
        assert_eq!(line["model"], "gpt-4o-mini");
        assert!(line.get("unpriced").is_none());
    }
    assert!(
        lines[2]["unpriced"]
            .as_str()
            .unwrap()
            .contains("gpt-9-preview"),
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[2]["cost_usd"], "0.001",
        "only what is known is charged, and the line says what is missing"
    );
    assert_eq!(lines[3]["error"], "unpriced");

    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    for needle in [
        "blastdoor_units_total{service=\"chat\",unit=\"output_tokens\",team=\"\",consumer=\"\"} 1500",
        "blastdoor_unpriced_requests_total{service=\"chat\"} 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }
    let cost: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("blastdoor_cost_usd_total{service=\"chat\",team=\"\",consumer=\"\"} ")
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!((cost - 0.00387).abs() < 1e-9, "{cost}");
    assert!(gw.stderr().contains("usage could not be priced"));
}

/// A whole body of declared length that arrives in pieces is joined
/// before it is priced, and relayed byte for byte.
#[tokio::test]
async fn a_body_arriving_in_pieces_is_priced_whole() {
    let pieces = [
        r#"{"data":[{"url":"a"},"#,
        r#"{"url":"b"},{"url":"c"}"#,
        r#"],"n":7}"#,
    ];
    let whole = pieces.concat();
    let up = MockUpstream::start(move |_req| async move {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            for piece in pieces {
                tx.send(Bytes::from(piece)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        http::Response::builder()
            .header("content-type", "application/json")
            .header("content-length", pieces.concat().len())
            .body(body)
            .unwrap()
    })
    .await;
    let gw = start(&service(
        "images",
        "/images",
        &[up.url()],
        r#"meter = "json"
[service.price]
units = [{ name = "image", price = "0.04", from = "/data/#len" }, { name = "n", price = "0.001", from = "/n" }]
"#,
    ));
    let r = Client::http1().get(&gw.url("/images/generate")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("x-blastdoor-cost-usd"),
        Some("0.127"),
        "3 images and n = 7"
    );
    assert_eq!(r.text(), whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_read_whole_must_arrive_before_the_timeout() {
    // The head arrives at once, the body never ends: the deadline that
    // covered the head covers the body the meter reads whole.
    let up = MockUpstream::start(|_req| async move {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            tx.send(Bytes::from(r#"{"n":"#)).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tx);
        });
        http::Response::builder()
            .header("content-type", "application/json")
            .header("content-length", "8")
            .body(body)
            .unwrap()
    })
    .await;
    let gw = start(&service(
        "slow",
        "/slow",
        &[up.url()],
        r#"meter = "json"
timeout = "300ms"
[service.price]
units = [{ name = "n", price = "0.001", from = "/n" }]
"#,
    ));
    let r = Client::http1().get(&gw.url("/slow/x")).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    r.problem("upstream_timeout");
    assert!(r.header("x-blastdoor-cost-usd").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_asked_for_their_usage_unless_told_not_to() {
    let up = openai_upstream().await;
    let gw = start(
        &[
            service("asked", "/asked", &[up.url()], PRICES),
            service(
                "raw",
                "/raw",
                &[up.url()],
                &PRICES.replace(
                    "meter = \"openai\"",
                    "meter = \"openai\"\ninclude_usage = false",
                ),
            ),
        ]
        .concat(),
    );
    let c = Client::http1();
    let streamed = r#"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#;
    let r = c
        .post(&gw.url("/asked/v1/chat/completions"), streamed)
        .await;
    assert!(
        r.text().contains("\"usage\""),
        "the caller sees the documented usage chunk: {}",
        r.text()
    );
    c.post(&gw.url("/raw/v1/chat/completions"), streamed).await;
    let lines = access_lines(&gw, 2).await;
    assert_eq!(lines[0]["cost_usd"], "0.001435", "{}", lines[0]);
    assert!(lines[0].get("unpriced").is_none());
    assert!(
        lines[1]["unpriced"].as_str().unwrap().contains("no usage"),
        "{}",
        lines[1]
    );
}
