#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! A video's completion webhook, end to end: mediagen renders the job, then
//! calls the caller's URL, signed per Standard Webhooks, retrying with
//! backoff while the receiver fails. The deliveries are checked with the
//! `standardwebhooks` package from PyPI, an independent implementation
//! (needs `BLASTDOOR_TEST_PYTHON`, a Python with the packages of
//! crates/blastdoor/tests/sdk/requirements.txt; that part says SKIPPED
//! without it): the real delivery verifies, and a wrong secret, a replayed
//! old message or a tampered body do not.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blastdoor_testkit::{Client, MockUpstream, upstream::text};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use mediagen::webhook::{Retry, Secret};
use serde_json::{Value, json};

/// Failures the receiver answers before it takes a delivery.
const FAILURES: usize = 2;

#[derive(Clone)]
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

impl Delivery {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

/// A receiver that fails the first [`FAILURES`] deliveries with a 503.
async fn receiver() -> (MockUpstream, Arc<Mutex<Vec<Delivery>>>) {
    let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let log = Arc::clone(&got);
    let up = MockUpstream::start(move |req: Request<hyper::body::Incoming>| {
        let (log, calls) = (Arc::clone(&log), Arc::clone(&calls));
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            log.lock().unwrap().push(Delivery {
                headers: parts.headers,
                body,
            });
            if calls.fetch_add(1, Ordering::SeqCst) < FAILURES {
                text(StatusCode::SERVICE_UNAVAILABLE, "not now")
            } else {
                text(StatusCode::NO_CONTENT, "")
            }
        }
    })
    .await;
    (up, got)
}

async fn start_mediagen(secret: Secret) -> String {
    let config = mediagen::Config {
        webhook_secret: Some(secret),
        webhook_retry: Retry {
            attempts: 5,
            first_backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        },
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = mediagen::router(mediagen::backend::Local::new(2), config);
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < blastdoor_testkit::WAIT,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completion_webhook_is_signed_and_retried_until_taken() {
    let (secret, secret_text) = Secret::generate().unwrap();
    let base = start_mediagen(secret.clone()).await;
    let (hook, got) = receiver().await;

    let c = Client::http1();
    let req = Request::post(format!("{base}/v1/videos"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({
                "prompt": "a paper boat",
                "seconds": 1,
                "size": "128x128",
                "webhook_url": format!("{}/hooks/video", hook.url()),
            })
            .to_string(),
        )))
        .unwrap();
    let created = c.send(req).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text());
    let job_id = created.json()["id"].as_str().unwrap().to_string();

    wait_for("the third delivery", || {
        got.lock().unwrap().len() > FAILURES
    })
    .await;
    // Taken at the third try: no more after it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let deliveries = got.lock().unwrap().clone();
    assert_eq!(
        deliveries.len(),
        FAILURES + 1,
        "retried until taken, then stopped"
    );

    let first = &deliveries[0];
    let id = first.header("webhook-id");
    assert!(id.starts_with("msg_"), "{id}");
    for d in &deliveries {
        assert_eq!(
            d.header("webhook-id"),
            id,
            "every attempt carries the same id"
        );
        assert_eq!(d.body, first.body, "and the same body");
        assert_eq!(d.header("content-type"), "application/json");
        let ts: u64 = d.header("webhook-timestamp").parse().unwrap();
        assert!(ts.abs_diff(unix_now()) < 60, "{ts}");
        assert_eq!(
            d.header("webhook-signature"),
            secret.sign(id, ts, &d.body),
            "signed for its own timestamp"
        );
    }
    let event: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(event["type"], "video.completed");
    assert_eq!(event["data"]["id"], job_id.as_str());
    assert_eq!(event["data"]["status"], "completed");
    assert!(
        event["data"].get("result").is_none(),
        "the video is fetched, not pushed"
    );
    assert!(humantime::parse_rfc3339(event["timestamp"].as_str().unwrap()).is_ok());

    // The job itself has the video.
    let job = c.get(&format!("{base}/v1/videos/{job_id}")).await.json();
    assert_eq!(
        (&job["status"], &job["result"]["media_type"]),
        (&json!("completed"), &json!("image/apng"))
    );

    verify_with_standardwebhooks(&deliveries[FAILURES], &secret, &secret_text).await;
}

/// The delivery, and forgeries of it, through the reference Python library.
async fn verify_with_standardwebhooks(d: &Delivery, secret: &Secret, secret_text: &str) {
    let Some(python) = std::env::var("BLASTDOOR_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
    else {
        println!(
            "SKIPPED: BLASTDOOR_TEST_PYTHON not set (a Python with standardwebhooks from \
             crates/blastdoor/tests/sdk/requirements.txt; .ci/run makes one): \
             verification with the standardwebhooks package"
        );
        return;
    };
    let (_, other_secret) = Secret::generate().unwrap();
    let id = d.header("webhook-id");
    let body = String::from_utf8(d.body.to_vec()).unwrap();
    let headers = |ts: &str, sig: &str| json!({"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig});
    let genuine = headers(d.header("webhook-timestamp"), d.header("webhook-signature"));
    // What mediagen sent ten minutes ago, genuinely signed, sent again now.
    let old = unix_now() - 600;
    let replayed = headers(&old.to_string(), &secret.sign(id, old, body.as_bytes()));
    let cases = json!([
        {"name": "delivered", "secret": secret_text, "headers": genuine, "body": body},
        {"name": "wrong secret", "secret": other_secret, "headers": genuine, "body": body},
        {"name": "replayed", "secret": secret_text, "headers": replayed, "body": body},
        {"name": "tampered", "secret": secret_text, "headers": genuine, "body": body.replace("completed", "failed")},
    ]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/verify_webhook.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run BLASTDOOR_TEST_PYTHON={python}: {e}"));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Value = serde_json::from_str(stdout.trim()).unwrap();
    println!("standardwebhooks {}: {verdicts}", verdicts["version"]);
    let v = &verdicts["cases"];
    assert_eq!(
        v["delivered"],
        json!({"ok": true, "type": "video.completed"})
    );
    assert_eq!(
        v["wrong secret"],
        json!({"ok": false, "error": "No matching signature found"})
    );
    assert_eq!(
        v["replayed"],
        json!({"ok": false, "error": "Message timestamp too old"})
    );
    assert_eq!(
        v["tampered"],
        json!({"ok": false, "error": "No matching signature found"})
    );
}
