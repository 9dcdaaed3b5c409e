//! Callers with SSO tokens: JWTs from configured issuers, checked against
//! the issuer's JWKS. Signature, `exp`, `nbf`, `iss` and `aud` are checked;
//! only asymmetric algorithms are accepted (the config refuses others), the
//! token's algorithm must be allowed for the issuer and match the key's
//! family and the JWK's own `alg`, so `alg=none` and algorithm confusion
//! (an HMAC token "signed" with a public key) are refused.

use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use blastdoor_config::JwtIssuer;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::cache::{Caller, Rejection};

struct Key {
    kid: Option<String>,
    /// The JWK's declared algorithm, if it declares one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

struct Issuer {
    config: JwtIssuer,
    algorithms: Vec<Algorithm>,
    keys: ArcSwap<Vec<Key>>,
}

/// Every configured issuer with its current keys; cheap to share.
#[derive(Default)]
pub struct JwtVerifier {
    issuers: Vec<Issuer>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.issuers.iter().map(|i| &i.config.issuer))
            .finish()
    }
}

impl JwtVerifier {
    /// Issuers with no keys yet: load them with [`JwtVerifier::load_jwks`].
    pub fn new(issuers: &[JwtIssuer]) -> JwtVerifier {
        JwtVerifier {
            issuers: issuers
                .iter()
                .map(|c| Issuer {
                    algorithms: c
                        .algorithms
                        .iter()
                        .filter_map(|a| Algorithm::from_str(a).ok())
                        .collect(),
                    config: c.clone(),
                    keys: ArcSwap::from_pointee(Vec::new()),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Replaces issuer `index`'s keys with the JWKS document `json`;
    /// returns how many keys it holds. Keys that cannot be used are skipped.
    pub fn load_jwks(&self, index: usize, json: &str) -> Result<usize, String> {
        let issuer = self.issuers.get(index).ok_or("no such issuer")?;
        let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("invalid JWKS: {e}"))?;
        let keys: Vec<Key> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(jwk).ok()?;
                let alg = jwk
                    .common
                    .key_algorithm
                    .and_then(|a| Algorithm::from_str(&a.to_string()).ok());
                Some(Key {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    key,
                })
            })
            .collect();
        let n = keys.len();
        issuer.keys.store(Arc::new(keys));
        Ok(n)
    }

    /// Checks a bearer token against the issuers that accept its algorithm.
    pub fn verify(&self, token: &str) -> Result<Arc<Caller>, Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        let mut result = Err(Rejection::Unknown);
        for issuer in self
            .issuers
            .iter()
            .filter(|i| i.algorithms.contains(&header.alg))
        {
            let keys = issuer.keys.load();
            let candidates = keys.iter().filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => keys.len() == 1,
            });
            for key in candidates.filter(|k| k.alg.is_none_or(|a| a == header.alg)) {
                match issuer.check(token, header.alg, &key.key) {
                    Ok(caller) => return Ok(caller),
                    Err(Rejection::Expired) => result = Err(Rejection::Expired),
                    Err(_) => {}
                }
            }
        }
        result
    }
}

impl Issuer {
    fn check(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<Arc<Caller>, Rejection> {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.validate_nbf = true;
        v.leeway = self.config.leeway.as_secs();
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, key, &v).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => Rejection::Expired,
                    _ => Rejection::Unknown,
                }
            })?;
        let claims = data.claims;
        let consumer = claims
            .get(&self.config.consumer_claim)
            .and_then(|v| v.as_str())
            .ok_or(Rejection::Unknown)?;
        let team = self
            .config
            .team_claim
            .as_ref()
            .and_then(|c| claims.get(c))
            .and_then(|v| v.as_str());
        Ok(Arc::new(Caller::from_token(
            &self.config.issuer,
            consumer.to_string(),
            team.map(str::to_string),
        )))
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
