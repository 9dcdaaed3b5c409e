#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: requests per minute and requests in flight, per service and per caller.

mod common;

use common::*;
use http::StatusCode;

#[tokio::test]
async fn requests_per_minute_per_service_and_per_key() {
    let up = MockUpstream::echo().await;
    let limits = config(&up.url())
        .replace(
            "name = \"open\"",
            "name = \"open\"\nrate_limit = { requests_per_minute = 2 }",
        )
        .replace(
            "name = \"chat\"",
            "name = \"chat\"\nrate_limit = { per_key_requests_per_minute = 3 }",
        );
    let gw = start(&limits);
    let c = Client::http1();

    let first = c.get(&gw.url("/open/x")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"service\";q=2;w=60")
    );
    assert!(
        first
            .header("ratelimit")
            .unwrap()
            .starts_with("\"service\";r=1;"),
        "{:?}",
        first.headers
    );
    assert_eq!(c.get(&gw.url("/open/x")).await.status, StatusCode::OK);
    let refused = c.get(&gw.url("/open/x")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    refused.problem("rate_limited");
    assert!(
        refused
            .header("retry-after")
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    assert!(
        refused
            .header("ratelimit")
            .unwrap()
            .starts_with("\"service\";r=0;")
    );

    let a = format!("Bearer {}", keys(&gw, &["create", "--name", "a"]));
    let b = format!("Bearer {}", keys(&gw, &["create", "--name", "b"]));
    eventually("both keys are loaded", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains("blastdoor_api_keys 2")
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            bearer_get(&c, &gw.url("/chat/x"), &a).await.status,
            StatusCode::OK
        );
    }
    let r = bearer_get(&c, &gw.url("/chat/x"), &a).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.problem("rate_limited")["detail"]
            .as_str()
            .unwrap()
            .contains("caller limit of 3")
    );
    assert_eq!(
        bearer_get(&c, &gw.url("/chat/x"), &b).await.status,
        StatusCode::OK,
        "b has its own quota"
    );
    assert_eq!(up.hits(), 6, "refused calls never reach the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_per_key_are_capped() {
    let (up, gate) = gated_upstream().await;
    let limits = config(&up.url()).replace(
        "name = \"chat\"",
        "name = \"chat\"\nrate_limit = { per_key_concurrency = 1 }",
    );
    let gw = start(&limits);
    let c = Client::http1();
    let a = format!("Bearer {}", keys(&gw, &["create", "--name", "a"]));
    let b = format!("Bearer {}", keys(&gw, &["create", "--name", "b"]));
    eventually("both keys are loaded", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains("blastdoor_api_keys 2")
    })
    .await;
    let held = {
        let (c, url, a) = (c.clone(), gw.url("/chat/x"), a.clone());
        tokio::spawn(async move { bearer_get(&c, &url, &a).await })
    };
    eventually("the first call is in flight", async || up.hits() == 1).await;
    let r = bearer_get(&c, &gw.url("/chat/x"), &a).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    r.problem("rate_limited");
    let other = {
        let (c, url, b) = (c.clone(), gw.url("/chat/x"), b.clone());
        tokio::spawn(async move { bearer_get(&c, &url, &b).await })
    };
    eventually("b's call is in flight too", async || up.hits() == 2).await;
    gate.add_permits(2);
    assert_eq!(held.await.unwrap().status, StatusCode::OK);
    assert_eq!(other.await.unwrap().status, StatusCode::OK);
    gate.add_permits(1);
    assert_eq!(
        bearer_get(&c, &gw.url("/chat/x"), &a).await.status,
        StatusCode::OK,
        "the slot came back"
    );
}
