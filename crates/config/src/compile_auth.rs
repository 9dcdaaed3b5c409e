//! `[auth]`: identity providers whose JWTs the gateway accepts.

use std::time::Duration;

use super::Cx;
use crate::model::{Auth, JwksSource, JwtIssuer};
use crate::raw::RawAuth;

/// Signature algorithms a JWKS may be used with: asymmetric ones only, so a
/// public key can never double as an HMAC secret.
const ASYMMETRIC: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl Cx<'_> {
    pub(super) fn auth(&mut self, raw: &RawAuth) -> Auth {
        let mut jwt = Vec::new();
        for j in raw.jwt.iter().flatten() {
            let jwks = match (&j.jwks_file, &j.jwks_url) {
                (Some(f), None) => JwksSource::File(self.file_path(f)),
                (None, Some(u)) => {
                    let url = self.string(u).unwrap_or_default();
                    if !url.starts_with("https://") && !url.starts_with("http://") {
                        self.error(u.span(), "jwks_url must be an http(s) URL");
                    }
                    JwksSource::Url(url)
                }
                _ => {
                    self.error(j.issuer.span(), "set exactly one of jwks_file and jwks_url");
                    JwksSource::Url(String::new())
                }
            };
            let algorithms = match &j.algorithms {
                None => vec!["RS256".to_string(), "ES256".to_string()],
                Some(list) => list
                    .get_ref()
                    .iter()
                    .filter_map(|a| {
                        let name = self.string(a)?;
                        if !ASYMMETRIC.contains(&name.as_str()) {
                            self.error(
                                a.span(),
                                format!(
                                    "algorithm {name:?} is not accepted: use one of {}",
                                    ASYMMETRIC.join(", ")
                                ),
                            );
                        }
                        Some(name)
                    })
                    .collect(),
            };
            jwt.push(JwtIssuer {
                issuer: self.string(&j.issuer).unwrap_or_default(),
                audience: self.string(&j.audience).unwrap_or_default(),
                jwks,
                consumer_claim: j
                    .consumer_claim
                    .as_ref()
                    .and_then(|c| self.string(c))
                    .unwrap_or_else(|| "sub".into()),
                team_claim: j.team_claim.as_ref().and_then(|c| self.string(c)),
                algorithms,
                leeway: self.duration(&j.leeway, Duration::from_secs(60), "leeway"),
                refresh_interval: self.duration(
                    &j.refresh_interval,
                    Duration::from_secs(600),
                    "refresh_interval",
                ),
            });
        }
        Auth { jwt }
    }
}
