#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! The README's first command: `blastdoor demo` starts mediagen and the chat
//! simulator behind the gateway, prints where to call with which key, and
//! the calls it prints work: chat (plain and streamed), pictures priced from
//! mediagen's usage until the key's hard budget answers 402, the contract
//! refusing a bad request, the dashboard's login. Ctrl-C stops it; a second
//! run carries on with the same key and spend; `--fresh` starts over.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;

/// What the banner says.
struct Banner {
    proxy: String,
    admin: String,
    token: String,
    key: String,
    /// "hard budget $0.50 in total, $0.50 left ..."
    budget: String,
}

struct Demo {
    child: Child,
    banner: Banner,
}

impl Demo {
    fn start(dir: &Path, extra: &[&str]) -> Demo {
        let mut child = Command::new(BIN)
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut fields: [Option<String>; 5] = Default::default();
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            while let Some(line) = lines.next() {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["proxy", url, ..] => fields[0] = Some(url.to_string()),
                    ["admin", url, ..] => fields[1] = Some(url.to_string()),
                    ["dashboard", .., token] => {
                        fields[2] = Some(token.trim_end_matches(')').to_string())
                    }
                    ["demo", "key", key] => {
                        fields[3] = Some(key.to_string());
                        fields[4] = lines.next().map(|l| l.trim().to_string());
                    }
                    _ => {}
                }
                if fields.iter().all(Option::is_some) {
                    let [p, a, t, k, b] = fields.map(Option::unwrap);
                    let _ = tx.send(Banner {
                        proxy: p,
                        admin: a,
                        token: t,
                        key: k,
                        budget: b,
                    });
                    // Keep draining: the access log goes to stdout too.
                    for _ in lines.by_ref() {}
                    return;
                }
            }
        });
        let banner = rx
            .recv_timeout(blastdoor_testkit::WAIT)
            .expect("the demo printed no banner");
        Demo { child, banner }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.banner.proxy)
    }

    fn post(&self, path: &str, body: serde_json::Value) -> Request<Full<Bytes>> {
        Request::post(self.url(path))
            .header("authorization", format!("Bearer {}", self.banner.key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    }

    /// Ctrl-C, and a clean exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < blastdoor_testkit::WAIT,
                "the demo did not stop on Ctrl-C"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(status.success(), "{status:?}");
    }
}

/// The dollars left, from "hard budget $0.50 in total, $0.019784 left ...".
fn left(budget: &str) -> f64 {
    let (before, _) = budget.split_once(" left").unwrap();
    before.rsplit('$').next().unwrap().parse().unwrap()
}

fn picture(prompt: &str) -> serde_json::Value {
    json!({ "prompt": prompt, "size": "256x256" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_whole_loop() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), &[]);
    let b = &demo.banner;
    assert!(b.key.starts_with("bd_"), "{}", b.key);
    assert!(
        b.budget
            .starts_with("hard budget $0.50 in total, $0.50 left"),
        "{}",
        b.budget
    );
    let c = Client::http1();

    // Chat needs the key; with it, plain and streamed answers.
    let chat =
        json!({"model": "sim-small", "messages": [{"role": "user", "content": "hello door"}]});
    let r = c
        .post(&demo.url("/chat/v1/chat/completions"), chat.to_string())
        .await;
    r.problem("unauthorized");
    let r = c.send(demo.post("/chat/v1/chat/completions", chat)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("hello door")
    );
    let streamed = json!({"model": "sim-small", "stream": true,
        "messages": [{"role": "user", "content": "stream please"}]});
    let r = c
        .send(demo.post("/chat/v1/chat/completions", streamed))
        .await;
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    assert!(text.matches("data: ").count() > 5, "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    // A real picture, priced from mediagen's usage.
    let r = c
        .send(demo.post(
            "/mediagen/v1/images/generations",
            picture("a door in a wall"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-blastdoor-cost-usd"), Some("0.04"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(r.json()["data"][0]["b64_json"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Off the contract: refused by the gateway.
    let r = c
        .send(demo.post(
            "/mediagen/v1/images/generations",
            json!({"prompt": "x", "n": 9}),
        ))
        .await;
    r.problem("contract_violation");

    // Pictures until the budget is spent: then 402, and nothing more is made.
    let mut made = 1;
    let refused = loop {
        assert!(made < 20, "the $0.50 budget never ran out");
        let r = c
            .send(demo.post("/mediagen/v1/images/generations", picture("a door")))
            .await;
        if r.status != StatusCode::OK {
            break r;
        }
        made += 1;
    };
    refused.problem("budget_exceeded");
    assert_eq!(
        made, 12,
        "$0.50 minus a few chat tokens is 12 pictures at $0.04"
    );

    // The dashboard opens with the token the banner shows.
    assert!(
        c.get(&format!("{}/", b.admin))
            .await
            .text()
            .contains("/assets/app.js")
    );
    let auth = format!("Bearer {}", b.token);
    let services = bearer_get(&c, &format!("{}/v1/services", b.admin), &auth).await;
    assert_eq!(services.status, StatusCode::OK, "{}", services.text());
    let names: Vec<String> = services
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["mediagen", "chat"]);
    let key = b.key.clone();
    demo.stop();

    let folder = dir.path().join(".blastdoor-demo");
    for file in [
        "blastdoor.db",
        "blastdoor.toml",
        "demo-key",
        "contracts/mediagen.yaml",
    ] {
        assert!(
            folder.join(file).exists(),
            "the demo keeps {file} in its folder"
        );
    }

    // A second run: the same key, its budget spent (less than a picture
    // left).
    let again = Demo::start(dir.path(), &[]);
    assert_eq!(again.banner.key, key);
    assert!(left(&again.banner.budget) < 0.04, "{}", again.banner.budget);
    let r = c
        .send(again.post("/mediagen/v1/images/generations", picture("one more")))
        .await;
    r.problem("budget_exceeded");
    again.stop();

    // --fresh: a new key with the whole budget.
    let fresh = Demo::start(dir.path(), &["--fresh"]);
    assert_ne!(fresh.banner.key, key);
    assert!(
        fresh.banner.budget.contains("$0.50 left"),
        "{}",
        fresh.banner.budget
    );
    let r = c
        .send(fresh.post("/mediagen/v1/images/generations", picture("again")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    fresh.stop();
}
