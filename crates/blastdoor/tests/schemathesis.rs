#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: schemathesis, a property-based API tester, generates requests
//! from the bundled mediagen contract (`examples/contracts/mediagen.yaml`) and
//! sends them through the gateway (`validate = "enforce"`, `undocumented =
//! "block"`, an API key) to mediagen itself, which must answer as its
//! contract says.
//!
//! - Positive cases (valid by the contract): no server error, every one
//!   reaches the service, and every answer conforms to the contract (status,
//!   media type, headers, schema); a job created is found again (links).
//! - Negative cases (each breaks the contract somewhere): every one is
//!   refused by the gateway itself, as problem+json with a `code`, and none
//!   reaches the service.
//!
//! Needs `BLASTDOOR_TEST_PYTHON`: a Python with schemathesis from
//! tests/sdk/requirements.txt (`.ci/run` makes one). Without it the test says
//! SKIPPED and passes.

mod common;
#[path = "sdk/python.rs"]
mod python;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use serde_json::Value;

/// The service's prefix on the gateway.
const PREFIX: &str = "/mediagen";

/// Examples per operation and phase, and the seed that makes a run
/// repeatable.
const MAX_EXAMPLES: u32 = 30;
const SEED: u64 = 20_260_101;

/// Upper bound for one schemathesis run (interpreter start included).
const RUN_WAIT: Duration = Duration::from_secs(300);

fn contract_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/contracts/mediagen.yaml")
}

// --- the service: mediagen itself ---

