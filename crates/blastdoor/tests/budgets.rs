#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: budgets hold under concurrency, refuse with 402 before
//! forwarding, and report their spend.

mod common;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;

const TOKEN: &str = "admin-token-for-budgets-01";

fn admin(gw: &GatewayProcess, method: &str, path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(gw.admin_url(path))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Every answer is one image: $0.04 against a reservation of $0.03, so
/// each admitted request may overshoot its reservation by $0.01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_stay_within_the_documented_bound() {
    let up = MockUpstream::start(|_req| async {
        json(StatusCode::OK, &json!({"data": [{"url": "x"}]}))
    })
    .await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\nworkers = 2\n\
         [store]\nkey_sync_interval = \"50ms\"\n\
         [[service]]\nname = \"img\"\nroute = {{ prefix = \"/img\" }}\nupstreams = [\"{}\"]\nmax_concurrency = 2000\n\
         meter = \"json\"\n[service.price]\nreserve = \"0.03\"\nunits = [{{ name = \"image\", price = \"0.04\", from = \"/data/#len\" }}]\n",
        up.url()
    );
    let config = format!(
        "{config}[[service]]\nname = \"free\"\nroute = {{ prefix = \"/free\" }}\nupstreams = [\"{}\"]\n",
        up.url()
    );
    let mut gw = start(&config);
    let key = keys(&gw, &["create", "--name", "loadgen", "--team", "media"]);
    let c = Client::http1();
    let set = c
        .send(admin(
            &gw,
            "POST",
            "/v1/budgets",
            r#"{"scope":"team","target":"media","amount_usd":"1.00","period":"month","mode":"hard"}"#,
        ))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    let call = |c: Client, url: String, key: String| async move {
        let req = Request::post(url)
            .header("authorization", format!("Bearer {key}"))
            .body(Full::default())
            .unwrap();
        c.send(req).await
    };
    // A free service tells when the key is loaded, without spending (and
    // before the failed-auth limiter would step in).
    eventually("the key is loaded", async || {
        let warm = with_key(
            &gw.url("/free/x"),
            "authorization",
            &format!("Bearer {key}"),
        );
        let r = c.send(warm).await;
        r.status == StatusCode::OK
    })
    .await;
    let warm_up_hits = up.hits();
    let tasks: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(call(c.clone(), gw.url("/img/generate"), key.clone())))
        .collect();
    let (mut ok, mut refused) = (0u32, 0u32);
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.status {
            StatusCode::OK => ok += 1,
            StatusCode::PAYMENT_REQUIRED => {
                let p = reply.problem("budget_exceeded");
                assert!(p["detail"].as_str().unwrap().contains("team media"), "{p}");
                refused += 1;
            }
            StatusCode::UNAUTHORIZED => panic!("the key was not loaded yet"),
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert_eq!(ok + refused, 1000);
    assert!(
        refused > 900,
        "a $1 budget admits few $0.03 reservations: {ok} admitted"
    );
    assert!(
        up.hits() - warm_up_hits == ok as usize,
        "refused requests never reach the upstream"
    );

    let budgets = c.send(admin(&gw, "GET", "/v1/budgets", "")).await.json();
    let media = &budgets[0];
    let spent: f64 = media["spent_usd"].as_str().unwrap().parse().unwrap();
    // The bound: the amount, plus what admitted requests cost beyond their
    // reservations ($0.01 each).
    let bound = 1.00 + 0.01 * f64::from(ok);
    assert!(spent <= bound + 1e-9, "spent {spent} > bound {bound}");
    assert!(
        (spent - 0.04 * f64::from(ok)).abs() < 1e-9,
        "spend is the real cost: {media}"
    );
    assert_eq!(media["reserved_usd"], "0");
    // Each admitted request holds at least $0.03 (reserved, then $0.04
    // settled): at most floor(1.00 / 0.03) = 33 fit.
    assert!(ok <= 33, "{ok}");

    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    let remaining = metrics
        .lines()
        .find(|l| {
            l.starts_with("blastdoor_budget_remaining_usd{") && l.contains("target=\"media\"")
        })
        .unwrap_or_else(|| panic!("no remaining gauge:\n{metrics}"));
    let remaining: f64 = remaining.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((remaining - (1.0 - spent)).abs() < 1e-9, "{remaining}");
    assert!(
        metrics.contains(
            "blastdoor_budget_alerts_total{scope=\"team\",target=\"media\",threshold=\"50\"} 1"
        ),
        "{metrics}"
    );

    // The CLI sees the same budget and its spend from the ledger.
    gw.signal("TERM");
    assert!(gw.wait_exit().success());
    let listed: serde_json::Value =
        serde_json::from_str(&common::budgets(&gw, &["list", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["target"], "media");
    assert_eq!(
        listed[0]["spent_usd"], media["spent_usd"],
        "the ledger agrees"
    );
}

#[tokio::test]
async fn budgets_cli_sets_lists_and_deletes() {
    let up = MockUpstream::echo().await;
    let gw = start(&service("img", "/img", &[up.url()], ""));
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(["budgets", "--config"])
            .arg(&gw.config_path)
            .args(args)
            .output()
            .unwrap()
    };
    let set = run(&[
        "set",
        "--service",
        "img",
        "--amount",
        "25",
        "--period",
        "week",
        "--mode",
        "soft",
        "--alerts",
        "90",
    ]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let listed = String::from_utf8(run(&["list"]).stdout).unwrap();
    assert!(
        listed.contains("service") && listed.contains("img") && listed.contains("week"),
        "{listed}"
    );
    let bad = run(&[
        "set", "--team", "x", "--amount", "-3", "--period", "week", "--mode", "hard",
    ]);
    assert!(!bad.status.success());
    let bad = run(&[
        "set", "--team", "x", "--amount", "3", "--period", "year", "--mode", "hard",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected day, week, month or total"));
    assert!(run(&["delete", "--service", "img"]).status.success());
    let gone = run(&["delete", "--service", "img"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("no service budget"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

/// Alerts reach the webhook as JSON, retried when the receiver fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_posted_to_the_webhook_and_retried() {
    let images = MockUpstream::start(|_req| async {
        json(StatusCode::OK, &json!({"data": [{"url": "x"}]}))
    })
    .await;
    // The receiver refuses its first delivery, then takes the rest.
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook = {
        let (bodies, calls) = (bodies.clone(), calls.clone());
        MockUpstream::start(move |req: http::Request<hyper::body::Incoming>| {
            let (bodies, calls) = (bodies.clone(), calls.clone());
            async move {
                use http_body_util::BodyExt;
                let body = req.into_body().collect().await.unwrap().to_bytes();
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return json(StatusCode::SERVICE_UNAVAILABLE, &json!({}));
                }
                bodies
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                json(StatusCode::OK, &json!({}))
            }
        })
        .await
    };
    let config = format!(
        "[store]\nkey_sync_interval = \"50ms\"\nalert_webhook = \"{}/hooks/budget\"\n{}",
        hook.url(),
        service(
            "img",
            "/img",
            &[images.url()],
            "meter = \"json\"\nprice = { units = [{ name = \"image\", price = \"0.04\", from = \"/data/#len\" }] }"
        )
    );
    let gw = start(&config);
    budgets(
        &gw,
        &[
            "set",
            "--service",
            "img",
            "--amount",
            "0.05",
            "--period",
            "month",
            "--mode",
            "soft",
        ],
    );
    let c = Client::http1();
    eventually("the budget is loaded", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains("blastdoor_budget_remaining_usd{")
    })
    .await;
    // $0.04 of $0.05 crosses 50% and 80% at once; a soft budget lets the
    // next call through and it crosses 100%.
    for _ in 0..2 {
        assert_eq!(c.post(&gw.url("/img/x"), "").await.status, StatusCode::OK);
    }
    eventually("three alerts delivered", async || {
        bodies.lock().unwrap().len() == 3
    })
    .await;
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "one retry"
    );
    let mut got = bodies.lock().unwrap().clone();
    got.sort_by_key(|b| b["alert"]["threshold"].as_u64());
    let thresholds: Vec<u64> = got
        .iter()
        .map(|b| b["alert"]["threshold"].as_u64().unwrap())
        .collect();
    assert_eq!(thresholds, [50, 80, 100]);
    let last = &got[2];
    assert_eq!(last["type"], "budget.alert");
    assert_eq!(last["alert"]["scope"], "service");
    assert_eq!(last["alert"]["target"], "img");
    assert_eq!(last["alert"]["mode"], "soft");
    assert_eq!(last["alert"]["amount_usd"], "0.05");
    let seen = hook.seen();
    assert!(seen.iter().all(
        |s| s.uri.path() == "/hooks/budget" && s.headers["content-type"] == "application/json"
    ));
    assert!(gw.stderr().contains("budget alert webhook refused"));
}
