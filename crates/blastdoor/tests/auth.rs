#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: API keys made with the CLI, checked by the running gateway.

mod common;

use std::process::Command;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;

#[tokio::test]
async fn key_life_cycle_through_the_cli() {
    let up = MockUpstream::echo().await;
    let gw = start(&config(&up.url()));
    let c = Client::http1();
    let key = keys(
        &gw,
        &[
            "create",
            "--name",
            "thumbnailer",
            "--team",
            "media",
            "--services",
            "img",
        ],
    );
    assert!(key.starts_with("bd_") && key.len() == 47, "{key}");
    let bearer = format!("Bearer {key}");

    // The new key reaches the running gateway through the store.
    eventually("the key is accepted", async || {
        bearer_get(&c, &gw.url("/img/x"), &bearer).await.status == StatusCode::OK
    })
    .await;
    let r = c
        .send(
            Request::get(gw.url("/img/x"))
                .header("authorization", &bearer)
                .header("x-internal-debug", "1")
                .header("x-blastdoor-team", "forged")
                .body(Full::default())
                .unwrap(),
        )
        .await;
    let seen = &r.json()["headers"];
    assert_eq!(seen["x-blastdoor-consumer"], "thumbnailer");
    assert_eq!(
        seen["x-blastdoor-team"], "media",
        "a caller cannot forge its team"
    );
    assert_eq!(
        seen["authorization"], PROVIDER_SECRET,
        "the upstream gets the service's own credential"
    );
    assert!(seen.get("x-internal-debug").is_none());
    assert!(
        !seen.to_string().contains(&key),
        "the caller's key never crosses the door: {seen}"
    );
    assert_eq!(
        c.send(with_key(&gw.url("/img/x"), "x-api-key", &key))
            .await
            .status,
        StatusCode::OK
    );
    let r = c.send(with_key(&gw.url("/img/x"), "x-api-key", &key)).await;
    assert!(r.json()["headers"].get("x-api-key").is_none());

    // Missing, malformed, unknown: 401. Out of scope: 403. Public: no key.
    c.get(&gw.url("/img/x")).await.problem("unauthorized");
    assert_eq!(
        c.get(&gw.url("/img/x")).await.status,
        StatusCode::UNAUTHORIZED
    );
    bearer_get(&c, &gw.url("/img/x"), "Bearer nonsense")
        .await
        .problem("unauthorized");
    let stranger = format!("Bearer bd_{}", "A".repeat(44));
    bearer_get(&c, &gw.url("/img/x"), &stranger)
        .await
        .problem("unauthorized");
    let r = bearer_get(&c, &gw.url("/chat/x"), &bearer).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    r.problem("forbidden");
    assert_eq!(c.get(&gw.url("/open/x")).await.status, StatusCode::OK);

    let out = Command::new(BIN)
        .arg("audit")
        .arg("--config")
        .arg(&gw.config_path)
        .args(["--since", "1h"])
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && audit.contains("key.create") && audit.contains(key_id(&key)),
        "{audit}"
    );
    assert!(audit.contains("cli:"), "the CLI records who acted: {audit}");

    let listed = keys(&gw, &["list"]);
    assert!(
        listed.contains(key_id(&key))
            && listed.contains("thumbnailer")
            && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&key[15..]), "list never shows secrets");

    // Rotation with grace: both secrets work for a while.
    let rotated = keys(&gw, &["rotate", key_id(&key), "--grace", "1h"]);
    assert_eq!(key_id(&rotated), key_id(&key));
    let new_bearer = format!("Bearer {rotated}");
    eventually("the new secret is accepted", async || {
        bearer_get(&c, &gw.url("/img/x"), &new_bearer).await.status == StatusCode::OK
    })
    .await;
    assert_eq!(
        bearer_get(&c, &gw.url("/img/x"), &bearer).await.status,
        StatusCode::OK
    );

    // Revocation reaches the running gateway within the sync interval.
    keys(&gw, &["revoke", key_id(&key)]);
    eventually("the revoked key is refused", async || {
        bearer_get(&c, &gw.url("/img/x"), &new_bearer).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    let r = bearer_get(&c, &gw.url("/img/x"), &new_bearer).await;
    assert!(
        r.problem("unauthorized")["detail"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );

    let logs = format!("{}{}", gw.stderr(), gw.stdout());
    assert!(
        !logs.contains(&key[15..]) && !logs.contains(&rotated[15..]),
        "secrets never reach the logs"
    );
    assert!(!logs.contains("provider-secret-42"));
}

#[tokio::test]
async fn keys_expire() {
    let up = MockUpstream::echo().await;
    let gw = start(&config(&up.url()));
    let c = Client::http1();
    let key = keys(&gw, &["create", "--name", "short-lived", "--expires", "3s"]);
    let bearer = format!("Bearer {key}");
    eventually("the key works", async || {
        bearer_get(&c, &gw.url("/chat/x"), &bearer).await.status == StatusCode::OK
    })
    .await;
    eventually("the key expires", async || {
        bearer_get(&c, &gw.url("/chat/x"), &bearer).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    let r = bearer_get(&c, &gw.url("/chat/x"), &bearer).await;
    assert!(
        r.problem("unauthorized")["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert!(keys(&gw, &["list"]).contains("expired"));
}

#[tokio::test]
async fn repeated_failures_are_slowed_down() {
    let up = MockUpstream::echo().await;
    let gw = start(&config(&up.url()));
    let c = Client::http1();
    let key = keys(&gw, &["create", "--name", "honest"]);
    let bearer = format!("Bearer {key}");
    // Wait for the key to reach the gateway without failing any request.
    eventually("the key is loaded", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains("blastdoor_api_keys 1")
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..25 {
        let guess = format!("Bearer bd_{}{:032}", "B".repeat(12), i);
        statuses.push(bearer_get(&c, &gw.url("/chat/x"), &guess).await.status);
    }
    assert!(
        statuses[..20]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    let r = bearer_get(&c, &gw.url("/chat/x"), &bearer).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "while limited, even a right key waits"
    );
    r.problem("rate_limited");
    assert!(r.header("retry-after").unwrap().parse::<u32>().unwrap() > 0);
    assert_eq!(
        c.get(&gw.url("/open/x")).await.status,
        StatusCode::OK,
        "public services are not affected"
    );
    assert_eq!(up.hits(), 1, "no guess reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_the_admin_api_is_refused_at_once_under_load() {
    let up = MockUpstream::echo().await;
    let token = "admin-token-for-tests-0001";
    let server = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{token}\"\nworkers = 2\n"
    );
    let gw = start(&format!("{server}{}", config(&up.url())));
    let c = Client::http1();
    let admin = |method: &str, path: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(gw.admin_url(path))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let created = c
        .send(admin(
            "POST",
            "/v1/keys",
            r#"{"name":"loadgen","services":["img"]}"#,
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let key = created.json()["key"].as_str().unwrap().to_string();
    let id = created.json()["id"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {key}");
    assert_eq!(
        bearer_get(&c, &gw.url("/img/x"), &bearer).await.status,
        StatusCode::OK,
        "usable at once"
    );

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (c, url, bearer, stop) = (
                c.clone(),
                gw.url("/img/x"),
                bearer.clone(),
                std::sync::Arc::clone(&stop),
            );
            tokio::spawn(async move {
                for _ in 0..10_000 {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    c.send(with_key(&url, "authorization", &bearer)).await;
                }
            })
        })
        .collect();
    let revoked = c
        .send(admin("POST", &format!("/v1/keys/{id}/revoke"), ""))
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    for _ in 0..20 {
        let r = bearer_get(&c, &gw.url("/img/x"), &bearer).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "refused from the moment the revoke returned"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for l in load {
        l.await.unwrap();
    }
    let audit = c.send(admin("GET", "/v1/audit", "")).await.json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["key.revoke", "key.create"]);
}

#[tokio::test]
async fn checking_keys_never_queries_the_store() {
    let up = MockUpstream::echo().await;
    // The key exists before the gateway starts; syncing once a day, the
    // gateway has no reason to query the store after start-up.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let text = config(&up.url()).replace(
        "key_sync_interval = \"100ms\"",
        &format!(
            "key_sync_interval = \"1d\"\nurl = \"sqlite://{}\"",
            db.display()
        ),
    );
    let cli_config = dir.path().join("cli.toml");
    std::fs::write(&cli_config, &text).unwrap();
    let out = Command::new(BIN)
        .args(["keys", "--config"])
        .arg(&cli_config)
        .args(["create", "--name", "counted"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let gw = start(&text);
    let c = Client::http1();
    let queries = |text: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with("blastdoor_store_queries "))
            .unwrap();
        line.split(' ').nth(1).unwrap().parse().unwrap()
    };
    let before = queries(&c.get(&gw.admin_url("/metrics")).await.text());
    let bearer = format!("Bearer {key}");
    for _ in 0..200 {
        let r = bearer_get(&c, &gw.url("/chat/x"), &bearer).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let after = queries(&c.get(&gw.admin_url("/metrics")).await.text());
    assert!(
        before > 0,
        "start-up did query the store (migrations, the first key sync)"
    );
    assert_eq!(before, after, "200 authenticated requests, no store query");
}
