#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! The sprawl report on a seeded ledger: each finding, from the CLI and
//! from `/v1/reports/sprawl`.

mod common;

use blastdoor_store::{LedgerRecord, LedgerStore, SqlStore, now_ms};
use common::*;
use http::Request;
use http_body_util::Full;
use serde_json::Value;

const TOKEN: &str = "admin-token-for-sprawl-0001";
const DAY: i64 = 86_400_000;

fn contract(path: &str, id: &str, other_id: &str) -> String {
    format!(
        r##"
openapi: 3.1.0
info: {{ title: t, version: "1" }}
paths:
  {path}:
    post:
      operationId: {id}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties: {{ prompt: {{ type: string }}, n: {{ type: integer }}, size: {{ type: string }} }}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {{ type: object, properties: {{ created: {{ type: integer }}, data: {{ type: array }} }} }}
  /v1/{other_id}/{{id}}:
    get:
      operationId: {other_id}
      parameters: [{{ name: id, in: path, required: true, schema: {{ type: string }} }}]
      responses: {{ "200": {{ description: ok }} }}
"##
    )
}

fn record(at: i64, service: &str, operation: &str, team: &str, cost_micros: i64) -> LedgerRecord {
    LedgerRecord {
        id: format!("{at:012x}{:016x}", fastrand::u64(..)),
        at,
        request_id: "r".into(),
        trace_id: "t".into(),
        origin: String::new(),
        consumer: String::new(),
        key_id: String::new(),
        team: team.into(),
        service: service.into(),
        operation: operation.into(),
        method: "POST".into(),
        status: 200,
        error: None,
        complete: true,
        latency_ms: 5,
        model: None,
        units: Default::default(),
        cost_micros,
        unpriced: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sprawl_report_finds_each_kind_of_sprawl() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.yaml");
    let pictures = dir.path().join("pictures.yaml");
    std::fs::write(
        &images,
        contract("/v1/images/generations", "createImage", "getImage"),
    )
    .unwrap();
    std::fs::write(
        &pictures,
        contract("/v2/images/generations", "makePicture", "fetchPicture"),
    )
    .unwrap();
    let db = dir.path().join("ledger.db");
    let url = format!("sqlite://{}", db.display());
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = now_ms();
    store
        .append_ledger(&[
            record(now - DAY, "images", "createImage", "media", 2_000_000),
            record(now - DAY, "images", "createImage", "media", 1_000_000),
            record(now - 2 * DAY, "images", "", "media", 0),
            record(now - 40 * DAY, "images", "createImage", "media", 1_000_000),
            record(now - DAY, "legacy", "", "ads", 10),
            record(now - DAY, "legacy", "", "ads", 10),
            record(now - DAY, "legacy", "", "", 10),
        ])
        .await
        .unwrap();
    let up = dead_upstream();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n[store]\nurl = \"{url}\"\n\
         [[service]]\nname = \"images\"\nowner = \"media\"\nroute = {{ prefix = \"/images\" }}\nupstreams = [\"{up}\"]\ncontract = \"{}\"\n\
         [[service]]\nname = \"pictures\"\nroute = {{ prefix = \"/pictures\" }}\nupstreams = [\"{up}\"]\ncontract = \"{}\"\n\
         [[service]]\nname = \"legacy\"\nowner = \"ads\"\nroute = {{ prefix = \"/legacy\" }}\nupstreams = [\"{up}\"]\n\
         deprecation = {{ since = \"2026-01-01\", sunset = \"2027-01-01\" }}\n",
        images.display(),
        pictures.display()
    );
    let gw = start(&config);
    let r: Value =
        serde_json::from_str(&cli(&gw, "report", &["sprawl", "--format", "json"])).unwrap();
    assert_eq!(r["days"], 30);
    assert_eq!(r["without_owner"], serde_json::json!(["pictures"]));
    assert_eq!(r["without_contract"], serde_json::json!(["legacy"]));
    assert_eq!(r["zombie_services"], serde_json::json!(["pictures"]));
    assert_eq!(
        r["zombie_operations"],
        serde_json::json!([{"service": "images", "operation": "getImage"}]),
        "pictures had no traffic at all: it is a zombie service instead"
    );
    assert_eq!(
        r["shadow_traffic"],
        serde_json::json!([{"service": "images", "requests": 1}])
    );
    let legacy = &r["deprecated_in_use"][0];
    assert_eq!(legacy["service"], "legacy");
    assert_eq!(legacy["requests"], 3);
    assert_eq!(
        legacy["callers"],
        serde_json::json!([{"team": "ads", "requests": 2}, {"team": "", "requests": 1}])
    );
    let overlap = &r["overlaps"][0];
    assert_eq!(overlap["a"]["operation"], "createImage");
    assert_eq!(overlap["b"]["operation"], "makePicture");
    assert!(overlap["similarity"].as_f64().unwrap() >= 0.6, "{overlap}");
    assert!(
        r["overlaps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["a"]["operation"] != "getImage" || o["b"]["operation"] != "makePicture"),
        "a GET and a POST are not near-duplicates"
    );
    assert_eq!(r["costliest"][0]["service"], "images");
    assert_eq!(r["costliest"][0]["cost_usd"], "3");
    assert_eq!(r["costliest"][0]["previous_cost_usd"], "1");
    assert_eq!(r["costliest"][0]["change_percent"], 200.0);

    let md = std::process::Command::new(BIN)
        .args(["report", "--config"])
        .arg(&gw.config_path)
        .args(["sprawl", "--format", "markdown", "--days", "7"])
        .output()
        .unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.starts_with("## Sprawl report, last 7 days"), "{md}");
    assert!(md.contains("### Deprecated services still called (1)\n\n- legacy: 3 requests; callers: ads 2, (no team) 1"), "{md}");

    let c = Client::http1();
    let req = Request::get(gw.admin_url("/v1/reports/sprawl?days=30"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::default())
        .unwrap();
    let api = c.send(req).await.json();
    assert_eq!(api["zombie_services"], r["zombie_services"]);
    assert_eq!(api["overlaps"], r["overlaps"]);
}
