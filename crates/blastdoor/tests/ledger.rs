#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: the usage ledger. Every admitted request leaves exactly one
//! record whatever happens to it; nothing a caller saw complete is lost to
//! a `kill -9`; a store outage costs no request and no record.

mod common;

use std::time::Duration;

use blastdoor_store::{LedgerRecord, LedgerStore, SqlStore};
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::json;

/// /ok: two images; /fail: 500; /slow: answers after the timeout;
/// /stream: one chunk, then nothing until the caller leaves; else 200.
async fn media_upstream() -> MockUpstream {
    MockUpstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        match req.uri().path() {
            "/ok" => json(
                StatusCode::OK,
                &json!({"data": [{"b64_json": "x"}, {"b64_json": "y"}]}),
            ),
            "/fail" => text(StatusCode::INTERNAL_SERVER_ERROR, "boom"),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                text(StatusCode::OK, "late")
            }
            "/stream" => {
                let (tx, body) = channel_body();
                tokio::spawn(async move {
                    tx.send(Bytes::from_static(b"first piece")).await.unwrap();
                    tx.closed().await;
                });
                http::Response::builder()
                    .header("content-type", "application/octet-stream")
                    .body(body)
                    .unwrap()
            }
            _ => text(StatusCode::OK, "plain"),
        }
    })
    .await
}

const MEDIA: &str = r#"timeout = "500ms"
retries = { attempts = 1 }
meter = "json"
[service.price]
per_request = "0.001"
units = [{ name = "image", price = "0.04", from = "/data/#len" }]"#;

async fn ledger_store(gw: &GatewayProcess) -> SqlStore {
    let url = format!("sqlite://{}", gw.dir().join("blastdoor.db").display());
    SqlStore::connect(&url).await.unwrap()
}

async fn records(store: &SqlStore, request_id: &str) -> Vec<LedgerRecord> {
    store.ledger_by_request(request_id).await.unwrap()
}

fn with_id(method: &str, url: &str, id: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .header("x-request-id", id)
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn every_admitted_request_leaves_exactly_one_record() {
    let up = media_upstream().await;
    let config = format!(
        "{}{}{}",
        service("media", "/media", &[up.url()], MEDIA),
        service(
            "limited",
            "/limited",
            &[up.url()],
            "rate_limit = { requests_per_minute = 1 }"
        ),
        service(
            "gone",
            "/gone",
            &[dead_upstream()],
            "retries = { attempts = 1 }"
        ),
    );
    let mut gw = start(&config);
    let c = Client::http1();
    let send = async |method: &str, path: &str, id: &str| {
        c.send(with_id(method, &gw.url(path), id)).await.status
    };
    assert_eq!(send("POST", "/media/ok", "ok-1").await, StatusCode::OK);
    assert_eq!(
        send("POST", "/media/fail", "fail-1").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        send("POST", "/media/slow", "slow-1").await,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        send("GET", "/gone/x", "gone-1").await,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(send("GET", "/limited/x", "limited-1").await, StatusCode::OK);
    assert_eq!(
        send("GET", "/limited/x", "limited-2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send("GET", "/nowhere", "unrouted-1").await,
        StatusCode::NOT_FOUND
    );
    // The caller leaves after the first piece of a stream.
    let mut resp = c
        .open(with_id("GET", &gw.url("/media/stream"), "cut-1"))
        .await;
    let first = resp.body_mut().frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "first piece");
    drop(resp);
    eventually("the cut stream settles", async || {
        gw.stdout().contains("\"request_id\":\"cut-1\"")
    })
    .await;

    // A graceful stop flushes the ledger.
    gw.signal("TERM");
    assert!(gw.wait_exit().success());
    let store = ledger_store(&gw).await;

    let ok = records(&store, "ok-1").await;
    assert_eq!(ok.len(), 1, "{ok:?}");
    let ok = &ok[0];
    assert_eq!(
        (ok.service.as_str(), ok.status, ok.complete),
        ("media", 200, true)
    );
    assert_eq!(ok.units.get("image"), Some(&2));
    assert_eq!(ok.cost_micros, 81_000, "0.001 per request + 2 x 0.04");
    assert_eq!(ok.method, "POST");
    assert_eq!(ok.trace_id.len(), 32);
    assert!(ok.unpriced.is_none());

    let fail = &records(&store, "fail-1").await;
    assert_eq!(fail.len(), 1);
    assert_eq!(
        (fail[0].status, fail[0].cost_micros),
        (500, 0),
        "errors cost nothing"
    );

    let slow = &records(&store, "slow-1").await;
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0].status, 504);
    assert_eq!(slow[0].error.as_deref(), Some("upstream_timeout"));

    let gone = &records(&store, "gone-1").await;
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].error.as_deref(), Some("upstream_unavailable"));

    let cut = &records(&store, "cut-1").await;
    assert_eq!(cut.len(), 1);
    assert!(!cut[0].complete, "the caller left mid-stream");
    assert_eq!(cut[0].status, 200);

    assert_eq!(records(&store, "limited-1").await.len(), 1);
    assert!(
        records(&store, "limited-2").await.is_empty(),
        "refused by admission: not in the ledger (it is in the access log)"
    );
    assert!(records(&store, "unrouted-1").await.is_empty());
    assert_eq!(store.ledger_count().await.unwrap(), 6);
    let spooled: Vec<_> = std::fs::read_dir(gw.dir().join("blastdoor-spool"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "spool.lock")
        .collect();
    assert!(
        spooled.is_empty(),
        "a clean stop empties the spool: {spooled:?}"
    );
}