/// mediagen (the local renderer) in this process, noting each request that
/// reaches it, so a request the gateway should have refused shows up.
struct Mediagen {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Mediagen {
    async fn start() -> Mediagen {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let (secret, _) = mediagen::webhook::Secret::generate().unwrap();
        let config = mediagen::Config {
            // Videos may name a webhook (to hosts that do not exist: one
            // try each).
            webhook_secret: Some(secret),
            webhook_retry: mediagen::webhook::Retry {
                attempts: 1,
                ..Default::default()
            },
            // schemathesis may queue many videos at once: no 429 here.
            jobs: mediagen::jobs::JobLimits {
                max_unfinished: 10_000,
                max_finished: 10_000,
            },
        };
        let router = mediagen::router(mediagen::backend::Local::new(2), config).layer(
            axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    log.lock()
                        .unwrap()
                        .push(format!("{} {}", req.method(), req.uri()));
                    next.run(req)
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Mediagen { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn config(upstream: &str) -> String {
    format!(
        "[store]\nkey_sync_interval = \"100ms\"\n\n\
         [[service]]\nname = \"mediagen\"\nowner = \"media\"\nroute = {{ prefix = \"{PREFIX}\" }}\n\
         upstreams = [\"{upstream}\"]\ncontract = \"{}\"\nvalidate = \"enforce\"\n\
         undocumented = \"block\"\nresponse_sample = 1.0\n",
        contract_path().display()
    )
}

/// A key for mediagen, once the running gateway knows it.
async fn api_key(gw: &GatewayProcess) -> String {
    let key = keys(
        gw,
        &[
            "create",
            "--name",
            "schemathesis",
            "--team",
            "media",
            "--services",
            "mediagen",
        ],
    );
    let c = Client::http1();
    // An undocumented path: 400 once the key is known (401 before), and
    // the service never sees it.
    let probe = gw.url(&format!("{PREFIX}/v1/probe"));
    let bearer = format!("Bearer {key}");
    eventually("the gateway knows the new key", async || {
        bearer_get(&c, &probe, &bearer).await.status == StatusCode::BAD_REQUEST
    })
    .await;
    key
}

// --- running schemathesis ---

/// `python -m schemathesis.cli`, without proxies or a stray config.
fn schemathesis_cmd(python: &str, cwd: &Path) -> Command {
    let mut cmd = python::command(python, &["SCHEMATHESIS_HOOKS", "SCHEMATHESIS_CONFIG_FILE"]);
    cmd.args(["-m", "schemathesis.cli"])
        .current_dir(cwd)
        .env("NO_COLOR", "1");
    cmd
}

/// schemathesis's version, or why it cannot be run.
fn schemathesis_version(python: &str, cwd: &Path) -> Result<String, String> {
    let out = schemathesis_cmd(python, cwd)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run BLASTDOOR_TEST_PYTHON={python}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(format!(
            "schemathesis is not importable by {python}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(text)
}

/// The statuses the gateway refuses a request with that breaks the
/// contract (400 `contract_violation` or `bad_request`), lacks a key (401),
/// or is too large (413); 404, 405 and 415 would be fair answers too.
const REFUSALS: [u16; 6] = [400, 401, 404, 405, 413, 415];

/// What the checks expect of each kind of case: a valid request is
/// answered by the service (a job id nobody created is a 404); an invalid
/// one is refused.
fn schemathesis_toml() -> String {
    let refusals: Vec<String> = REFUSALS.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[checks.positive_data_acceptance]\nexpected-statuses = [\"2xx\", \"404\"]\n\n\
         [checks.negative_data_rejection]\nexpected-statuses = [{}]\n",
        refusals.join(", ")
    )
}

struct Run {
    status: std::process::ExitStatus,
    output: String,
    /// The HAR entries: one per request sent.
    entries: Vec<Value>,
    took: Duration,
}

/// Runs schemathesis in `mode` with `checks`; its requests and responses
/// are read back from its HAR report.
async fn schemathesis(
    python: &str,
    dir: &Path,
    mode: &str,
    checks: &[&str],
    base_url: &str,
    key: &str,
) -> Run {
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, schemathesis_toml()).unwrap();
    let har = dir.join(format!("{mode}.har"));
    let log = dir.join(format!("{mode}.log"));
    let mut cmd = schemathesis_cmd(python, dir);
    cmd.arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(contract_path())
        .args(["--url", base_url])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--mode", mode])
        .args(["--checks", &checks.join(",")])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", &SEED.to_string()])
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .args(["--report", "har", "--report-har-path"])
        .arg(&har)
        .arg("--no-color");
    let out = std::fs::File::create(&log).unwrap();
    cmd.stdout(out.try_clone().unwrap()).stderr(out);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run BLASTDOOR_TEST_PYTHON={python}: {e}"));
    let status =
        python::wait_bounded(child, RUN_WAIT, &format!("schemathesis ({mode})"), &log).await;
    let took = started.elapsed();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let entries = std::fs::read_to_string(&har)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["log"]["entries"].as_array().cloned())
        .unwrap_or_default();
    Run {
        status,
        output,
        entries,
        took,
    }
}

/// A HAR entry's response: status, a header, the body as text.
fn status_of(entry: &Value) -> u16 {
    u16::try_from(entry["response"]["status"].as_u64().unwrap_or(0)).unwrap()
}

fn response_header<'e>(entry: &'e Value, name: &str) -> Option<&'e str> {
    entry["response"]["headers"]
        .as_array()?
        .iter()
        .find(|h| {
            h["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|h| h["value"].as_str())
}

fn response_body(entry: &Value) -> &str {
    entry["response"]["content"]["text"].as_str().unwrap_or("")
}

/// `METHOD url -> status`, for messages.
fn describe(entry: &Value) -> String {
    format!(
        "{} {} -> {} {}",
        entry["request"]["method"].as_str().unwrap_or("?"),
        entry["request"]["url"].as_str().unwrap_or("?"),
        status_of(entry),
        response_body(entry)
    )
}

/// The closing summary lines of schemathesis's output, for the test log.
fn summary(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let from = lines
        .iter()
        .rposition(|l| l.contains("SUMMARY"))
        .unwrap_or(lines.len().saturating_sub(12));
    lines[from..].join("\n")
}

/// Responses of mediagen the gateway found off the contract.
fn response_drift(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("blastdoor_contract_violations_total{service=\"mediagen\"")
                && l.contains("direction=\"response\"")
        })
        .filter_map(|l| l.rsplit(' ').next())
        .map(|v| v.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_through_the_gateway() {
    let Some(python) = python::python() else {
        println!(
            "SKIPPED: BLASTDOOR_TEST_PYTHON not set (a Python with schemathesis from \
             crates/blastdoor/tests/sdk/requirements.txt; .ci/run makes one): \
             schemathesis_through_the_gateway"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let version = match schemathesis_version(&python, dir.path()) {
        Ok(v) => v,
        Err(why) => {
            println!("SKIPPED: {why}: schemathesis_through_the_gateway");
            return;
        }
    };
    println!("{version}");

    let sim = Mediagen::start().await;
    let gw = start(&config(&sim.url));
    let key = api_key(&gw).await;
    let base_url = gw.url(PREFIX);

    // Positive: valid requests, all answered by the service, as documented.
    // `ignored_auth` sends some without the key or with a wrong one: the
    // gateway must refuse those (401). Not checked: `unsupported_method`,
    // which wants 405 with `Allow` for a method the contract does not list;
    // the gateway answers 400 `contract_violation` (README, section 6).
    let before = sim.hits();
    let positive = schemathesis(
        &python,
        dir.path(),
        "positive",
        &[
            "not_a_server_error",
            "status_code_conformance",
            "content_type_conformance",
            "response_headers_conformance",
            "response_schema_conformance",
            "positive_data_acceptance",
            "ensure_resource_availability",
            "ignored_auth",
        ],
        &base_url,
        &key,
    )
    .await;
    println!(
        "positive: {} requests in {:?}\n{}",
        positive.entries.len(),
        positive.took,
        summary(&positive.output)
    );
    assert!(
        positive.status.success(),
        "schemathesis (positive) failed ({}):\n{}\ngateway log:\n{}",
        positive.status,
        positive.output,
        gw.stderr()
    );
    assert!(
        positive.entries.len() >= 3 * MAX_EXAMPLES as usize / 2,
        "schemathesis sent few requests:\n{}",
        positive.output
    );
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut refused = 0;
    for e in &positive.entries {
        *by_status.entry(status_of(e)).or_default() += 1;
        assert!(status_of(e) < 500, "a server error: {}", describe(e));
        if status_of(e) == 401 {
            // ignored_auth: the same request without the key, or with a
            // wrong one, is the gateway's to refuse.
            refused += 1;
            continue;
        }
        assert!(
            !response_body(e).contains("https://blastdoor.dev/errors/"),
            "a valid request was answered by the gateway itself: {}",
            describe(e)
        );
    }
    println!("positive: statuses {by_status:?}");
    assert_eq!(
        sim.hits() - before,
        positive.entries.len() - refused,
        "every valid, authenticated request reached the service"
    );

    // Negative: each case breaks the contract (a body field of the wrong
    // type or out of bounds, a missing or unknown property, no body, not
    // JSON, a bad job id, an undocumented method, no key); the gateway
    // refuses every one itself, and the service sees none. (This contract
    // has no query or header parameters, where schemathesis may also send
    // unknown ones, which OpenAPI allows and the gateway forwards.)
    let before = sim.hits();
    let negative = schemathesis(
        &python,
        dir.path(),
        "negative",
        &[
            "not_a_server_error",
            "negative_data_rejection",
            "status_code_conformance",
            "content_type_conformance",
            "response_schema_conformance",
        ],
        &base_url,
        &key,
    )
    .await;
    println!(
        "negative: {} requests in {:?}\n{}",
        negative.entries.len(),
        negative.took,
        summary(&negative.output)
    );
    assert!(
        negative.status.success(),
        "schemathesis (negative) failed ({}):\n{}\ngateway log:\n{}",
        negative.status,
        negative.output,
        gw.stderr()
    );
    assert!(
        negative.entries.len() >= 3 * MAX_EXAMPLES as usize / 2,
        "schemathesis sent few requests:\n{}",
        negative.output
    );
    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    for e in &negative.entries {
        let status = status_of(e);
        assert!(
            REFUSALS.contains(&status),
            "not refused as expected: {}",
            describe(e)
        );
        assert_eq!(
            response_header(e, "content-type"),
            Some("application/problem+json"),
            "{}",
            describe(e)
        );
        let body: Value = serde_json::from_str(response_body(e))
            .unwrap_or_else(|err| panic!("{err}: {}", describe(e)));
        let code = body["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {}", describe(e)));
        assert_eq!(body["status"], status, "{}", describe(e));
        assert!(
            body["request_id"].as_str().is_some_and(|id| !id.is_empty())
                && response_header(e, "x-request-id") == body["request_id"].as_str(),
            "the gateway's own answer: {}",
            describe(e)
        );
        *by_code.entry(format!("{status} {code}")).or_default() += 1;
    }
    println!("negative: answers {by_code:?}");
    let strays = sim.seen().split_off(before);
    assert!(
        strays.is_empty(),
        "negative cases reached the service: {strays:?}"
    );

    // The gateway checked every response the service sent (response_sample
    // = 1.0) and found none off the contract.
    let c = Client::http1();
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    assert_eq!(response_drift(&metrics), 0.0, "{metrics}");
}
