#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: two replicas on one store and one Redis hold rate limits
//! and budgets for the cluster, not once per replica; without Redis they
//! fall back to per-node limits and keep serving.

mod common;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

const TOKEN: &str = "admin-token-for-cluster-01";

fn redis_url() -> Option<String> {
    let url = std::env::var("BLASTDOOR_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("SKIPPED: BLASTDOOR_TEST_REDIS_URL is not set (.ci/run sets it)");
    }
    url
}

/// An images API: `n` images (from the query, default 1) per answer.
async fn images_upstream() -> MockUpstream {
    MockUpstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        let n: usize = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        json(
            StatusCode::OK,
            &json!({ "data": vec![json!({"url": "x"}); n] }),
        )
    })
    .await
}

/// A replica's config: the shared SQLite file, the shared Redis under a
/// prefix of this test's, and three services.
fn replica(db: &std::path::Path, redis: &str, upstream: &str) -> String {
    let image = "meter = \"json\"\nprice = { reserve = \"0.04\", units = [{ name = \"image\", price = \"0.04\", from = \"/data/#len\" }] }";
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\nworkers = 2\n\
         [store]\nurl = \"sqlite://{db}\"\nredis = \"{redis}\"\nkey_sync_interval = \"50ms\"\nflush_interval = \"100ms\"\n\
         [[service]]\nname = \"chat\"\nroute = {{ prefix = \"/chat\" }}\nupstreams = [\"{upstream}\"]\n\
         rate_limit = {{ per_key_requests_per_minute = 4 }}\n\
         [[service]]\nname = \"img\"\nroute = {{ prefix = \"/img\" }}\nupstreams = [\"{upstream}\"]\nmax_concurrency = 500\n{image}\n\
         [[service]]\nname = \"units\"\nroute = {{ prefix = \"/units\" }}\nupstreams = [\"{upstream}\"]\n{image}\n\
         rate_limit = {{ per_key_units_per_minute = {{ image = 3 }} }}\n",
        db = db.display()
    )
}

async fn post(c: &Client, url: String, key: &str) -> Reply {
    let req = Request::post(url)
        .header("authorization", format!("Bearer {key}"))
        .body(Full::default())
        .unwrap();
    c.send(req).await
}

fn admin(gw: &GatewayProcess, path: &str) -> Request<Full<Bytes>> {
    Request::get(gw.admin_url(path))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::default())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_limits_and_budgets_through_redis() {
    let Some(redis) = redis_url() else { return };
    let up = images_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    // Keys of its own: limits and tallies from other runs never apply.
    let prefix = format!("blastdoor-test-{:016x}:", fastrand::u64(..));
    let config = replica(&db, &redis, &up.url()).replace(
        "[store]\n",
        &format!("[store]\nredis_prefix = \"{prefix}\"\n"),
    );
    let (a, b) = (start(&config), start(&config));
    let key = keys(&a, &["create", "--name", "loadgen", "--team", "media"]);
    // The budget's team spends nothing before its budget is set.
    let spender = keys(&a, &["create", "--name", "render", "--team", "render"]);
    let c = Client::http1();
    for gw in [&a, &b] {
        eventually("both replicas hold the key and reach Redis", async || {
            let r = post(&c, gw.url("/units/x?n=0"), &key).await;
            r.status == StatusCode::OK && gw.stderr().contains("connected to Redis")
        })
        .await;
    }

    // Requests per minute: 4 for the key, whichever replica it calls.
    let mut seen = Vec::new();
    for gw in [&a, &b, &a, &b] {
        let r = post(&c, gw.url("/chat/x"), &key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        seen.push(r.header("ratelimit").unwrap().to_string());
    }
    assert!(seen[3].starts_with("\"caller\";r=0;"), "{seen:?}");
    let refused = post(&c, b.url("/chat/x"), &key).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    refused.problem("rate_limited");
    assert_eq!(
        post(&c, a.url("/chat/x"), &key).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Units per minute: images used on b count on a.
    assert_eq!(
        post(&c, a.url("/units/x?n=1"), &key).await.status,
        StatusCode::OK
    );
    assert_eq!(
        post(&c, b.url("/units/x?n=3"), &key).await.status,
        StatusCode::OK
    );
    eventually("a sees the images b used", async || {
        // n=0 charges nothing: on its own, a has used 1 image of 3.
        post(&c, a.url("/units/x?n=0"), &key).await.status == StatusCode::TOO_MANY_REQUESTS
    })
    .await;

    // A hard $0.20 budget for the team, 60 concurrent requests split over
    // both replicas: reservations equal the real cost, so exactly 5 fit
    // in the cluster (each replica alone would admit 5).
    budgets(
        &a,
        &[
            "set", "--team", "render", "--amount", "0.20", "--period", "day", "--mode", "hard",
        ],
    );
    for gw in [&a, &b] {
        // The metric comes from the replica's book (the API also lists
        // budgets from the store).
        eventually("the replica holds the budget", async || {
            let metrics = c.get(&gw.admin_url("/metrics")).await.text();
            metrics.contains("blastdoor_budget_remaining_usd{")
                && metrics.contains("target=\"render\"")
        })
        .await;
    }
    let before = up.hits();
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let gw = if i % 2 == 0 { &a } else { &b };
            tokio::spawn({
                let (c, url, key) = (c.clone(), gw.url("/img/x"), spender.clone());
                async move { post(&c, url, &key).await }
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::PAYMENT_REQUIRED => {
                r.problem("budget_exceeded");
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert_eq!(
        ok,
        5,
        "$0.20 of $0.04 images, across two replicas\n{}\n{}",
        a.stderr(),
        b.stderr()
    );
    assert_eq!(
        up.hits() - before,
        5,
        "refused calls never reach the upstream"
    );

    // The shared ledger agrees: $0.20 spent on img.
    eventually("the ledger holds the spend", async || {
        let usage = c.send(admin(&b, "/v1/usage?group_by=service")).await.json();
        let img: Option<&Value> = usage["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["group"] == "img"));
        img.is_some_and(|r| r["cost_usd"] == "0.2" && r["requests"] == 5)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_replica_serves_on_its_own_limits() {
    let up = images_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&replica(
        &dir.path().join("alone.db"),
        &dead_upstream().replace("http", "redis"),
        &up.url(),
    ));
    let key = keys(&gw, &["create", "--name", "solo"]);
    let c = Client::http1();
    eventually("the key is loaded", async || {
        post(&c, gw.url("/units/x?n=0"), &key).await.status == StatusCode::OK
    })
    .await;
    for _ in 0..4 {
        assert_eq!(
            post(&c, gw.url("/chat/x"), &key).await.status,
            StatusCode::OK
        );
    }
    let r = post(&c, gw.url("/chat/x"), &key).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the node's own limit holds"
    );
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    let errors: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("blastdoor_redis_errors_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors >= 1.0, "{metrics}");
    assert!(gw.stderr().contains("Redis is unreachable"));
}
