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
    let second = c.get(&gw.url("/open/x")).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        second.header("ratelimit-policy"),
        first.header("ratelimit-policy"),
        "the policy made once is the policy"
    );
    assert!(
        second
            .header("ratelimit")
            .unwrap()
            .starts_with("\"service\";r=0;")
    );
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

/// An upstream answering with `n` images (from the query), like an images API.
async fn images_upstream() -> MockUpstream {
    MockUpstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        let n: usize = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let data: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({"b64_json": i.to_string()}))
            .collect();
        json(StatusCode::OK, &serde_json::json!({ "data": data }))
    })
    .await
}

/// Waits until settle has charged `n` images to `service` (the response
/// reaches the caller a moment before its request settles).
async fn charged(gw: &GatewayProcess, service: &str, n: u32) {
    let c = Client::http1();
    let line = format!(
        "blastdoor_units_total{{service=\"{service}\",unit=\"image\",team=\"\",consumer=\"\"}} {n}\n"
    );
    eventually(&line, async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains(&line)
    })
    .await;
}

const IMAGE_METER: &str = "meter = \"json\"\nprice = { units = [{ name = \"image\", price = \"0.04\", from = \"/data/#len\" }] }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_per_minute_per_key_and_per_service() {
    let up = images_upstream().await;
    let limits = config(&up.url())
        .replace(
            "name = \"chat\"",
            &format!("name = \"chat\"\n{IMAGE_METER}rate_limit = {{ per_key_units_per_minute = {{ image = 5 }} }}"),
        )
        .replace(
            "name = \"open\"",
            &format!("name = \"open\"\n{IMAGE_METER}rate_limit = {{ units_per_minute = {{ image = 4 }}, requests_per_minute = 100 }}"),
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

    // Units are checked at admission and charged from the response: 3 + 3
    // images pass (5 were left before the second), then the key is in debt.
    let first = bearer_get(&c, &gw.url("/chat/x?n=3"), &a).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"caller-image\";q=5;w=60;qu=\"image\"")
    );
    assert_eq!(first.header("ratelimit"), Some("\"caller-image\";r=5;t=0"));
    charged(&gw, "chat", 3).await;
    let second = bearer_get(&c, &gw.url("/chat/x?n=3"), &a).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(
        second
            .header("ratelimit")
            .unwrap()
            .starts_with("\"caller-image\";r=2;"),
        "{:?}",
        second.headers
    );
    charged(&gw, "chat", 6).await;
    let refused = bearer_get(&c, &gw.url("/chat/x?n=1"), &a).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let detail = refused.problem("rate_limited")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("the caller's limit of 5 image per minute on chat is used up"),
        "{detail}"
    );
    // 6 images used of 5 a minute: the debt of one plus one to spend is 24 s.
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=24).contains(&retry), "retry-after {retry}");
    assert!(
        refused
            .header("ratelimit")
            .unwrap()
            .starts_with("\"caller-image\";r=0;")
    );
    assert_eq!(
        bearer_get(&c, &gw.url("/chat/x?n=5"), &b).await.status,
        StatusCode::OK,
        "b has its own units"
    );

    // The service's own units limit counts every caller, and sits beside
    // its requests limit in the headers.
    let open = c.get(&gw.url("/open/x?n=4")).await;
    assert_eq!(open.status, StatusCode::OK);
    charged(&gw, "open", 4).await;
    assert_eq!(
        open.header("ratelimit-policy"),
        Some("\"service\";q=100;w=60, \"service-image\";q=4;w=60;qu=\"image\"")
    );
    let refused = c.get(&gw.url("/open/x")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.problem("rate_limited")["detail"]
            .as_str()
            .unwrap()
            .contains("the service's limit of 4 image")
    );
    assert_eq!(up.hits(), 4, "refused calls never reach the upstream");
}
