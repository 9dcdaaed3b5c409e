#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: retries, their budget, outlier ejection, health checks,
//! upgrades.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn status_upstream(
    status: StatusCode,
) -> impl Fn(
    http::Request<hyper::body::Incoming>,
) -> std::future::Ready<http::Response<blastdoor_testkit::upstream::MockBody>> {
    move |_req| std::future::ready(text(status, "fixed"))
}

#[tokio::test]
async fn connection_failures_are_retried_on_another_host() {
    let good = MockUpstream::echo().await;
    // Default outlier policy: the dead host is ejected after a few
    // failures, so retries stay well within the default budget.
    let gw = start(&service("r", "/r", &[dead_upstream(), good.url()], ""));
    let c = Client::http1();
    for i in 0..20 {
        let r = if i % 2 == 0 {
            c.get(&gw.url("/r/x")).await
        } else {
            c.post(&gw.url("/r/x"), "{}").await
        };
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.text());
    }
    assert_eq!(
        good.hits(),
        20,
        "even POSTs are retried when nothing reached the upstream"
    );
}

#[tokio::test]
async fn retryable_statuses_only_for_idempotent_methods() {
    let failing = MockUpstream::start(status_upstream(StatusCode::SERVICE_UNAVAILABLE)).await;
    let good = MockUpstream::echo().await;
    let gw = start(&service(
        "r",
        "/r",
        &[failing.url(), good.url()],
        "outlier = { consecutive_failures = 0 }",
    ));
    let c = Client::http1();
    for _ in 0..10 {
        assert_eq!(c.get(&gw.url("/r/x")).await.status, StatusCode::OK);
    }
    let failing_before = failing.hits();
    let mut relayed = 0;
    for _ in 0..20 {
        if c.post(&gw.url("/r/x"), "{}").await.status == StatusCode::SERVICE_UNAVAILABLE {
            relayed += 1;
        }
    }
    assert_eq!(
        relayed,
        failing.hits() - failing_before,
        "a POST that reached the upstream is never retried"
    );
    assert!(relayed > 0);
}

