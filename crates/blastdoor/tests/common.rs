#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! Shared helpers of the end-to-end tests.
#![allow(unused_imports)]
#![allow(dead_code)]

pub use blastdoor_testkit::upstream::{channel_body, json, text};
pub use blastdoor_testkit::{Client, GatewayProcess, MockUpstream, Reply};

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
