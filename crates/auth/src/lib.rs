//! Who is calling. API keys look like `bd_` + a 12-character public id + a
//! 32-character secret, all base62 (about 190 bits of secret). Only the
//! SHA-256 of the secret is stored; the full key is shown once.
//!
//! The proxy checks keys against [`KeyCache`], in memory: no store query
//! per request. The cache follows the store by polling for changed keys,
//! and the node that makes a change applies it at once.

pub mod cache;
pub mod jwt;
pub mod key;
pub mod ops;

pub use cache::{Caller, KeyCache, Rejection};
pub use jwt::JwtVerifier;
pub use key::{ApiKey, KeyFormatError};
pub use ops::{CreateKey, KeyOps, OpsError};
