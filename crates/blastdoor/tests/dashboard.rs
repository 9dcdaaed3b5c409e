#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! The dashboard in a real headless Chromium, driven by playwright-core
//! (tests/dashboard/e2e.mjs): log in, see traffic made during the test
//! appear without a reload, open a service, see a budget bar move, export
//! CSV, see the dependency map. Screenshots and the CSV are kept under
//! `$BLASTDOOR_TEST_ARTIFACTS/dashboard` (default: cargo's test tmp dir).
//!
//! Needs Node.js, Chromium (`BLASTDOOR_CHROMIUM`, default
//! /usr/bin/chromium) and `npm ci` run in tests/dashboard; `.ci/run` sets
//! all three up. Without them the test says SKIPPED and passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use http::StatusCode;
use serde_json::json;

const TOKEN: &str = "dashboard-admin-token-0123456789";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard")
}

/// What is missing to run a browser, if anything.
fn missing() -> Option<String> {
    let chromium = chromium();
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (set BLASTDOOR_CHROMIUM)"
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no node on PATH".to_string());
    }
    if !e2e_dir().join("node_modules/playwright-core").exists() {
        return Some(format!(
            "playwright-core is not installed: run `npm ci` in {}",
            e2e_dir().display()
        ));
    }
    None
}

fn chromium() -> String {
    std::env::var("BLASTDOOR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string())
}

fn artifacts() -> PathBuf {
    std::env::var_os("BLASTDOOR_TEST_ARTIFACTS")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from)
        .join("dashboard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_traffic_services_spend_and_the_map() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED the dashboard browser test: {why}");
        return;
    }
    // An image service: two images per call at $0.01 each, plus $0.005 a call.
    let upstream = MockUpstream::start(|_req| async {
        json(
            StatusCode::OK,
            &json!({"created": 1, "data": [{"b64_json": "aaaa"}, {"b64_json": "bbbb"}]}),
        )
    })
    .await;
    let gw = start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\nworkers = 2\n\
         [store]\nkey_sync_interval = \"100ms\"\n\
         [[service]]\nname = \"imagegen\"\nowner = \"media-team\"\ndescription = \"Images from prompts\"\n\
         route = {{ prefix = \"/imagegen\" }}\nupstreams = [\"{}\"]\nmeter = \"json\"\n\
         [service.price]\nper_request = \"0.005\"\nunits = [{{ name = \"image\", price = \"0.01\", from = \"/data/#len\" }}]\n",
        upstream.url()
    ));
    let key = keys(&gw, &["create", "--name", "web-app", "--team", "ads"]);
    budgets(
        &gw,
        &[
            "set", "--team", "ads", "--amount", "2", "--period", "month", "--mode", "hard",
        ],
    );
    // The key and budget reach the running gateway on its next sync.
    let c = Client::http1();
    eventually("the key works", async || {
        c.send(with_key(
            &gw.url("/imagegen/v1/images/generations"),
            "authorization",
            &format!("Bearer {key}"),
        ))
        .await
        .status
            == StatusCode::OK
    })
    .await;

    let shots = artifacts();
    std::fs::create_dir_all(&shots).unwrap();
    let run = tokio::task::spawn_blocking({
        let (admin, proxy, key, shots) = (
            format!("http://{}", gw.admin),
            format!("http://{}", gw.proxy),
            key.clone(),
            shots.clone(),
        );
        move || {
            Command::new("node")
                .arg("e2e.mjs")
                .current_dir(e2e_dir())
                .env("BLASTDOOR_ADMIN_URL", admin)
                .env("BLASTDOOR_ADMIN_TOKEN", TOKEN)
                .env("BLASTDOOR_PROXY_URL", proxy)
                .env("BLASTDOOR_API_KEY", key)
                .env("BLASTDOOR_CALL_PATH", "/imagegen/v1/images/generations")
                .env("BLASTDOOR_CALL_BODY", r#"{"prompt":"a red door","n":2}"#)
                .env("BLASTDOOR_SERVICE", "imagegen")
                .env("BLASTDOOR_BUDGET_TARGET", "ads")
                .env("BLASTDOOR_SCREENSHOTS", &shots)
                .env("BLASTDOOR_CHROMIUM", chromium())
                .output()
                .unwrap()
        }
    });
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser test ran for over 5 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}\ngateway log:\n{}",
        shots.display(),
        gw.stderr()
    );
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
    for shot in [
        "01-overview-before.png",
        "02-overview-traffic.png",
        "03-service.png",
        "04-spend.png",
        "05-map.png",
    ] {
        let len = std::fs::metadata(shots.join(shot)).map_or(0, |m| m.len());
        assert!(len > 1000, "{shot} was not saved");
    }
    eprintln!("dashboard screenshots: {}", shots.display());
}

