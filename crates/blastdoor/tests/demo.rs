#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! The README's first command: `blastdoor demo` starts, prints where to
//! call, and the calls it prints work (plain and streamed).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use http::StatusCode;

#[tokio::test]
async fn demo_serves_the_chat_simulator_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut proxy, mut admin, mut token) = (None, None, None);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let url = line.split_whitespace().nth(1).map(str::to_string);
            if line.trim_start().starts_with("proxy ") {
                proxy = url;
            } else if line.trim_start().starts_with("admin ") {
                admin = url;
            } else if line.trim_start().starts_with("dashboard ") {
                token = line
                    .split_whitespace()
                    .last()
                    .map(|t| t.trim_end_matches(')').to_string());
            }
            if let (Some(p), Some(a), Some(t)) = (&proxy, &admin, &token) {
                let _ = tx.send((p.clone(), a.clone(), t.clone()));
                return;
            }
        }
    });
    let (proxy, admin, token) = rx
        .recv_timeout(blastdoor_testkit::WAIT)
        .expect("the demo printed no URLs");
    let c = Client::http1();
    let body = r#"{"model":"sim-small","messages":[{"role":"user","content":"hello door"}]}"#;
    let r = c
        .post(&format!("{proxy}/chat/v1/chat/completions"), body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("hello door")
    );
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let streamed = r#"{"model":"sim-small","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let r = c
        .post(&format!("{proxy}/chat/v1/chat/completions"), streamed)
        .await;
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    assert!(text.matches("data: ").count() > 5, "{text}");
    assert!(text.contains("\"usage\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    c.get(&format!("{proxy}/nowhere"))
        .await
        .problem("route_not_found");
    // The dashboard opens with the token the banner shows.
    assert!(
        c.get(&format!("{admin}/"))
            .await
            .text()
            .contains("/assets/app.js")
    );
    let services = bearer_get(
        &c,
        &format!("{admin}/v1/services"),
        &format!("Bearer {token}"),
    )
    .await;
    assert_eq!(services.status, StatusCode::OK, "{}", services.text());
    assert_eq!(services.json()[0]["name"], "chat");
    let metrics = c.get(&format!("{admin}/metrics")).await.text();
    assert!(
        metrics.contains(
            "blastdoor_requests_total{service=\"chat\",operation=\"\",status_class=\"2xx\"} 2"
        ),
        "{metrics}"
    );

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < blastdoor_testkit::WAIT,
            "the demo did not stop on Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        dir.path().join(".blastdoor-demo/blastdoor.db").exists(),
        "the demo keeps its store in a local folder"
    );
}
