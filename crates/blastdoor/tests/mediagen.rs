#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: mediagen, the reference service, behind the gateway with its
//! contract enforced, an API key, and prices per image and per video second
//! read by the `json` meter from mediagen's own `usage`.
//!
//! - The official OpenAI Python SDK's `images.generate` gets real PNGs, and
//!   the ledger prices each call from the response (needs
//!   `BLASTDOOR_TEST_PYTHON`; says SKIPPED without it).
//! - A video job goes through: created (billed its seconds), polled until
//!   done (billed nothing but the per-request price), its APNG fetched.

mod common;
#[path = "sdk/python.rs"]
mod python;

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

/// Micro-dollars of the prices below.
const PER_REQUEST: i64 = 500;
const PER_IMAGE: i64 = 40_000;
const PER_VIDEO_SECOND: i64 = 50_000;

fn contract() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/contracts/mediagen.yaml")
}

/// mediagen with the local renderer, in this process, on a free port.
async fn start_mediagen() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = mediagen::router(
        mediagen::backend::Local::new(2),
        mediagen::Config::default(),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn gateway_config(upstream: &str) -> String {
    format!(
        r#"
[store]
key_sync_interval = "100ms"

[[service]]
name = "mediagen"
owner = "media"
route = {{ prefix = "/mediagen" }}
upstreams = ["{upstream}"]
contract = "{}"
validate = "enforce"
meter = "json"
timeout = "60s"
[service.price]
per_request = "0.0005"
units = [
  {{ name = "image", price = "0.04", from = "/usage/images" }},
  {{ name = "video_second", price = "0.05", from = "/usage/video_seconds" }},
]
"#,
        contract().display()
    )
}

/// A key for mediagen, once the running gateway knows it.
async fn media_key(gw: &GatewayProcess) -> String {
    let key = keys(
        gw,
        &[
            "create",
            "--name",
            "media-app",
            "--team",
            "media",
            "--services",
            "mediagen",
        ],
    );
    let c = Client::http1();
    // A job nobody made: 404 from mediagen once the key is known, 401 before.
    let probe = gw.url("/mediagen/v1/videos/vid_000000000000");
    let bearer = format!("Bearer {key}");
    eventually("the gateway knows the new key", async || {
        bearer_get(&c, &probe, &bearer).await.status == StatusCode::NOT_FOUND
    })
    .await;
    key
}

fn dollars(micros: i64) -> String {
    let frac = format!("{:06}", micros % 1_000_000);
    match frac.trim_end_matches('0') {
        "" => (micros / 1_000_000).to_string(),
        f => format!("{}.{f}", micros / 1_000_000),
    }
}

/// The ledger record of one request: its priced units and cost.
fn billed(records: &[blastdoor_store::LedgerRecord]) -> (Value, i64) {
    assert_eq!(records.len(), 1, "one ledger record: {records:?}");
    let r = &records[0];
    assert!((200..300).contains(&r.status), "{r:?}");
    assert_eq!(r.unpriced, None, "{r:?}");
    let units: serde_json::Map<String, Value> = r
        .units
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(u, n)| (u.clone(), json!(n)))
        .collect();
    (Value::Object(units), r.cost_micros)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_generates_images_and_the_ledger_prices_them() {
    let Some(python) = python::python() else {
        return python::skip("openai_sdk_generates_images_and_the_ledger_prices_them");
    };
    let gw = start(&gateway_config(&start_mediagen().await));
    let key = media_key(&gw).await;
    let lines =
        python::run_script(&python, "openai_images.py", &gw.url("/mediagen/v1"), &key).await;
    assert_eq!(lines[0]["sdk"], "openai", "{}", lines[0]);
    let by_id = |id: &str| {
        lines
            .iter()
            .find(|l| l["request_id"] == id)
            .unwrap()
            .clone()
    };

    let one = by_id("img-one");
    assert_eq!(
        one["images"],
        json!([{"png": true, "width": 256, "height": 256, "bytes": one["images"][0]["bytes"]}])
    );
    let two = by_id("img-two");
    let pictures = two["images"].as_array().unwrap();
    assert_eq!(pictures.len(), 2);
    for p in pictures {
        assert_eq!(
            (&p["png"], &p["width"], &p["height"]),
            (&json!(true), &json!(512), &json!(512)),
            "{p}"
        );
    }
    assert_ne!(pictures[0]["bytes"], Value::Null);
    assert_eq!(two["usage"], json!({"images": 2, "video_seconds": 0}));
    let refused = by_id("img-refused");
    assert_eq!(
        (&refused["refused"], &refused["code"]),
        (&json!(true), &json!("contract_violation")),
        "{refused}"
    );

    // The cost the SDK saw in the header is what the ledger holds: the
    // response's image count times the price, plus the per-request price.
    let ids = ["img-one".to_string(), "img-two".to_string()];
    let ledger = python::ledger(gw, &ids).await;
    for (id, images, line) in [("img-one", 1, &one), ("img-two", 2, &two)] {
        let (units, cost) = billed(&ledger[id]);
        assert_eq!(units, json!({ "image": images }), "{id}");
        assert_eq!(cost, PER_REQUEST + images * PER_IMAGE, "{id}");
        assert_eq!(line["cost_header"], dollars(cost).as_str(), "{id}");
    }
}

fn post_json(url: &str, key: &str, id: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("x-request-id", id)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_job_is_billed_once_for_its_seconds() {
    let gw = start(&gateway_config(&start_mediagen().await));
    let key = media_key(&gw).await;
    let c = Client::http1();

    let body = json!({ "prompt": "rain on a window", "seconds": 2, "size": "128x128" });
    let created = c
        .send(post_json(
            &gw.url("/mediagen/v1/videos"),
            &key,
            "vid-create",
            &body,
        ))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text());
    let job = created.json();
    assert_eq!(job["usage"], json!({"images": 0, "video_seconds": 2}));
    let create_cost = PER_REQUEST + 2 * PER_VIDEO_SECOND;
    assert_eq!(
        created.header("x-blastdoor-cost-usd"),
        Some(dollars(create_cost).as_str())
    );

    let url = gw.url(&format!(
        "/mediagen/v1/videos/{}",
        job["id"].as_str().unwrap()
    ));
    let bearer = format!("Bearer {key}");
    let mut polls = Vec::new();
    let mut done = Value::Null;
    eventually("the video is rendered", async || {
        let id = format!("vid-poll-{}", polls.len());
        let req = Request::get(&url)
            .header("authorization", &bearer)
            .header("x-request-id", &id)
            .body(Full::default())
            .unwrap();
        let reply = c.send(req).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(
            reply.header("x-blastdoor-cost-usd"),
            Some(dollars(PER_REQUEST).as_str())
        );
        polls.push(id);
        done = reply.json();
        done["status"] == "completed"
    })
    .await;
    assert_eq!(done["progress"], 100);
    assert_eq!(done["result"]["media_type"], "image/apng");
    let apng = B64
        .decode(done["result"]["b64_data"].as_str().unwrap())
        .unwrap();
    assert_eq!(&apng[..8], b"\x89PNG\r\n\x1a\n");
    assert!(apng.windows(4).any(|w| w == b"acTL"), "an animated PNG");

    let mut ids = vec!["vid-create".to_string()];
    ids.extend(polls.iter().cloned());
    let ledger = python::ledger(gw, &ids).await;
    assert_eq!(
        billed(&ledger["vid-create"]),
        (json!({"video_second": 2}), create_cost)
    );
    for id in &polls {
        assert_eq!(
            billed(&ledger[id]),
            (json!({}), PER_REQUEST),
            "{id}: a poll"
        );
    }
}
