#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: the contract commands CI runs (`contract lint`, `contract
//! diff`) and the lint `blastdoor check` applies per service.

mod common;

use common::*;

#[test]
fn contract_lint_exits_by_severity() {
    let good =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract/tests/lint/good.yaml");
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .arg("contract")
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["lint", good.to_str().unwrap()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    // No operationId, no security, a key in the query string.
    std::fs::write(&bad, "openapi: 3.1.0\ninfo: { title: t, version: '1' }\npaths:\n  /x:\n    get:\n      parameters: [{ name: api_key, in: query, schema: { type: string, maxLength: 64 } }]\n      responses: { '200': { description: ok } }\n").unwrap();
    let out = run(&["lint", bad.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "operation-id-present",
        "operation-security-defined",
        "no-credentials-in-query",
    ] {
        assert!(rules.contains(&rule), "{rules:?}");
    }
    let off = run(&[
        "lint",
        bad.to_str().unwrap(),
        "--disable",
        "operation-id-present,operation-security-defined,no-credentials-in-query",
    ]);
    assert_eq!(
        off.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&off.stdout)
    );
    let unknown = run(&["lint", bad.to_str().unwrap(), "--disable", "no-such-rule"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no lint rule \"no-such-rule\""));
}

#[test]
fn contract_diff_exits_1_on_breaking_changes() {
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract/tests/diff-corpus");
    let run = |pair: &str, format: &str| {
        let dir = corpus.join(pair);
        std::process::Command::new(BIN)
            .args(["contract", "diff"])
            .arg(dir.join("old.yaml"))
            .arg(dir.join("new.yaml"))
            .args(["--format", format])
            .output()
            .unwrap()
    };
    let removed = run("02-operation-removed", "json");
    assert_eq!(removed.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&removed.stdout).unwrap();
    assert_eq!(report["breaking"], true);
    assert_eq!(report["findings"][0]["rule"], "operation-removed");
    let added = run("03-operation-added", "markdown");
    assert_eq!(
        added.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&added.stdout)
    );
    let missing = std::process::Command::new(BIN)
        .args([
            "contract",
            "diff",
            "/nonexistent/old.yaml",
            "/nonexistent/new.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the contract"));
}

/// `blastdoor check` lints each service's contract, less the rules the
/// service switches off.
#[test]
fn check_lints_contracts_per_service() {
    let dir = tempfile::tempdir().unwrap();
    let contract = dir.path().join("c.yaml");
    // No operationId: an error; no 429 response: a warning.
    std::fs::write(&contract, "openapi: 3.1.0\ninfo: { title: t, version: '1' }\npaths:\n  /x:\n    get:\n      x-blastdoor-public: true\n      security: []\n      responses: { '200': { description: ok } }\n").unwrap();
    let config = dir.path().join("bd.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!("[[service]]\nname = \"s\"\nroute = {{ prefix = \"/s\" }}\nupstreams = [\"http://127.0.0.1:1\"]\ncontract = \"c.yaml\"\n{extra}"),
        )
        .unwrap();
    };
    let check = || {
        std::process::Command::new(BIN)
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    write("");
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("c.yaml: at /paths/~1x/get:")
            && stderr.contains("(operation-id-present, service s)"),
        "{stderr}"
    );
    write("lint_disable = [\"operation-id-present\"]\n");
    let out = check();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("response-429-documented"),
        "warnings still show"
    );
    write("lint_disable = [\"no-such-rule\"]\n");
    let out = check();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("lint_disable: no lint rule \"no-such-rule\"")
    );
}
