#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: API keys made with the CLI, checked by the running gateway.

mod common;

use std::process::Command;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;

const PROVIDER_SECRET: &str = "Bearer provider-secret-42";

fn config(upstream: &str) -> String {
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

/// Runs `blastdoor keys ...` against the gateway's config; returns stdout.
fn keys(gw: &GatewayProcess, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("keys")
        .arg("--config")
        .arg(&gw.config_path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn with_key(url: &str, header: &str, value: &str) -> Request<Full<Bytes>> {
    Request::get(url)
        .header(header, value)
        .body(Full::default())
        .unwrap()
}

/// GET `url` with `Authorization: <authorization>` (a "Bearer ..." value).
async fn bearer_get(c: &Client, url: &str, authorization: &str) -> Reply {
    c.send(with_key(url, "authorization", authorization)).await
}

fn key_id(key: &str) -> &str {
    &key[3..15]
}

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

/// An ES256 key: its JWK and a token maker.
struct Idp {
    key: jsonwebtoken::EncodingKey,
    jwks: String,
}

fn idp() -> Idp {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let pair = rcgen::KeyPair::generate().unwrap();
    let raw = pair.public_key_raw();
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "sso-1",
        "x": b64.encode(&raw[1..33]), "y": b64.encode(&raw[33..65]),
    });
    Idp {
        key: jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
        jwks: serde_json::json!({ "keys": [jwk] }).to_string(),
    }
}

impl Idp {
    fn token(&self, issuer: &str, exp_in_secs: i64) -> String {
        let now = blastdoor_store_now_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("sso-1".into());
        let claims = serde_json::json!({"iss": issuer, "aud": "blastdoor", "sub": "alice@corp", "team": "research", "exp": now + exp_in_secs});
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

fn blastdoor_store_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// Multi-threaded: the gateway fetches the JWKS from this test's mock
// while the test thread waits for the gateway to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_tokens_from_a_jwks_file_or_url() {
    let up = MockUpstream::echo().await;
    let file_idp = idp();
    let url_idp = idp();
    let jwks_body = url_idp.jwks.clone();
    let jwks_server = MockUpstream::start(move |_req| {
        let body = jwks_body.clone();
        async move { blastdoor_testkit::upstream::full(StatusCode::OK, "application/json", body) }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, &file_idp.jwks).unwrap();
    let auth = format!(
        r#"
[[auth.jwt]]
issuer = "https://sso.example.com"
audience = "blastdoor"
jwks_file = "{}"
team_claim = "team"
algorithms = ["ES256"]

[[auth.jwt]]
issuer = "https://other-idp.example.com"
audience = "blastdoor"
jwks_url = "{}/.well-known/jwks.json"
algorithms = ["ES256"]
"#,
        jwks_path.display(),
        jwks_server.url()
    );
    let gw = start(&format!("{auth}{}", config(&up.url())));
    let c = Client::http1();

    let good = file_idp.token("https://sso.example.com", 600);
    let r = c
        .send(with_key(
            &gw.url("/chat/x"),
            "authorization",
            &format!("Bearer {good}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-blastdoor-consumer"], "alice@corp");
    assert_eq!(r.json()["headers"]["x-blastdoor-team"], "research");
    assert!(
        !r.text().contains(&good),
        "the token never reaches the upstream"
    );

    let from_url = url_idp.token("https://other-idp.example.com", 600);
    let r = c
        .send(with_key(
            &gw.url("/chat/x"),
            "authorization",
            &format!("Bearer {from_url}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let expired = file_idp.token("https://sso.example.com", -3600);
    let r = c
        .send(with_key(
            &gw.url("/chat/x"),
            "authorization",
            &format!("Bearer {expired}"),
        ))
        .await;
    assert!(
        r.problem("unauthorized")["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // A token from one issuer's key claiming the other issuer is refused.
    let crossed = file_idp.token("https://other-idp.example.com", 600);
    c.send(with_key(
        &gw.url("/chat/x"),
        "authorization",
        &format!("Bearer {crossed}"),
    ))
    .await
    .problem("unauthorized");
    bearer_get(&c, &gw.url("/chat/x"), "Bearer not.a.jwt")
        .await
        .problem("unauthorized");
}

#[tokio::test]
async fn requests_per_minute_per_service_and_per_key() {
    let up = MockUpstream::echo().await;
    let limits = config(&up.url())
        .replace(
            "name = \"open\"",
            "name = \"open\"\nrate_limit = { requests_per_minute = 2 }",
        )
        .replace(
            "name = \"chat\"",
            "name = \"chat\"\nrate_limit = { per_key_requests_per_minute = 3 }",
        );
    let gw = start(&limits);
    let c = Client::http1();

    let first = c.get(&gw.url("/open/x")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"service\";q=2;w=60")
    );
    assert!(
        first
            .header("ratelimit")
            .unwrap()
            .starts_with("\"service\";r=1;"),
        "{:?}",
        first.headers
    );
    assert_eq!(c.get(&gw.url("/open/x")).await.status, StatusCode::OK);
    let refused = c.get(&gw.url("/open/x")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    refused.problem("rate_limited");
    assert!(
        refused
            .header("retry-after")
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    assert!(
        refused
            .header("ratelimit")
            .unwrap()
            .starts_with("\"service\";r=0;")
    );

    let a = format!("Bearer {}", keys(&gw, &["create", "--name", "a"]));
    let b = format!("Bearer {}", keys(&gw, &["create", "--name", "b"]));
    eventually("both keys are loaded", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains("blastdoor_api_keys 2")
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            bearer_get(&c, &gw.url("/chat/x"), &a).await.status,
            StatusCode::OK
        );
    }
    let r = bearer_get(&c, &gw.url("/chat/x"), &a).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.problem("rate_limited")["detail"]
            .as_str()
            .unwrap()
            .contains("caller limit of 3")
    );
    assert_eq!(
        bearer_get(&c, &gw.url("/chat/x"), &b).await.status,
        StatusCode::OK,
        "b has its own quota"
    );
    assert_eq!(up.hits(), 6, "refused calls never reach the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_per_key_are_capped() {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let g = std::sync::Arc::clone(&gate);
    let up = MockUpstream::start(move |_req| {
        let g = std::sync::Arc::clone(&g);
        async move {
            let _permit = g.acquire().await.unwrap();
            text(StatusCode::OK, "done")
        }
    })
    .await;
    let limits = config(&up.url()).replace(
        "name = \"chat\"",
        "name = \"chat\"\nrate_limit = { per_key_concurrency = 1 }",
    );
    let gw = start(&limits);
    let c = Client::http1();
    let a = format!("Bearer {}", keys(&gw, &["create", "--name", "a"]));
    let b = format!("Bearer {}", keys(&gw, &["create", "--name", "b"]));
    eventually("both keys are loaded", async || {
        c.get(&gw.admin_url("/metrics"))
            .await
            .text()
            .contains("blastdoor_api_keys 2")
    })
    .await;
    let held = {
        let (c, url, a) = (c.clone(), gw.url("/chat/x"), a.clone());
        tokio::spawn(async move { bearer_get(&c, &url, &a).await })
    };
    eventually("the first call is in flight", async || up.hits() == 1).await;
    let r = bearer_get(&c, &gw.url("/chat/x"), &a).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    r.problem("rate_limited");
    let other = {
        let (c, url, b) = (c.clone(), gw.url("/chat/x"), b.clone());
        tokio::spawn(async move { bearer_get(&c, &url, &b).await })
    };
    eventually("b's call is in flight too", async || up.hits() == 2).await;
    gate.add_permits(2);
    assert_eq!(held.await.unwrap().status, StatusCode::OK);
    assert_eq!(other.await.unwrap().status, StatusCode::OK);
    gate.add_permits(1);
    assert_eq!(
        bearer_get(&c, &gw.url("/chat/x"), &a).await.status,
        StatusCode::OK,
        "the slot came back"
    );
}
