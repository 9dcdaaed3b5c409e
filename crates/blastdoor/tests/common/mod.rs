#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! Shared helpers of the end-to-end tests.
#![allow(unused_imports)]
#![allow(dead_code)]

pub use blastdoor_testkit::upstream::{channel_body, json, text};
pub use blastdoor_testkit::{Client, GatewayProcess, MockUpstream, Reply};

use std::process::Command;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

pub const BIN: &str = env!("CARGO_BIN_EXE_blastdoor");

/// A `[[service]]` table; `extra` adds lines to it.
pub fn service(name: &str, prefix: &str, upstreams: &[String], extra: &str) -> String {
    let ups: Vec<String> = upstreams.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "[[service]]\nname = \"{name}\"\nowner = \"test\"\npublic = true\nroute = {{ prefix = \"{prefix}\" }}\nupstreams = [{}]\n{extra}\n",
        ups.join(", ")
    )
}

pub fn start(config: &str) -> GatewayProcess {
    GatewayProcess::start(BIN, config)
}

/// An address nothing listens on.
pub fn dead_upstream() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// Polls `check` until it holds; fails the test after [`WAIT`].
///
/// [`WAIT`]: blastdoor_testkit::WAIT
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < blastdoor_testkit::WAIT,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

// --- API keys and the services the key tests use ---

pub const PROVIDER_SECRET: &str = "Bearer provider-secret-42";

pub fn config(upstream: &str) -> String {
    format!(
        r#"
[store]
key_sync_interval = "100ms"

[[service]]
name = "img"
owner = "media"
route = {{ prefix = "/img" }}
upstreams = ["{upstream}"]
strip_headers = ["x-internal-debug"]
upstream_auth = {{ header = "authorization", value = "{PROVIDER_SECRET}" }}

[[service]]
name = "chat"
route = {{ prefix = "/chat" }}
upstreams = ["{upstream}"]

[[service]]
name = "open"
public = true
route = {{ prefix = "/open" }}
upstreams = ["{upstream}"]
"#
    )
}

/// Runs `blastdoor <command> --config <the gateway's config> <args>`;
/// fails the test unless it succeeds; returns stdout, trimmed.
pub fn cli(gw: &GatewayProcess, command: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg(command)
        .arg("--config")
        .arg(&gw.config_path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `blastdoor keys ...` against the gateway's config; returns stdout.
pub fn keys(gw: &GatewayProcess, args: &[&str]) -> String {
    cli(gw, "keys", args)
}

/// Runs `blastdoor budgets ...` against the gateway's config.
pub fn budgets(gw: &GatewayProcess, args: &[&str]) -> String {
    cli(gw, "budgets", args)
}

pub fn with_key(url: &str, header: &str, value: &str) -> Request<Full<Bytes>> {
    Request::get(url)
        .header(header, value)
        .body(Full::default())
        .unwrap()
}

/// GET `url` with `Authorization: <authorization>` (a "Bearer ..." value).
pub async fn bearer_get(c: &Client, url: &str, authorization: &str) -> Reply {
    c.send(with_key(url, "authorization", authorization)).await
}

pub fn key_id(key: &str) -> &str {
    &key[3..15]
}

/// An upstream whose answers wait for permits on the returned semaphore,
/// so a test decides when requests in flight finish.
pub async fn gated_upstream() -> (MockUpstream, std::sync::Arc<tokio::sync::Semaphore>) {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let g = std::sync::Arc::clone(&gate);
    let up = MockUpstream::start(move |_req| {
        let g = std::sync::Arc::clone(&g);
        async move {
            let _permit = g.acquire().await.unwrap();
            text(http::StatusCode::OK, "done")
        }
    })
    .await;
    (up, gate)
}
