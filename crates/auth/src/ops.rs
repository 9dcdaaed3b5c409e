//! Key operations: the one layer the CLI and the admin API both call, so
//! they work on the same data the same way. Every operation is audited.

use std::time::Duration;

use blastdoor_store::{AuditEntry, AuditStore, KeyRecord, KeyStore, NewKey, StoreError, now_ms};

use crate::cache::KeyCache;
use crate::key::ApiKey;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    Invalid(String),
    #[error("no key with id {0}")]
    NotFound(String),
    #[error("key {0} is revoked")]
    Revoked(String),
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key to create.
#[derive(Debug, Clone, Default)]
pub struct CreateKey {
    pub name: String,
    pub team: Option<String>,
    pub services: Vec<String>,
    pub methods: Vec<String>,
    /// Lifetime from now; None: does not expire.
    pub expires_in: Option<Duration>,
}

pub struct KeyOps<'a, S> {
    store: &'a S,
    /// The local cache, updated at once so a change takes effect on this
    /// node without waiting for the next sync.
    cache: Option<&'a KeyCache>,
    /// Who acts, for the audit log ("cli:root", "admin-api").
    actor: String,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
}

impl<'a, S: KeyStore + AuditStore> KeyOps<'a, S> {
    pub fn new(store: &'a S, cache: Option<&'a KeyCache>, actor: impl Into<String>) -> Self {
        KeyOps {
            store,
            cache,
            actor: actor.into(),
        }
    }

