//! Running the Python end-to-end scripts of tests/sdk/ (the official SDKs
//! as callers of the gateway), and reading back what the gateway recorded.
#![allow(dead_code)] // shared by several test binaries, each using a part

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use blastdoor_store::{LedgerRecord, LedgerStore, SqlStore};
use blastdoor_testkit::GatewayProcess;
use serde_json::Value;

pub fn python() -> Option<String> {
    std::env::var("BLASTDOOR_TEST_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
}

pub fn skip(test: &str) {
    println!(
        "SKIPPED: BLASTDOOR_TEST_PYTHON not set (a Python with the SDKs of \
         crates/blastdoor/tests/sdk/requirements.txt; .ci/run makes one): {test}"
    );
}

/// A Python run for a test: no proxies from whoever runs the tests, no
/// bytecode files, and none of `extra` (variables that would redirect it).
pub fn command(python: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(python);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null());
    let proxies = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ];
    for var in proxies.iter().chain(extra) {
        cmd.env_remove(var);
    }
    cmd
}

/// Waits for `child` at most `limit`; past it, kills it and fails with
/// `what` and the log at `log`.
pub async fn wait_bounded(mut child: Child, limit: Duration, what: &str, log: &Path) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {limit:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Upper bound for one SDK script (interpreter start and SDK import
/// included).
const SCRIPT_WAIT: Duration = Duration::from_secs(120);

/// Runs tests/sdk/`script` against `base_url` with `key`; returns the JSON
/// lines it printed.
pub async fn run_script(python: &str, script: &str, base_url: &str, key: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let sdk_settings = [
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
    ];
    let mut cmd = command(python, &sdk_settings);
    cmd.arg(&path)
        .env("BLASTDOOR_BASE_URL", base_url)
        .env("BLASTDOOR_KEY", key)
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap());
    let started = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run BLASTDOOR_TEST_PYTHON={python}: {e}"));
    let status = wait_bounded(child, SCRIPT_WAIT, script, err.path()).await;
    let stdout = std::fs::read_to_string(out.path()).unwrap();
    let stderr = std::fs::read_to_string(err.path()).unwrap();
    assert!(
        status.success(),
        "{script} failed ({status}):\n{stderr}\nstdout:\n{stdout}"
    );
    println!(
        "{script}: {} calls in {:?}",
        stdout.lines().count().saturating_sub(1),
        started.elapsed()
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Stops the gateway (a graceful stop flushes the ledger) and returns each
/// request's ledger records.
pub async fn ledger(mut gw: GatewayProcess, ids: &[String]) -> BTreeMap<String, Vec<LedgerRecord>> {
    gw.signal("TERM");
    assert!(gw.wait_exit().success(), "{}", gw.stderr());
    let url = format!("sqlite://{}", gw.dir().join("blastdoor.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let mut out = BTreeMap::new();
    for id in ids {
        out.insert(id.clone(), store.ledger_by_request(id).await.unwrap());
    }
    out
}
