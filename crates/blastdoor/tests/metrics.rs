#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! `/metrics` as a Prometheus server reads it: scraped after real traffic
//! and parsed by the official Prometheus client's OpenMetrics parser
//! (Python, from the venv `.ci/run` makes; skipped without it).

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use common::*;
use http::StatusCode;
use serde_json::Value;

/// Families by name, as the official parser for `content_type` reads
/// `text` (it refuses anything malformed).
fn parse(python: &str, content_type: &str, text: &str) -> HashMap<String, Value> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/parse_metrics.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(content_type)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["name"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_the_prometheus_parser() {
    let Some(python) = std::env::var("BLASTDOOR_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
    else {
        eprintln!(
            "SKIPPED: BLASTDOOR_TEST_PYTHON not set (.ci/run makes a venv with prometheus-client)"
        );
        return;
    };
    let up = MockUpstream::echo().await;
    let gw = start(&service("chat", "/chat", &[up.url()], ""));
    let c = Client::http1();
    assert_eq!(c.get(&gw.url("/chat/x")).await.status, StatusCode::OK);
    assert_eq!(
        c.get(&gw.url("/nowhere")).await.status,
        StatusCode::NOT_FOUND
    );
    // A request is counted when it settles, a moment after its answer.
    let counted =
        "blastdoor_requests_total{service=\"chat\",operation=\"\",status_class=\"2xx\"} 1";
    eventually("the call is counted", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains(counted)
    })
    .await;
    let scrape = c.get(&gw.admin_url("/metrics")).await;
    let content_type = scrape.header("content-type").unwrap().to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let text = scrape.text();
    let families = parse(&python, &content_type, &text);

    let requests = &families["blastdoor_requests"];
    assert_eq!(requests["type"], "counter");
    let ok = requests["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["name"] == "blastdoor_requests_total"
                && s["labels"]["service"] == "chat"
                && s["labels"]["status_class"] == "2xx"
        })
        .unwrap();
    assert_eq!(ok["value"], 1.0);
    let duration = &families["blastdoor_request_duration_seconds"];
    assert_eq!(duration["type"], "histogram");
    let buckets: Vec<&Value> = duration["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["name"] == "blastdoor_request_duration_seconds_bucket"
                && s["labels"]["service"] == "chat"
        })
        .collect();
    assert!(
        buckets.len() > 10,
        "buckets resolve sub-millisecond to minutes: {}",
        buckets.len()
    );
    assert!(
        buckets
            .iter()
            .any(|b| b["labels"]["le"] == "+Inf" && b["value"] == 1.0)
    );
    for (name, kind) in [
        ("blastdoor_gateway_overhead_seconds", "histogram"),
        ("blastdoor_upstream_duration_seconds", "histogram"),
        ("blastdoor_upstream_healthy", "gauge"),
        ("blastdoor_cost_usd", "counter"),
        ("blastdoor_requests_in_flight", "gauge"),
        ("blastdoor_ledger_records_written", "counter"),
    ] {
        assert_eq!(
            families.get(name).map(|f| f["type"].clone()),
            Some(Value::from(kind)),
            "{name} in\n{text}"
        );
    }
}