    async fn audit(&self, action: &str, target: &str, outcome: &Result<KeyRecord, OpsError>) {
        let entry = AuditEntry {
            seq: 0,
            at: now_ms(),
            actor: self.actor.clone(),
            action: action.to_string(),
            target: format!("key:{target}"),
            outcome: match outcome {
                Ok(_) => "ok".to_string(),
                Err(e) => e.to_string(),
            },
            detail: String::new(),
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, action, target, "could not write the audit log");
        }
    }

    async fn changed(&self, id: &str) -> Result<KeyRecord, OpsError> {
        let record = self
            .store
            .get_key(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(id.to_string()))?;
        if let Some(cache) = self.cache {
            cache.apply(std::slice::from_ref(&record));
        }
        Ok(record)
    }

    /// Creates a key; the returned [`ApiKey`] is the only time its secret
    /// exists outside the caller's hands.
    pub async fn create(&self, req: CreateKey) -> Result<(ApiKey, KeyRecord), OpsError> {
        let mut shown = None;
        let result = self.try_create(req, &mut shown).await;
        let target = shown.as_ref().map_or("-", |k: &ApiKey| k.id()).to_string();
        self.audit("key.create", &target, &result).await;
        let record = result?;
        let key = shown.ok_or_else(|| OpsError::Random("no key generated".into()))?;
        Ok((key, record))
    }

    async fn try_create(
        &self,
        req: CreateKey,
        shown: &mut Option<ApiKey>,
    ) -> Result<KeyRecord, OpsError> {
        if !valid_label(&req.name) {
            return Err(OpsError::Invalid(
                "name must be 1-128 characters of letters, digits and -_.:@".into(),
            ));
        }
        if let Some(team) = req.team.as_deref().filter(|t| !valid_label(t)) {
            return Err(OpsError::Invalid(format!("invalid team {team:?}")));
        }
        if let Some(s) = req.services.iter().find(|s| !valid_label(s)) {
            return Err(OpsError::Invalid(format!("invalid service name {s:?}")));
        }
        let methods: Vec<String> = req.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        if let Some(m) = methods
            .iter()
            .find(|m| !m.chars().all(|c| c.is_ascii_uppercase()))
        {
            return Err(OpsError::Invalid(format!("invalid method {m:?}")));
        }
        let key = ApiKey::generate().map_err(|e| OpsError::Random(e.to_string()))?;
        let now = now_ms();
        let new = NewKey {
            id: key.id().to_string(),
            secret_hash: key.secret_hash(),
            name: req.name,
            team: req.team,
            services: req.services,
            methods,
            created_at: now,
            expires_at: req.expires_in.map(|d| now.saturating_add(millis(d))),
        };
        self.store.insert_key(&new).await?;
        *shown = Some(key.clone());
        self.changed(key.id()).await
    }

    pub async fn list(&self) -> Result<Vec<KeyRecord>, OpsError> {
        Ok(self.store.list_keys().await?)
    }

    pub async fn revoke(&self, id: &str) -> Result<KeyRecord, OpsError> {
        let result = async {
            if !self.store.revoke_key(id, now_ms()).await? {
                return match self.store.get_key(id).await? {
                    Some(_) => Err(OpsError::Revoked(id.to_string())),
                    None => Err(OpsError::NotFound(id.to_string())),
                };
            }
            self.changed(id).await
        }
        .await;
        self.audit("key.revoke", id, &result).await;
        result
    }

    /// A new secret for the key; the old one keeps working for `grace`.
    pub async fn rotate(
        &self,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<(ApiKey, KeyRecord), OpsError> {
        let mut shown = None;
        let result = async {
            let record = self
                .store
                .get_key(id)
                .await?
                .ok_or_else(|| OpsError::NotFound(id.to_string()))?;
            let old = ApiKey::parse(&format!(
                "bd_{}{}",
                record.id,
                "0".repeat(crate::key::SECRET_LEN)
            ))
            .map_err(|_| OpsError::Invalid(format!("stored key id {id:?} is malformed")))?;
            let new = old.rotated().map_err(|e| OpsError::Random(e.to_string()))?;
            let now = now_ms();
            let until = grace.map(|g| now.saturating_add(millis(g)));
            if !self
                .store
                .rotate_key(id, &new.secret_hash(), until, now)
                .await?
            {
                return Err(OpsError::Revoked(id.to_string()));
            }
            shown = Some(new);
            self.changed(id).await
        }
        .await;
        self.audit("key.rotate", id, &result).await;
        let record = result?;
        let key = shown.ok_or_else(|| OpsError::Random("no key generated".into()))?;
        Ok((key, record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blastdoor_store::SqlStore;

    async fn store() -> (tempfile::TempDir, SqlStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqlStore::connect(&format!("sqlite://{}", dir.path().join("k.db").display()))
            .await
            .unwrap();
        s.migrate().await.unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn life_cycle_updates_the_local_cache_and_the_audit_log() {
        let (_dir, s) = store().await;
        let cache = KeyCache::new();
        let ops = KeyOps::new(&s, Some(&cache), "test");
        let req = CreateKey {
            name: "svc-a".into(),
            team: Some("media".into()),
            services: vec!["imagegen".into()],
            ..Default::default()
        };
        let (key, record) = ops.create(req).await.unwrap();
        assert_eq!(record.id, key.id());
        assert!(
            cache.authenticate(Some(&key.reveal()), now_ms()).is_ok(),
            "usable at once on this node"
        );

        let (new, _) = ops
            .rotate(key.id(), Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(cache.authenticate(Some(&new.reveal()), now_ms()).is_ok());
        assert!(
            cache.authenticate(Some(&key.reveal()), now_ms()).is_ok(),
            "old secret in grace"
        );
        let (newer, _) = ops.rotate(key.id(), None).await.unwrap();
        assert!(
            cache.authenticate(Some(&new.reveal()), now_ms()).is_err(),
            "no grace: old secret refused"
        );

        ops.revoke(key.id()).await.unwrap();
        assert!(cache.authenticate(Some(&newer.reveal()), now_ms()).is_err());
        assert!(matches!(
            ops.revoke(key.id()).await,
            Err(OpsError::Revoked(_))
        ));
        assert!(matches!(
            ops.revoke("nope").await,
            Err(OpsError::NotFound(_))
        ));
        assert!(matches!(
            ops.create(CreateKey::default()).await,
            Err(OpsError::Invalid(_))
        ));

        let actions: Vec<(String, String)> = s
            .list_audit(0, 100)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|e| (e.action, e.outcome))
            .collect();
        let ok = |a: &str| (a.to_string(), "ok".to_string());
        assert_eq!(
            &actions[..4],
            &[
                ok("key.create"),
                ok("key.rotate"),
                ok("key.rotate"),
                ok("key.revoke")
            ]
        );
        assert_eq!(actions[4].0, "key.revoke");
        assert!(actions[4].1.contains("revoked"), "{actions:?}");
        assert_eq!(actions.len(), 7, "failures are audited too: {actions:?}");
    }

    #[tokio::test]
    async fn other_nodes_catch_up_by_syncing() {
        let (_dir, s) = store().await;
        let other_node = KeyCache::new();
        let ops = KeyOps::new(&s, None, "cli");
        let (key, _) = ops
            .create(CreateKey {
                name: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            other_node
                .authenticate(Some(&key.reveal()), now_ms())
                .is_err()
        );
        other_node.sync(&s).await.unwrap();
        assert!(
            other_node
                .authenticate(Some(&key.reveal()), now_ms())
                .is_ok()
        );
        ops.revoke(key.id()).await.unwrap();
        other_node.sync(&s).await.unwrap();
        assert!(
            other_node
                .authenticate(Some(&key.reveal()), now_ms())
                .is_err()
        );
    }
}
