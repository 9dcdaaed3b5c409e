#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! The examples folder is what users copy: its configs compile and its
//! contracts lint clean, through the CLI as a user runs it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::BIN;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(BIN);
    // Only what the test gives: not the secrets of whoever runs it.
    for var in [
        "BLASTDOOR_ADMIN_TOKEN",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(args)
        .current_dir(examples())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_example_configs_check_clean() {
    // Every config in the folder is checked here.
    let mut configs: Vec<String> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    configs.sort();
    assert_eq!(
        configs,
        ["demo.toml", "fleet.toml"],
        "a new example needs checking here"
    );

    let secrets = [
        ("BLASTDOOR_ADMIN_TOKEN", "an-admin-token-of-some-length"),
        ("OPENAI_API_KEY", "sk-example"),
        ("ANTHROPIC_API_KEY", "sk-ant-example"),
    ];
    let (ok, text) = run(&["check", "--config", "fleet.toml"], &secrets);
    assert!(ok, "{text}");
    assert!(text.contains("ok (4 services)"), "{text}");

    // The demo's template, with what `blastdoor demo` fills in.
    let demo = [
        ("DEMO_LISTEN", "127.0.0.1:8080"),
        ("DEMO_ADMIN_LISTEN", "127.0.0.1:9090"),
        ("BLASTDOOR_ADMIN_TOKEN", "an-admin-token-of-some-length"),
        ("MEDIAGEN_URL", "http://127.0.0.1:7001"),
        ("CHAT_URL", "http://127.0.0.1:7101"),
    ];
    let (ok, text) = run(&["check", "--config", "demo.toml"], &demo);
    assert!(ok, "{text}");
    assert!(text.contains("ok (2 services)"), "{text}");

    // Without its secrets, a config says which one is missing.
    let (ok, text) = run(&["check", "--config", "fleet.toml"], &[]);
    assert!(!ok);
    assert!(text.contains("OPENAI_API_KEY"), "{text}");
}

#[test]
fn the_example_contracts_lint_clean() {
    for contract in ["contracts/mediagen.yaml", "contracts/chat.yaml"] {
        let (ok, text) = run(&["contract", "lint", contract], &[]);
        assert!(ok, "{contract}: {text}");
        assert!(text.contains("0 errors, 0 warnings"), "{contract}: {text}");
    }
}
