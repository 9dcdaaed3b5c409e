#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: requests matched to their contract's operations and checked
//! live, in each validation mode; undocumented traffic blocked or counted;
//! the operation named in the ledger.

mod common;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;

const TOKEN: &str = "admin-token-for-contracts-1";

const CONTRACT: &str = r##"
openapi: 3.1.0
info: { title: images, version: "1.0.0" }
paths:
  /v1/images/generations:
    post:
      operationId: createImage
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [prompt]
              properties:
                prompt: { type: string, maxLength: 100000 }
                n: { type: integer, minimum: 1, maximum: 4 }
      responses: { "200": { description: ok } }
  /v1/images/{id}:
    get:
      operationId: getImage
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
      responses: { "200": { description: ok } }
"##;

fn config(upstream: &str, contract: &std::path::Path) -> String {
    let c = contract.display();
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n[store]\nflush_interval = \"100ms\"\n{}{}{}",
        service(
            "img",
            "/img",
            &[upstream.to_string()],
            &format!("contract = \"{c}\"\nundocumented = \"block\"")
        ),
        service(
            "rep",
            "/rep",
            &[upstream.to_string()],
            &format!("contract = \"{c}\"\nvalidate = \"report\"")
        ),
        service(
            "off",
            "/off",
            &[upstream.to_string()],
            &format!("contract = \"{c}\"\nvalidate = \"off\"")
        ),
    )
}

async fn post_json(c: &Client, url: &str, body: impl Into<Bytes>) -> Reply {
    let req = Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap();
    c.send(req).await
}

