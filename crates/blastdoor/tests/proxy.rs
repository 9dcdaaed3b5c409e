#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: the real binary in front of mock upstreams.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};

#[tokio::test]
async fn routes_by_longest_prefix_and_strips_it() {
    let a = MockUpstream::echo().await;
    let b = MockUpstream::echo().await;
    let base = MockUpstream::echo().await;
    let config = [
        service("a", "/a", &[a.url()], ""),
        service("ab", "/a/b", &[b.url()], ""),
        service("based", "/based", &[format!("{}/api/", base.url())], ""),
    ]
    .concat();
    let gw = start(&config);
    let c = Client::http1();

    let r = c.get(&gw.url("/a/x?q=1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["path"], "/x");
    assert_eq!(r.json()["query"], "q=1");
    assert_eq!(c.get(&gw.url("/a")).await.json()["path"], "/");
    assert_eq!(c.get(&gw.url("/a/b/c")).await.json()["path"], "/c");
    assert_eq!(a.hits(), 2);
    assert_eq!(b.hits(), 1);
    // A base path in the upstream URL is kept.
    assert_eq!(
        c.get(&gw.url("/based/v1/x")).await.json()["path"],
        "/api/v1/x"
    );
    // Prefixes match whole segments only.
    c.get(&gw.url("/ab")).await.problem("route_not_found");
    assert_eq!(c.get(&gw.url("/ab")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn host_routes_win_over_hostless_ones() {
    let general = MockUpstream::echo().await;
    let special = MockUpstream::echo().await;
    let config = format!(
        "{}[[service]]\nname = \"special\"\npublic = true\nroute = {{ prefix = \"/x\", host = \"api.example.com\" }}\nupstreams = [\"{}\"]\n",
        service("general", "/x", &[general.url()], ""),
        special.url()
    );
    let gw = start(&config);
    let c = Client::http1();
    let req = |host: &str| {
        Request::get(gw.url("/x/1"))
            .header("host", host)
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    c.send(req("API.example.com:8080")).await;
    c.send(req("other.example.com")).await;
    assert_eq!(special.hits(), 1);
    assert_eq!(general.hits(), 1);
}

#[tokio::test]
async fn forwarding_headers_request_id_and_trace_context() {
    let up = MockUpstream::echo().await;
    let gw = start(&service("s", "/s", &[up.url()], ""));
    let c = Client::http1();
    let req = Request::get(gw.url("/s/h"))
        .header("x-request-id", "caller-id-123")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("x-forwarded-for", "10.1.2.3")
        .header("x-blastdoor-consumer", "forged")
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .body(Full::<Bytes>::default())
        .unwrap();
    let r = c.send(req).await;
    assert_eq!(r.header("x-request-id"), Some("caller-id-123"));
    let h = &r.json()["headers"];
    assert_eq!(h["x-request-id"], "caller-id-123");
    assert_eq!(h["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(
        h["x-forwarded-host"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(h["host"], up.addr.to_string(), "Host is the upstream's");
    let tp = h["traceparent"].as_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert!(
        !tp.contains("00f067aa0ba902b7"),
        "the gateway's hop has its own span id: {tp}"
    );
    for gone in [
        "x-blastdoor-consumer",
        "x-hop",
        "proxy-authorization",
        "connection",
    ] {
        assert!(
            h.get(gone).is_none(),
            "{gone} must not reach the upstream: {h}"
        );
    }

    // Invalid or missing ids are replaced by generated ones.
    let req = Request::get(gw.url("/s/h"))
        .header("x-request-id", "bad id with spaces")
        .body(Full::<Bytes>::default())
        .unwrap();
    let r = c.send(req).await;
    let id = r.header("x-request-id").unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(r.json()["headers"]["x-request-id"], id.as_str());
    let tp = r.json()["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(tp.len(), 55, "a new traceparent is created: {tp}");
}

#[tokio::test]
async fn http2_prior_knowledge_on_the_listener_and_to_h2_upstreams() {
    let up = MockUpstream::echo().await;
    let gw = start(&format!(
        "{}{}",
        service("h1", "/h1", &[up.url()], ""),
        service("h2", "/h2", &[up.url()], "upstream_protocol = \"h2\"")
    ));
    let c = Client::h2c();
    let r = c.get(&gw.url("/h1/x")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["path"], "/x");
    let r = c.post(&gw.url("/h2/y"), "{\"a\":1}").await;
    assert_eq!(r.json()["body"], "{\"a\":1}");
    let versions: Vec<_> = up.seen().iter().map(|s| s.version).collect();
    assert_eq!(
        versions,
        vec![http::Version::HTTP_11, http::Version::HTTP_2]
    );
}

#[tokio::test]
async fn sse_events_reach_the_caller_one_by_one() {
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let gate_up = std::sync::Arc::clone(&gate);
    let up = MockUpstream::start(move |_req| {
        let gate = std::sync::Arc::clone(&gate_up);
        async move {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                tx.send(Bytes::from_static(b"data: first\n\n"))
                    .await
                    .unwrap();
                // The last event is only sent once the caller saw the first.
                gate.notified().await;
                tx.send(Bytes::from_static(b"data: last\n\n"))
                    .await
                    .unwrap();
            });
            http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .unwrap()
        }
    })
    .await;
    let gw = start(&service("sse", "/sse", &[up.url()], ""));
    let resp = Client::http1()
        .open(
            Request::get(gw.url("/sse/stream"))
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = tokio::time::timeout(blastdoor_testkit::WAIT, body.frame())
        .await
        .expect("first event never arrived")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "data: first\n\n");
    gate.notify_one();
    let rest = tokio::time::timeout(blastdoor_testkit::WAIT, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(rest, "data: last\n\n");
}

#[tokio::test]
async fn error_codes_are_problem_json() {
    let slow = MockUpstream::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        text(StatusCode::OK, "late")
    })
    .await;
    let echo = MockUpstream::echo().await;
    let config = [
        service("dead", "/dead", &[dead_upstream()], ""),
        service("slow", "/slow", &[slow.url()], "timeout = \"300ms\""),
        service(
            "small",
            "/small",
            &[echo.url()],
            "max_request_body = \"1KiB\"",
        ),
    ]
    .concat();
    let gw = start(&config);
    let c = Client::http1();

    let r = c.get(&gw.url("/nothing-here")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.problem("route_not_found");

    let r = c.get(&gw.url("/dead/x")).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let p = r.problem("upstream_unavailable");
    assert!(
        !p["detail"].as_str().unwrap().contains("127.0.0.1"),
        "internal addresses stay internal: {p}"
    );

    let r = c.get(&gw.url("/slow/x")).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    r.problem("upstream_timeout");

    let r = c.post(&gw.url("/small/x"), vec![b'a'; 2048]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    r.problem("payload_too_large");
    assert_eq!(
        echo.hits(),
        0,
        "an oversized declared body never reaches the upstream"
    );

    // Without a declared length the cap is enforced while streaming.
    let (tx, body) = channel_body();
    tokio::spawn(async move {
        for _ in 0..8 {
            if tx.send(Bytes::from(vec![b'b'; 512])).await.is_err() {
                break;
            }
        }
    });
    let req = Request::post(gw.url("/small/x")).body(body).unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let resp = tokio::time::timeout(blastdoor_testkit::WAIT, client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let r = c.get(&gw.url("/small/%zz")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    r.problem("bad_request");
}

#[tokio::test]
async fn concurrency_cap_sheds_load_fast() {
    let (up, gate) = gated_upstream().await;
    let gw = start(&service("capped", "/c", &[up.url()], "max_concurrency = 2"));
    let c = Client::http1();
    let held: Vec<_> = (0..2)
        .map(|_| {
            let c = c.clone();
            let url = gw.url("/c/x");
            tokio::spawn(async move { c.get(&url).await })
        })
        .collect();
    // Wait until both are in flight upstream.
    let start = std::time::Instant::now();
    while up.hits() < 2 {
        assert!(start.elapsed() < blastdoor_testkit::WAIT);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = c.get(&gw.url("/c/x")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    r.problem("overloaded");
    assert_eq!(r.header("retry-after"), Some("1"));
    gate.add_permits(2);
    for h in held {
        assert_eq!(h.await.unwrap().status, StatusCode::OK);
    }
    // Slots are released when responses end.
    gate.add_permits(1);
    assert_eq!(c.get(&gw.url("/c/x")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn access_log_has_one_json_line_per_request() {
    let up = MockUpstream::echo().await;
    let gw = start(&service("s", "/s", &[up.url()], ""));
    let c = Client::http1();
    c.get(&gw.url("/s/logged")).await;
    c.get(&gw.url("/unrouted")).await;
    let start = std::time::Instant::now();
    let lines = loop {
        let out = gw.stdout();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= 2 || start.elapsed() > blastdoor_testkit::WAIT {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    let ok = &lines[0];
    assert_eq!(ok["service"], "s");
    assert_eq!(ok["path"], "/s/logged");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["upstream"], up.url());
    assert!(ok["request_id"].as_str().unwrap().len() == 32);
    assert!(ok["trace_id"].as_str().unwrap().len() == 32);
    assert!(ok["duration_ms"].as_f64().is_some() && ok["upstream_ms"].as_f64().is_some());
    assert!(ok["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(lines[1]["error"], "route_not_found");
}

/// Lines are made off the proxy threads, after the response. Requests
/// still in flight when a graceful stop begins end during the drain; their
/// lines are written too, one per request.
#[tokio::test]
async fn a_graceful_stop_writes_the_lines_of_drained_requests() {
    let (up, gate) = gated_upstream().await;
    let mut gw = start(&format!(
        "[log]\naccess = \"access.log\"\n{}",
        service("s", "/s", &[up.url()], "")
    ));
    let c = Client::http1();
    let n = 200;
    let sent: Vec<_> = (0..n)
        .map(|i| {
            let (c, url) = (c.clone(), gw.url(&format!("/s/drained/{i}")));
            tokio::spawn(async move { c.get(&url).await.status })
        })
        .collect();
    let start = std::time::Instant::now();
    while up.hits() < n {
        assert!(start.elapsed() < blastdoor_testkit::WAIT);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.signal("TERM");
    gw.wait_for_log("draining");
    gate.add_permits(n);
    for s in sent {
        assert_eq!(s.await.unwrap(), StatusCode::OK);
    }
    assert!(gw.wait_exit().success());
    let log = std::fs::read_to_string(gw.dir().join("access.log")).unwrap();
    let mut paths: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["path"].to_string())
        .collect();
    assert_eq!(paths.len(), n, "one line per request");
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), n, "each request once");
}

#[tokio::test]
async fn access_log_to_a_rotated_file() {
    let up = MockUpstream::echo().await;
    let gw = start(&format!(
        "[log]\naccess = \"logs/access.log\"\naccess_rotation = \"minutely\"\naccess_max_files = 3\n{}",
        service("s", "/s", &[up.url()], "")
    ));
    let c = Client::http1();
    let r = c.get(&gw.url("/s/rotated")).await;
    let request_id = r.header("x-request-id").unwrap().to_string();
    // Named `access.log.YYYY-MM-DD-HH-mm` beside the config, per minute.
    let logs = gw.dir().join("logs");
    let mut line = None;
    eventually("the line reaches the rotated file", async || {
        let files: Vec<_> = std::fs::read_dir(&logs)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        line = files
            .iter()
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("access.log.") && name.len() == "access.log.2026-11-27-22-05".len()
            })
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .find(|l| l["request_id"] == request_id.as_str());
        line.is_some()
    })
    .await;
    let line = line.unwrap();
    assert_eq!(line["path"], "/s/rotated");
    assert_eq!(line["trace_id"].as_str().unwrap().len(), 32);
    assert!(!gw.stdout().contains("/s/rotated"), "not on stdout too");
}

#[tokio::test]
async fn metrics_count_requests_and_upstream_health() {
    let up = MockUpstream::echo().await;
    let gw = start(&service("m", "/m", &[up.url()], ""));
    let c = Client::http1();
    for _ in 0..3 {
        c.get(&gw.url("/m/x")).await;
    }
    let text = c.get(&gw.admin_url("/metrics")).await.text();
    let up_label = format!("service=\"m\",upstream=\"{}\"", up.url());
    for needle in [
        "blastdoor_requests_total{service=\"m\",operation=\"\",status_class=\"2xx\"} 3".to_string(),
        "blastdoor_request_duration_seconds_count{service=\"m\"} 3".to_string(),
        format!("blastdoor_upstream_duration_seconds_count{{{up_label}}} 3"),
        format!("blastdoor_upstream_healthy{{{up_label}}} 1"),
    ] {
        assert!(text.contains(&needle), "missing {needle}:\n{text}");
    }
    assert_eq!(
        c.get(&gw.admin_url("/healthz")).await.status,
        StatusCode::OK
    );
    assert_eq!(c.get(&gw.admin_url("/readyz")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn large_uploads_stream_through_without_buffering() {
    // The upstream answers as soon as the first piece of the body arrives;
    // the caller sends the rest only after it sees that answer. A gateway
    // that buffered the body would deadlock here (bounded by WAIT).
    let up = MockUpstream::start(|req| async move {
        let mut body = req.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        // Keep reading the rest in the background, as a well-behaved
        // server answering early does.
        tokio::spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
        text(
            StatusCode::OK,
            &format!("first piece: {} bytes", first.len()),
        )
    })
    .await;
    let gw = start(&service(
        "up",
        "/up",
        &[up.url()],
        "max_request_body = \"100MiB\"",
    ));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    for declared in [None, Some(8 * 1024 * 1024)] {
        let (tx, body) = channel_body();
        let mut req = Request::post(gw.url("/up/file"));
        if let Some(len) = declared {
            req = req.header("content-length", len);
        }
        let req = req.body(body).unwrap();
        tx.send(Bytes::from(vec![b'x'; 64 * 1024])).await.unwrap();
        let resp = tokio::time::timeout(blastdoor_testkit::WAIT, client.request(req))
            .await
            .expect("the upstream never saw the first piece: the body was buffered")
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "declared {declared:?}: {}",
            gw.stderr()
        );
        let text = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(text.starts_with(b"first piece: "), "{text:?}");
        drop(tx);
    }
}