#[tokio::test]
async fn kill_9_loses_no_record_of_a_completed_response() {
    let up = media_upstream().await;
    // A flush interval far beyond the test: only the spool can save them.
    let config = format!(
        "[store]\nflush_interval = \"1h\"\n{}",
        service("media", "/media", &[up.url()], MEDIA)
    );
    let mut gw = start(&config);
    let c = Client::http1();
    let mut completed = 0;
    for i in 0..300 {
        let reply = c
            .send(with_id("POST", &gw.url("/media/ok"), &format!("k-{i}")))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        completed += 1;
    }
    gw.kill();
    gw.restart();
    gw.wait_for_log("replaying the ledger spool");
    gw.signal("TERM");
    assert!(gw.wait_exit().success());
    let store = ledger_store(&gw).await;
    assert_eq!(store.ledger_count().await.unwrap(), completed);
    for i in [0, 150, 299] {
        assert_eq!(records(&store, &format!("k-{i}")).await.len(), 1);
    }
}

/// A TCP relay to PostgreSQL that the test can cut (every connection
/// dropped, new ones refused) and restore: the store going down and coming
/// back, as the gateway sees it.
struct StoreRelay {
    addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl StoreRelay {
    async fn start(target: String) -> StoreRelay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let is_up = std::sync::Arc::clone(&up);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !is_up.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused, as good as
                }
                let (target, mut cuts) = (target.clone(), cuts.clone());
                cuts.borrow_and_update(); // only later cuts end this one
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        StoreRelay { addr, up, cut }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

// Multi-threaded: the relay keeps serving while the test blocks on the
// gateway process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_under_load_costs_no_request_and_no_record() {
    let Ok(base) = std::env::var("BLASTDOOR_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED a_postgres_outage_under_load_costs_no_request_and_no_record: BLASTDOOR_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    // The gateway reaches PostgreSQL through the relay, in a schema of its own.
    let (scheme_user, rest) = base.split_once('@').unwrap();
    let (target, db) = rest.split_once('/').unwrap();
    let db = db.split('?').next().unwrap();
    let relay = StoreRelay::start(target.to_string()).await;
    let schema = format!(
        "bd_ledger_{}_{}",
        std::process::id(),
        blastdoor_store::now_ms()
    );
    sqlx::any::install_default_drivers();
    let direct = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&direct)
        .await
        .unwrap();
    let store_url = format!(
        "{scheme_user}@{}/{db}?options=-c%20search_path%3D{schema}",
        relay.addr
    );
    let up = MockUpstream::echo().await;
    let config = format!(
        "[store]\nurl = \"{store_url}\"\nflush_interval = \"100ms\"\n{}",
        service("echo", "/echo", &[up.url()], "")
    );
    let mut gw = start(&config);

    let load = |from: usize, to: usize| {
        let url = gw.url("/echo/x");
        async move {
            let c = Client::http1();
            let mut tasks = Vec::new();
            for chunk in (from..to).collect::<Vec<_>>().chunks(25) {
                let (c, url, ids) = (c.clone(), url.clone(), chunk.to_vec());
                tasks.push(tokio::spawn(async move {
                    for i in ids {
                        let reply = c.send(with_id("GET", &url, &format!("pg-{i}"))).await;
                        assert_eq!(reply.status, StatusCode::OK);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    load(0, 200).await;
    relay.set_up(false);
    // Every request still succeeds while the store is unreachable.
    load(200, 600).await;
    gw.wait_for_log("cannot write the ledger to the store");
    relay.set_up(true);
    load(600, 700).await;
    gw.wait_for_log("the store takes ledger records again");
    gw.signal("TERM");
    assert!(gw.wait_exit().success(), "{}", gw.stderr());

    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(DISTINCT request_id) FROM {schema}.ledger"
    )))
    .fetch_one(&direct)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {schema}.ledger"
    )))
    .fetch_one(&direct)
    .await
    .unwrap();
    assert_eq!((count, rows), (700, 700), "every request once, none twice");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&direct)
        .await
        .unwrap();
}

