#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: `check`, config reload (file change, SIGHUP, bad configs,
//! under load) and graceful shutdown.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;

/// An upstream answering with its own name.
async fn named(name: &'static str) -> MockUpstream {
    MockUpstream::start(move |_req| async move { text(StatusCode::OK, name) }).await
}

#[test]
fn check_lists_every_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        service("s", "/s", &["http://127.0.0.1:9".into()], ""),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 services)"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nworkers = 0\n\n[[service]]\nname = \"s\"\nroute = { prefix = \"/s\" }\nupstreams = [\"ftp://x\"]\ntimeout = \"soon\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    for needle in [
        format!("{file}:2:"),
        format!("{file}:7:"),
        format!("{file}:8:"),
        "3 problems found".to_string(),
    ] {
        assert!(err.contains(&needle), "missing {needle} in:\n{err}");
    }

    let out = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/blastdoor.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config"));
}

#[test]
fn serve_refuses_an_invalid_config_with_a_readable_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[service]]\nname = \"s\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid config") && err.contains("missing field"),
        "{err}"
    );
}

#[tokio::test]
async fn reloads_on_file_change_and_refuses_bad_configs() {
    let a = named("a").await;
    let b = named("b").await;
    let gw = start(&service("s", "/s", &[a.url()], ""));
    let c = Client::http1();
    assert_eq!(c.get(&gw.url("/s/x")).await.text(), "a");

    gw.write_config(&service("s", "/s", &[b.url()], ""));
    eventually("the new upstream serves", async || {
        c.get(&gw.url("/s/x")).await.text() == "b"
    })
    .await;
    gw.wait_for_log("config reloaded");

    // A broken config is refused; the last good one keeps serving.
    gw.write_config(
        "[[service]]\nname = \"s\"\nroute = { prefix = \"/s\" }\nupstreams = [\"ftp://nope\"]\n",
    );
    gw.wait_for_log("new config refused");
    assert!(
        gw.stderr().contains("scheme must be http or https"),
        "{}",
        gw.stderr()
    );
    assert_eq!(c.get(&gw.url("/s/x")).await.text(), "b");
    let metrics = c.get(&gw.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains("blastdoor_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn reloads_on_sighup() {
    let a = named("a").await;
    let b = named("b").await;
    let slow_poll = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nreload_poll_interval = \"1h\"\n";
    let gw = start(&format!(
        "{slow_poll}{}",
        service("s", "/s", &[a.url()], "")
    ));
    let c = Client::http1();
    gw.write_config(&format!(
        "{slow_poll}{}",
        service("s", "/s", &[b.url()], "")
    ));
    assert_eq!(
        c.get(&gw.url("/s/x")).await.text(),
        "a",
        "no reload before the signal"
    );
    gw.signal("HUP");
    gw.wait_for_log("SIGHUP received");
    eventually("the new upstream serves", async || {
        c.get(&gw.url("/s/x")).await.text() == "b"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_no_request() {
    let a = named("a").await;
    let b = named("b").await;
    let gw = start(&service("s", "/s", &[a.url()], ""));
    let done = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (done, ok, failed, url) = (
                Arc::clone(&done),
                Arc::clone(&ok),
                Arc::clone(&failed),
                gw.url("/s/x"),
            );
            tokio::spawn(async move {
                let c = Client::http1();
                // Bounded: stops when told, or after 20,000 requests.
                for _ in 0..20_000 {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    let r = c.get(&url).await;
                    let counter = if r.status == StatusCode::OK {
                        &ok
                    } else {
                        &failed
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for i in 0..6 {
        let up = if i % 2 == 0 { b.url() } else { a.url() };
        gw.write_config(&service("s", "/s", &[up], ""));
        let want = 1 + i;
        let start = Instant::now();
        while gw.log_count("config reloaded") < want {
            assert!(
                start.elapsed() < blastdoor_testkit::WAIT,
                "reload {want} never happened"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    done.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert!(ok.load(Ordering::SeqCst) > 100, "the load ran");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no request failed across six reloads"
    );
    assert!(a.hits() > 0 && b.hits() > 0);
}

#[tokio::test]
async fn graceful_stop_drains_in_flight_requests() {
    let release = Arc::new(tokio::sync::Notify::new());
    let r = Arc::clone(&release);
    let slow = MockUpstream::start(move |_req| {
        let r = Arc::clone(&r);
        async move {
            r.notified().await;
            text(StatusCode::OK, "finished")
        }
    })
    .await;
    let mut gw = start(&service("s", "/s", &[slow.url()], ""));
    let url = gw.url("/s/x");
    let in_flight = tokio::spawn(async move { Client::http1().get(&url).await });
    eventually("the request reached the upstream", async || {
        slow.hits() == 1
    })
    .await;

    gw.signal("TERM");
    gw.wait_for_log("draining");
    // New connections are refused while the old request drains.
    eventually("the listener is closed", async || {
        tokio::net::TcpStream::connect(gw.proxy).await.is_err()
    })
    .await;
    release.notify_one();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "finished");
    let status = tokio::task::spawn_blocking(move || {
        let s = gw.wait_exit();
        (s, gw.stderr())
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit status {:?}\n{}",
        status.0,
        status.1
    );
    assert!(status.1.contains("stopped"));
}

#[tokio::test]
async fn graceful_stop_gives_up_at_the_deadline() {
    let stuck = MockUpstream::start(|_req| async {
        std::future::pending::<()>().await;
        text(StatusCode::OK, "never")
    })
    .await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_timeout = \"200ms\"\n{}",
        service("s", "/s", &[stuck.url()], "")
    );
    let mut gw = start(&config);
    let url = gw.url("/s/x");
    let _in_flight = tokio::spawn(async move { Client::http1().get(&url).await });
    eventually("the request reached the upstream", async || {
        stuck.hits() == 1
    })
    .await;
    gw.signal("TERM");
    let (status, log) = tokio::task::spawn_blocking(move || (gw.wait_exit(), gw.stderr()))
        .await
        .unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("drain deadline passed"), "{log}");
}

#[test]
fn migrate_creates_and_upgrades_the_store_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("blastdoor.toml");
    std::fs::write(&config, "[store]\nurl = \"sqlite://state/bd.db\"\n").unwrap();
    for _ in 0..2 {
        let out = Command::new(BIN)
            .args(["migrate", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("is at the current schema"),
            "{out:?}"
        );
    }
    assert!(dir.path().join("state/bd.db").exists());

    std::fs::write(
        &config,
        "[store]\nurl = \"postgres://bd:hunter2@127.0.0.1:1/bd\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the store"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "the password must not be printed: {err}"
    );
}
