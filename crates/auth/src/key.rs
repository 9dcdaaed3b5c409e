//! The key format: generation, parsing, hashing, constant-time checks.

use std::fmt;

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "bd_";
pub const ID_LEN: usize = 12;
pub const SECRET_LEN: usize = 32;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A full key, as shown once to its owner. `Debug` and `Display` never
/// show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    id: String,
    secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a blastdoor API key (expected bd_ followed by 44 letters and digits)")]
pub struct KeyFormatError;

impl ApiKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<ApiKey, getrandom::Error> {
        Ok(ApiKey {
            id: random_base62(ID_LEN)?,
            secret: random_base62(SECRET_LEN)?,
        })
    }

    /// Parses `bd_<id><secret>`.
    pub fn parse(s: &str) -> Result<ApiKey, KeyFormatError> {
        let (id, secret) = split(s)?;
        Ok(ApiKey {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// The public id, safe to show and log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A new secret for the same id (rotation).
    pub fn rotated(&self) -> Result<ApiKey, getrandom::Error> {
        Ok(ApiKey {
            id: self.id.clone(),
            secret: random_base62(SECRET_LEN)?,
        })
    }

    /// The whole key, for showing once. Deliberately not `Display`.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}{}", self.id, self.secret)
    }

    /// What the store keeps: the hex SHA-256 of the secret.
    pub fn secret_hash(&self) -> String {
        hash_secret(&self.secret)
    }

    /// Whether this key's secret matches `stored_hash`, in constant time.
    pub fn matches(&self, stored_hash: &str) -> bool {
        constant_time_eq(self.secret_hash().as_bytes(), stored_hash.as_bytes())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({PREFIX}{}…[redacted])", self.id)
    }
}

/// `bd_<id><secret>` as (id, secret), borrowed: what the proxy checks on
/// every request, without copying either part.
pub fn split(s: &str) -> Result<(&str, &str), KeyFormatError> {
    let body = s.strip_prefix(PREFIX).ok_or(KeyFormatError)?;
    if body.len() != ID_LEN + SECRET_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError);
    }
    Ok(body.split_at(ID_LEN))
}

/// The SHA-256 of a secret. The store keeps it as hex ([`hash_secret`]);
/// the key cache keeps the raw bytes, so a request's check hashes and
/// compares without writing hex.
pub type SecretDigest = [u8; 32];

pub fn secret_digest(secret: &str) -> SecretDigest {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(secret_digest(secret))
}

/// A stored hex hash as raw bytes; `None` if it is not one (such a hash
/// matches no secret).
pub fn digest_from_hex(hash: &str) -> Option<SecretDigest> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hash, &mut out).ok()?;
    Some(out)
}

/// Equal-length inputs are compared without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` base62 characters, uniformly distributed (rejection sampling).
pub fn random_base62(n: usize) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf)?;
        // 248 = 4 x 62: bytes above it would bias the distribution.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == n {
                break;
            }
            out.push(char::from(BASE62[usize::from(b % 62)]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back() {
        let k = ApiKey::generate().unwrap();
        let shown = k.reveal();
        assert!(shown.starts_with("bd_"));
        assert_eq!(shown.len(), 3 + 44);
        let parsed = ApiKey::parse(&shown).unwrap();
        assert_eq!(parsed, k);
        assert!(parsed.matches(&k.secret_hash()));
        assert_ne!(ApiKey::generate().unwrap().reveal(), shown);
    }

    #[test]
    fn rejects_malformed_keys() {
        let good = ApiKey::generate().unwrap().reveal();
        for bad in [
            "",
            "bd_",
            &good[3..],
            &good[..good.len() - 1],
            &format!("{good}x"),
            &good.replace("bd_", "sk_"),
            &format!("bd_{}-{}", &good[3..15], &good[16..]),
        ] {
            assert_eq!(ApiKey::parse(bad), Err(KeyFormatError), "{bad:?}");
        }
    }

    #[test]
    fn rotation_keeps_the_id_and_changes_the_secret() {
        let k = ApiKey::generate().unwrap();
        let r = k.rotated().unwrap();
        assert_eq!(r.id(), k.id());
        assert!(!r.matches(&k.secret_hash()));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let k = ApiKey::generate().unwrap();
        let debug = format!("{k:?}");
        assert!(debug.contains(k.id()));
        assert!(!debug.contains(&k.reveal()[15..]), "{debug}");
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