fn metric(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_checked_against_their_operation() {
    let up = MockUpstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let contract = dir.path().join("images.yaml");
    std::fs::write(&contract, CONTRACT).unwrap();
    let gw = start(&config(&up.url(), &contract));
    let c = Client::http1();

    // enforce: a conforming request goes through, a violating one is
    // refused before the upstream, naming the field and rule only.
    let ok = post_json(
        &c,
        &gw.url("/img/v1/images/generations"),
        r#"{"prompt": "a cat", "n": 2}"#,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let secret = "sk-secret-do-not-echo-0123456789";
    let bad = post_json(
        &c,
        &gw.url("/img/v1/images/generations"),
        format!(r#"{{"prompt": "{secret}", "n": 9}}"#),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let p = bad.problem("contract_violation");
    let detail = p["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        "the request breaks the contract of img (createImage): body field /n breaks `maximum`: at most 4"
    );
    assert!(!bad.text().contains(secret));
    let bad_path = c.get(&gw.url("/img/v1/images/abc")).await;
    assert_eq!(bad_path.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_path.problem("contract_violation")["detail"]
            .as_str()
            .unwrap()
            .contains("path parameter `id` breaks `type`")
    );
    assert_eq!(up.hits(), 1, "refused requests never reach the upstream");

    // A body past the replay buffer, sent chunked, is read whole and checked.
    let big = format!(r#"{{"prompt": "{}", "n": 0}}"#, "x".repeat(90_000));
    let (tx, body) = tokio::sync::mpsc::channel::<
        Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
    >(4);
    let sender = tokio::spawn(async move {
        for chunk in big.as_bytes().chunks(16_384) {
            tx.send(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(chunk))))
                .await
                .unwrap();
        }
    });
    let req = Request::post(gw.url("/img/v1/images/generations"))
        .header("content-type", "application/json")
        .body(http_body_util::StreamBody::new(tokio_stream_from(body)))
        .unwrap();
    let resp = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http()
        .request(req)
        .await
        .unwrap();
    sender.await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "the big body's n=0 is caught"
    );

    // Undocumented traffic: blocked on img, counted and forwarded on rep.
    let blocked = c.get(&gw.url("/img/v2/other")).await;
    assert_eq!(blocked.status, StatusCode::BAD_REQUEST);
    assert!(
        blocked.problem("contract_violation")["detail"]
            .as_str()
            .unwrap()
            .contains(
                "GET /v2/other is not an operation of img: its contract does not describe this path"
            )
    );
    let method = c
        .send(
            Request::delete(gw.url("/img/v1/images/3"))
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert!(
        method.problem("contract_violation")["detail"]
            .as_str()
            .unwrap()
            .contains("describes this path, not this method")
    );
    assert_eq!(c.get(&gw.url("/rep/v2/other")).await.status, StatusCode::OK);

    // report: forwarded and counted; off: forwarded, not counted.
    let hits = up.hits();
    assert_eq!(
        post_json(&c, &gw.url("/rep/v1/images/generations"), r#"{"n": 9}"#)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        post_json(&c, &gw.url("/off/v1/images/generations"), r#"{"n": 9}"#)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(up.hits(), hits + 2);
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_contract_violations_total{service=\"img\",operation=\"createImage\",direction=\"request\"}"
        ),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_contract_violations_total{service=\"img\",operation=\"getImage\",direction=\"request\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_contract_violations_total{service=\"rep\",operation=\"createImage\",direction=\"request\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_contract_violations_total{service=\"off\""
        ),
        0.0
    );
    // Requests count under their operation.
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_requests_total{service=\"img\",operation=\"createImage\",status_class=\"2xx\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_requests_total{service=\"img\",operation=\"createImage\",status_class=\"4xx\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_undocumented_requests_total{service=\"img\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_undocumented_requests_total{service=\"rep\"}"
        ),
        1.0
    );

    // The ledger names the operation of each admitted request.
    eventually("the ledger groups by operation", async || {
        let req = Request::get(gw.admin_url("/v1/usage?group_by=operation"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::default())
            .unwrap();
        let rows = c.send(req).await.json();
        let rows = rows["rows"].as_array().cloned().unwrap_or_default();
        let count = |op: &str| {
            rows.iter()
                .find(|r| r["group"] == op)
                .map_or(0, |r| r["requests"].as_u64().unwrap())
        };
        count("createImage") == 3 && count("") == 1
    })
    .await;
}

/// A stream of frames from a channel, as a request body.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<
        Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
    >,
) -> impl futures_util::Stream<Item = Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

const JOBS: &str = r##"
openapi: 3.1.0
info: { title: jobs, version: "3" }
paths:
  /jobs/{id}:
    get:
      operationId: getJob
      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: { type: object, required: [id, status], properties: { status: { enum: [queued, done] } } }
"##;

/// Responses are checked on a sample, after they reach the caller: drift
/// is counted and kept as examples in the catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_responses_that_drift_are_counted_and_kept() {
    let up = MockUpstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        match req.uri().path() {
            "/jobs/good" => json(
                StatusCode::OK,
                &serde_json::json!({"id": "good", "status": "done"}),
            ),
            "/jobs/drift" => json(
                StatusCode::OK,
                &serde_json::json!({"id": "drift", "status": "lost"}),
            ),
            _ => json(StatusCode::INTERNAL_SERVER_ERROR, &serde_json::json!({})),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let contract = dir.path().join("jobs.yaml");
    std::fs::write(&contract, JOBS).unwrap();
    let gw = start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n{}",
        service(
            "jobs",
            "/jobs",
            &[up.url()],
            &format!(
                "contract = \"{}\"\nresponse_sample = 1.0",
                contract.display()
            )
        )
    ));
    let c = Client::http1();
    for path in ["/jobs/jobs/good", "/jobs/jobs/drift", "/jobs/jobs/boom"] {
        let r = c.get(&gw.url(path)).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::INTERNAL_SERVER_ERROR,
            "drift never changes the answer"
        );
    }
    let catalog = || async {
        let req = Request::get(gw.admin_url("/v1/services"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::default())
            .unwrap();
        c.send(req).await.json()
    };
    eventually("two drift examples", async || {
        catalog().await[0]["contract"]["drift"]
            .as_array()
            .is_some_and(|d| d.len() == 2)
    })
    .await;
    let services = catalog().await;
    let contract_view = &services[0]["contract"];
    assert_eq!(contract_view["version"], "3");
    assert_eq!(contract_view["operations"][0]["id"], "getJob");
    let drift = contract_view["drift"].as_array().unwrap();
    let messages: Vec<&str> = drift
        .iter()
        .flat_map(|d| d["violations"].as_array().unwrap())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"response breaks `status`: status 500 is not documented"),
        "{messages:?}"
    );
    assert!(
        messages.contains(
            &"response field /status breaks `enum`: must be one of [\"queued\",\"done\"]"
        ),
        "{messages:?}"
    );
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    assert_eq!(
        metric(
            &metrics,
            "blastdoor_contract_violations_total{service=\"jobs\",operation=\"getJob\",direction=\"response\"}"
        ),
        2.0
    );
    let op = &contract_view["operations"][0];
    assert_eq!(op["response_violations"], 2);
    assert_eq!(op["request_violations"], 0);
    eventually(
        "the catalog counts getJob's calls from the ledger",
        async || {
            let op = &catalog().await[0]["contract"]["operations"][0];
            op["requests"] == 3 && op["last_seen"].as_i64().is_some()
        },
    )
    .await;
}