#[tokio::test]
async fn the_retry_budget_caps_retries() {
    let a = MockUpstream::start(status_upstream(StatusCode::BAD_GATEWAY)).await;
    let b = MockUpstream::start(status_upstream(StatusCode::BAD_GATEWAY)).await;
    let no_budget = "retries = { attempts = 3, budget_ratio = 0.0, min_per_second = 0 }\noutlier = { consecutive_failures = 0 }";
    let generous = "retries = { attempts = 2, budget_ratio = 1.0, min_per_second = 1000 }\noutlier = { consecutive_failures = 0 }";
    let gw = start(
        &[
            service("tight", "/tight", &[a.url(), b.url()], no_budget),
            service("loose", "/loose", &[a.url(), b.url()], generous),
        ]
        .concat(),
    );
    let c = Client::http1();
    for _ in 0..10 {
        assert_eq!(
            c.get(&gw.url("/tight/x")).await.status,
            StatusCode::BAD_GATEWAY
        );
    }
    assert_eq!(a.hits() + b.hits(), 10, "no budget, no retries");
    for _ in 0..10 {
        assert_eq!(
            c.get(&gw.url("/loose/x")).await.status,
            StatusCode::BAD_GATEWAY
        );
    }
    assert_eq!(a.hits() + b.hits(), 30, "two attempts each within budget");
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains("blastdoor_retries_total{service=\"loose\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("blastdoor_retries_total{service=\"tight\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn outliers_are_ejected_and_come_back() {
    let bad = MockUpstream::start(status_upstream(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let good = MockUpstream::echo().await;
    let policy = "outlier = { consecutive_failures = 3, base_ejection_time = \"1s\", max_ejected_percent = 50 }";
    let gw = start(&service("o", "/o", &[bad.url(), good.url()], policy));
    let c = Client::http1();
    for _ in 0..30 {
        c.post(&gw.url("/o/x"), "{}").await;
    }
    assert_eq!(bad.hits(), 3, "ejected after three failures in a row");
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains(&format!(
            "blastdoor_upstream_healthy{{service=\"o\",upstream=\"{}\"}} 0",
            bad.url()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "blastdoor_upstream_ejections_total{{service=\"o\",upstream=\"{}\"}} 1",
            bad.url()
        )),
        "{metrics}"
    );
    // After the ejection time it takes traffic again.
    eventually("the ejected host gets traffic again", async || {
        c.post(&gw.url("/o/x"), "{}").await;
        bad.hits() > 3
    })
    .await;
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    let healthy = format!(
        "blastdoor_upstream_healthy{{service=\"o\",upstream=\"{}\"}} 1",
        bad.url()
    );
    assert!(
        metrics.contains(&healthy),
        "back in rotation, published as healthy: {metrics}"
    );
}

#[tokio::test]
async fn ejection_never_takes_out_more_than_the_cap() {
    let a = MockUpstream::start(status_upstream(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let b = MockUpstream::start(status_upstream(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let policy = "outlier = { consecutive_failures = 1, base_ejection_time = \"1h\", max_ejected_percent = 50 }";
    let gw = start(&service("o", "/o", &[a.url(), b.url()], policy));
    let c = Client::http1();
    for _ in 0..10 {
        assert_eq!(
            c.post(&gw.url("/o/x"), "{}").await.status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    assert_eq!(
        a.hits().min(b.hits()),
        1,
        "one host ejected after its first failure"
    );
    assert_eq!(
        a.hits().max(b.hits()),
        9,
        "the other stays in, whatever it does"
    );
}

#[tokio::test]
async fn active_health_checks_take_hosts_out_and_back() {
    let healthy = Arc::new(AtomicBool::new(true));
    let h = Arc::clone(&healthy);
    let checked = MockUpstream::start(move |req| {
        let ok = h.load(Ordering::SeqCst);
        async move {
            if req.uri().path() == "/healthz" && !ok {
                text(StatusCode::SERVICE_UNAVAILABLE, "sick")
            } else {
                text(StatusCode::OK, "checked")
            }
        }
    })
    .await;
    let hc = "health_check = { path = \"/healthz\", interval = \"50ms\", timeout = \"1s\", unhealthy_threshold = 1, healthy_threshold = 1 }";
    let gw = start(&service("hc", "/hc", &[checked.url()], hc));
    let c = Client::http1();
    let gauge = format!(
        "blastdoor_upstream_healthy{{service=\"hc\",upstream=\"{}\"}}",
        checked.url()
    );
    assert_eq!(c.get(&gw.url("/hc/x")).await.text(), "checked");
    healthy.store(false, Ordering::SeqCst);
    eventually("the host is marked unhealthy", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains(&format!("{gauge} 0"))
    })
    .await;
    let r = c.get(&gw.url("/hc/x")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    r.problem("upstream_unavailable");
    healthy.store(true, Ordering::SeqCst);
    eventually("the host is marked healthy again", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains(&format!("{gauge} 1"))
    })
    .await;
    assert_eq!(c.get(&gw.url("/hc/x")).await.text(), "checked");
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    let up = MockUpstream::start(|mut req| async move {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buf = [0u8; 64];
            let n = io.read(&mut buf).await.unwrap();
            io.write_all(&buf[..n]).await.unwrap();
        });
        http::Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            .body(blastdoor_testkit::upstream::MockBody::default())
            .unwrap()
    })
    .await;
    let gw = start(&service("ws", "/ws", &[up.url()], ""));
    let mut s = tokio::net::TcpStream::connect(gw.proxy).await.unwrap();
    s.write_all(b"GET /ws/socket HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(blastdoor_testkit::WAIT, s.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    s.write_all(b"hello through the door").await.unwrap();
    let mut buf = [0u8; 22];
    tokio::time::timeout(blastdoor_testkit::WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"hello through the door");
    let seen = &up.seen()[0];
    assert_eq!(seen.headers["upgrade"], "websocket");
    assert_eq!(seen.uri.path(), "/socket");
}