/// The numbers the dashboard draws, without a browser: live stats from
/// memory, spend from the ledger, the map's edges, and the CSV export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_data_follows_traffic() {
    let upstream = MockUpstream::start(|_req| async {
        json(StatusCode::OK, &json!({"data": [{"b64_json": "aaaa"}]}))
    })
    .await;
    let gw = start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\nworkers = 2\n\
         metrics_consumer_label = true\n\
         [store]\nkey_sync_interval = \"100ms\"\nflush_interval = \"50ms\"\n\
         [[service]]\nname = \"imagegen\"\nroute = {{ prefix = \"/imagegen\" }}\nupstreams = [\"{}\"]\nmeter = \"json\"\n\
         [service.price]\nunits = [{{ name = \"image\", price = \"0.04\", from = \"/data/#len\" }}]\n",
        upstream.url()
    ));
    let key = keys(&gw, &["create", "--name", "web-app", "--team", "ads"]);
    let c = Client::http1();
    let call = || {
        c.send(with_key(
            &gw.url("/imagegen/x"),
            "authorization",
            &format!("Bearer {key}"),
        ))
    };
    // Calls refused before the key reaches the gateway count as traffic.
    let mut attempts = 0;
    eventually("the key works", async || {
        attempts += 1;
        call().await.status == StatusCode::OK
    })
    .await;
    let requests = attempts + 4;
    for _ in 0..4 {
        assert_eq!(call().await.status, StatusCode::OK);
    }
    let admin = format!("Bearer {TOKEN}");
    let get = async |path: &str| bearer_get(&c, &gw.admin_url(path), &admin).await;

    // Live: every call, in the current minute (or the one before, if the
    // minute turned while the test ran).
    let mut live = serde_json::Value::Null;
    eventually("live stats count the calls", async || {
        live = get("/v1/dashboard/live?window=1h").await.json();
        live["totals"]["requests"] == requests
    })
    .await;
    assert_eq!(live["window"], "1h");
    let series = live["series"].as_array().unwrap();
    assert_eq!(series.len(), 60);
    let last_two =
        series[58]["requests"].as_u64().unwrap() + series[59]["requests"].as_u64().unwrap();
    assert_eq!(last_two, requests);
    assert_eq!(live["services"][0]["service"], "imagegen");
    assert_eq!(live["totals"]["errors"], 0);
    assert!(live["totals"]["p99_ms"].as_f64().unwrap() > 0.0, "{live}");
    let day = get("/v1/dashboard/live?window=24h").await.json();
    assert_eq!(day["series"].as_array().unwrap().len(), 96);
    assert_eq!(day["totals"]["requests"], requests);
    get("/v1/dashboard/live?window=2h")
        .await
        .problem("bad_request");

    // Spend, once the ledger has the calls: 5 images at $0.04.
    let mut spend = serde_json::Value::Null;
    // Each span is its own query: the writer may store the calls between
    // them, so wait until both have all five.
    eventually("the ledger has the calls", async || {
        spend = get("/v1/dashboard/spend").await.json();
        spend["month"]["requests"] == 5 && spend["today"]["requests"] == 5
    })
    .await;
    assert_eq!(spend["month"]["cost_usd"], "0.2");
    assert_eq!(spend["today"]["cost_usd"], "0.2");
    assert_eq!(spend["by_team"][0]["group"], "ads");
    assert_eq!(spend["top_consumers"][0]["group"], "web-app");
    assert_eq!(spend["hourly"]["rows"][0]["service"], "imagegen");
    assert_eq!(spend["hourly"]["rows"][0]["cost_usd"], "0.2");

    // The map: one edge, team ads -> imagegen.
    let graph = get("/v1/dashboard/graph?window=1h").await.json();
    assert_eq!(graph["edges"][0]["from"], "team:ads", "{graph}");
    assert_eq!(graph["edges"][0]["to"], "service:imagegen");
    assert_eq!(graph["edges"][0]["requests"], 5);
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 2);

    // CSV export.
    let csv = get("/v1/usage?group_by=consumer&format=csv").await;
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.text(),
        "consumer,requests,cost_usd,unpriced_requests,image\nweb-app,5,0.2,0,5\n"
    );

    // Metrics say who spent: the team, and (switched on here) the consumer.
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    for needle in [
        "blastdoor_cost_usd_total{service=\"imagegen\",team=\"ads\",consumer=\"web-app\"} 0.2",
        "blastdoor_units_total{service=\"imagegen\",unit=\"image\",team=\"ads\",consumer=\"web-app\"} 5",
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }

    // The page and its assets are open; the data are not.
    let page = c.get(&gw.admin_url("/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("/assets/app.js"));
    assert!(page.header("content-security-policy").is_some());
    assert_eq!(
        c.get(&gw.admin_url("/assets/app.js")).await.status,
        StatusCode::OK
    );
    c.get(&gw.admin_url("/v1/dashboard/live"))
        .await
        .problem("unauthorized");
}
