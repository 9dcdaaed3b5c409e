#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: callers with SSO tokens (JWTs) from a JWKS file or URL.

mod common;

use common::*;
use http::StatusCode;

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
