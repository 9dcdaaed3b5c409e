use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use blastdoor_config::{JwksSource, JwtIssuer};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const ISS: &str = "https://sso.example.com";
const AUD: &str = "blastdoor";

/// An ES256 signing key and its JWK.
struct Signer {
    encoding: EncodingKey,
    jwk: Value,
}

fn signer(kid: &str) -> Signer {
    let pair = rcgen::KeyPair::generate().unwrap();
    let raw = pair.public_key_raw();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..65]),
    });
    Signer {
        encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
        jwk,
    }
}

fn verifier(jwks: &[&Signer]) -> JwtVerifier {
    let v = JwtVerifier::new(&[JwtIssuer {
        issuer: ISS.into(),
        audience: AUD.into(),
        jwks: JwksSource::File("unused".into()),
        consumer_claim: "sub".into(),
        team_claim: Some("team".into()),
        algorithms: vec!["ES256".into(), "RS256".into()],
        leeway: Duration::from_secs(0),
        refresh_interval: Duration::from_secs(600),
    }]);
    let set = json!({ "keys": jwks.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>() });
    assert_eq!(v.load_jwks(0, &set.to_string()).unwrap(), jwks.len());
    v
}

fn now() -> i64 {
    blastdoor_store::now_ms() / 1000
}

fn claims() -> Value {
    json!({ "iss": ISS, "aud": AUD, "sub": "alice", "team": "media", "exp": now() + 600, "iat": now() })
}

fn token(s: &Signer, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, claims, &s.encoding).unwrap()
}

#[test]
fn accepts_a_valid_token_and_maps_its_claims() {
    let s = signer("k1");
    let v = verifier(&[&s]);
    let caller = v.verify(&token(&s, Some("k1"), &claims())).unwrap();
    assert_eq!(caller.consumer, "alice");
    assert_eq!(caller.team.as_deref(), Some("media"));
    assert_eq!(caller.key_id, format!("jwt:{ISS}"));
    // A single key needs no kid.
    assert!(v.verify(&token(&s, None, &claims())).is_ok());
}

#[test]
fn refuses_every_bad_token() {
    let s = signer("k1");
    let other = signer("k1");
    let v = verifier(&[&s]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        token(&s, Some("k1"), &c)
    };
    let cases: Vec<(&str, String, Rejection)> = vec![
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 3600)),
            Rejection::Expired,
        ),
        (
            "not yet valid",
            with(&|c| c["nbf"] = json!(now() + 3600)),
            Rejection::Unknown,
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://evil.example.com")),
            Rejection::Unknown,
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("someone-else")),
            Rejection::Unknown,
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut()
                    .map(|o| o.remove("exp"))
                    .map(|_| ())
                    .unwrap_or(())
            }),
            Rejection::Unknown,
        ),
        (
            "no consumer claim",
            with(&|c| {
                c.as_object_mut()
                    .map(|o| o.remove("sub"))
                    .map(|_| ())
                    .unwrap_or(())
            }),
            Rejection::Unknown,
        ),
        (
            "signed by another key",
            token(&other, Some("k1"), &claims()),
            Rejection::Unknown,
        ),
        (
            "unknown kid",
            token(&s, Some("k9"), &claims()),
            Rejection::Unknown,
        ),
        (
            "not a JWT",
            "bd_notajwt.x.y".to_string(),
            Rejection::Malformed,
        ),
    ];
    for (name, t, want) in cases {
        assert_eq!(v.verify(&t).unwrap_err(), want, "{name}");
    }
}

#[test]
fn refuses_alg_none_and_algorithm_confusion() {
    let s = signer("k1");
    let v = verifier(&[&s]);
    let body = B64.encode(claims().to_string());
    // alg=none, unsigned.
    let none = format!(
        "{}.{body}.",
        B64.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#)
    );
    assert!(v.verify(&none).is_err());
    // HS256 "signed" with the public key material as the HMAC secret.
    let public_material = s.jwk.to_string();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &h,
        &claims(),
        &EncodingKey::from_secret(public_material.as_bytes()),
    )
    .unwrap();
    assert_eq!(v.verify(&confused).unwrap_err(), Rejection::Unknown);
    // A tampered payload breaks the signature.
    let good = token(&s, Some("k1"), &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let mut forged_claims = claims();
    forged_claims["sub"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(forged_claims.to_string()),
        parts[2]
    );
    assert_eq!(v.verify(&forged).unwrap_err(), Rejection::Unknown);
}

#[test]
fn jwks_reload_replaces_keys() {
    let old = signer("k1");
    let new = signer("k2");
    let v = verifier(&[&old]);
    assert!(v.verify(&token(&old, Some("k1"), &claims())).is_ok());
    v.load_jwks(0, &json!({ "keys": [new.jwk] }).to_string())
        .unwrap();
    assert!(
        v.verify(&token(&old, Some("k1"), &claims())).is_err(),
        "rotated out"
    );
    assert!(v.verify(&token(&new, Some("k2"), &claims())).is_ok());
    assert!(v.load_jwks(0, "not json").is_err());
}