fn blastdoor(gw: &GatewayProcess, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(&gw.config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "blastdoor {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn usage_reports_group_the_ledger_by_team_key_and_service() {
    let up = media_upstream().await;
    let token = "admin-token-for-usage-0001";
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{token}\"\nworkers = 2\n\
         [store]\nflush_interval = \"50ms\"\nkey_sync_interval = \"50ms\"\n\
         [[service]]\nname = \"media\"\nroute = {{ prefix = \"/media\" }}\nupstreams = [\"{}\"]\n{MEDIA}\n",
        up.url()
    );
    let mut gw = start(&config);
    let alice = keys(&gw, &["create", "--name", "alice", "--team", "design"]);
    let bob = keys(&gw, &["create", "--name", "bob", "--team", "ads"]);
    let c = Client::http1();
    let call = async |key: &str| {
        let req = Request::post(gw.url("/media/ok"))
            .header("authorization", format!("Bearer {key}"))
            .body(Full::default())
            .unwrap();
        c.send(req).await
    };
    eventually("the new keys are loaded", async || {
        call(&alice).await.status == StatusCode::OK
    })
    .await;
    // Bob's key may reach the cache a sync after Alice's; this call is the
    // one bob makes.
    eventually("bob's key is loaded", async || {
        call(&bob).await.status == StatusCode::OK
    })
    .await;
    for _ in 0..2 {
        assert_eq!(call(&alice).await.status, StatusCode::OK);
    }

    // The admin API answers from the store once the writer has flushed.
    let admin = |path: &str| {
        Request::get(gw.admin_url(path))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::default())
            .unwrap()
    };
    let mut by_team = serde_json::Value::Null;
    eventually("the ledger reaches the store", async || {
        by_team = c.send(admin("/v1/usage?group_by=team")).await.json();
        by_team["rows"].as_array().map(Vec::len) == Some(2) && by_team["rows"][0]["requests"] == 3
    })
    .await;
    assert_eq!(by_team["group_by"], "team");
    let design = &by_team["rows"][0];
    assert_eq!(design["group"], "design", "costliest first: {by_team}");
    assert_eq!(design["cost_usd"], "0.243", "3 x (0.001 + 2 x 0.04)");
    assert_eq!(design["units"]["image"], 6);
    assert_eq!(by_team["rows"][1]["group"], "ads");
    assert_eq!(by_team["rows"][1]["cost_usd"], "0.081");
    let refused = c.send(admin("/v1/usage?group_by=colour")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.problem("bad_request");

    gw.signal("TERM");
    assert!(gw.wait_exit().success());
    let json: serde_json::Value = serde_json::from_str(&blastdoor(
        &gw,
        &["usage", "--by", "key", "--since", "1h", "--format", "json"],
    ))
    .unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["group"], key_id(&alice));
    assert_eq!(rows[0]["requests"], 3);
    assert_eq!(rows[0]["cost_usd"], "0.243");

    let csv = blastdoor(&gw, &["usage", "--by", "team", "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "team,requests,cost_usd,unpriced_requests,image");
    assert_eq!(lines[1], "design,3,0.243,0,6");
    assert_eq!(lines[2], "ads,1,0.081,0,2");

    let table = blastdoor(&gw, &["usage", "--by", "service"]);
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with("media"),
        "{table}"
    );
    assert!(table.contains("0.324"), "{table}");
}

#[tokio::test]
async fn check_warns_about_models_the_ledger_saw_without_a_price() {
    let up = MockUpstream::start(|_req| async {
        json(
            StatusCode::OK,
            &json!({"model": "gpt-9", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
        )
    })
    .await;
    let chat = "meter = \"openai\"\nunpriced = \"allow\"\n[service.price.models.\"gpt-4o-mini\"]\ninput_tokens = \"0.15/1M\"\noutput_tokens = \"0.60/1M\"";
    let mut gw = start(&service("chat", "/chat", &[up.url()], chat));
    let reply = Client::http1()
        .post(&gw.url("/chat/v1/chat/completions"), r#"{"model":"gpt-9"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    gw.signal("TERM");
    assert!(gw.wait_exit().success());
    let out = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&gw.config_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "warnings do not fail the check");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(
            "warning: service chat: model \"gpt-9\" was called in the last 30 days and has no price"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("gpt-4o-mini"), "{stdout}");
}