/// A deprecated service says so on every answer, and the catalog shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprecated_services_announce_deprecation_and_sunset() {
    let up = MockUpstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let ops_contract = dir.path().join("ops.yaml");
    std::fs::write(
        &ops_contract,
        "openapi: 3.1.0\ninfo: { title: t, version: '1' }\npaths:\n  /a:\n    get:\n      operationId: oldWay\n      deprecated: true\n      x-deprecated-at: '2026-11-01'\n      x-sunset: '2027-03-31'\n      responses: { '200': { description: ok } }\n  /b:\n    get:\n      operationId: newWay\n      responses: { '200': { description: ok } }\n",
    )
    .unwrap();
    let gw = start(
        &(format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n{}{}",
            service(
                "old",
                "/old",
                &[up.url()],
                "description = \"v1 of the images API\"\ntags = [\"media\"]\ndeprecation = { since = \"2026-11-01\", sunset = \"2027-03-31\", link = \"https://docs.example.com/migrate\" }"
            ),
            service("new", "/new", &[up.url()], "lifecycle = \"experimental\""),
        ) + &service(
            "ops",
            "/ops",
            &[up.url()],
            &format!("contract = \"{}\"", ops_contract.display()),
        )),
    );
    let c = Client::http1();
    let old = c.get(&gw.url("/old/x")).await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(
        old.header("deprecation"),
        Some("@1793491200"),
        "2026-11-01T00:00Z"
    );
    assert_eq!(old.header("sunset"), Some("Wed, 31 Mar 2027 00:00:00 GMT"));
    assert_eq!(
        old.header("link"),
        Some("<https://docs.example.com/migrate>; rel=\"deprecation\"; type=\"text/html\"")
    );
    // A deprecated operation of a live service says so too.
    let old_way = c.get(&gw.url("/ops/a")).await;
    assert_eq!(old_way.header("deprecation"), Some("@1793491200"));
    assert_eq!(
        old_way.header("sunset"),
        Some("Wed, 31 Mar 2027 00:00:00 GMT")
    );
    assert!(
        c.get(&gw.url("/ops/b"))
            .await
            .header("deprecation")
            .is_none()
    );
    let new = c.get(&gw.url("/new/x")).await;
    assert!(new.header("deprecation").is_none() && new.header("sunset").is_none());
    let req = Request::get(gw.admin_url("/v1/services"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::default())
        .unwrap();
    let services = c.send(req).await.json();
    let by_name = |n: &str| {
        services
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("old")["lifecycle"], "deprecated");
    assert_eq!(by_name("old")["tags"][0], "media");
    assert_eq!(by_name("old")["deprecation"]["sunset"], 1_806_451_200);
    assert_eq!(by_name("new")["lifecycle"], "experimental");

    // Its remaining callers are listed, from the ledger.
    eventually("the catalog lists old's callers", async || {
        let req = Request::get(gw.admin_url("/v1/services"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::default())
            .unwrap();
        let services = c.send(req).await.json();
        let old = services
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "old")
            .unwrap()
            .clone();
        old["callers"][0]["requests"] == 1 && old["callers"][0]["team"] == ""
    })
    .await;
}
