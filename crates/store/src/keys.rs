//! The key store: API keys by public id.

use std::future::Future;

use crate::{KeyRecord, NewKey, Result};

pub trait KeyStore: Send + Sync {
    /// Adds a key; fails with [`crate::StoreError::Duplicate`] if the id exists.
    fn insert_key(&self, key: &NewKey) -> impl Future<Output = Result<()>> + Send;

    fn get_key(&self, id: &str) -> impl Future<Output = Result<Option<KeyRecord>>> + Send;

    /// Every key, newest first.
    fn list_keys(&self) -> impl Future<Output = Result<Vec<KeyRecord>>> + Send;

    /// Marks a key revoked at `at`. False if there is no such key or it was
    /// already revoked.
    fn revoke_key(&self, id: &str, at: i64) -> impl Future<Output = Result<bool>> + Send;

    /// Replaces the secret hash; the old one stays valid until
    /// `previous_until` (None: not at all). False if the key is missing or
    /// revoked.
    fn rotate_key(
        &self,
        id: &str,
        new_hash: &str,
        previous_until: Option<i64>,
        at: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Keys changed after `after` (by `updated_at`), oldest change first:
    /// how caches on every node catch up.
    fn keys_changed_since(&self, after: i64)
    -> impl Future<Output = Result<Vec<KeyRecord>>> + Send;
}
