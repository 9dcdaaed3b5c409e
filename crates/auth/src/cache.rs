//! The in-memory key table the proxy checks on every request.
//!
//! Reads are lock-free (an `ArcSwap` of an immutable map); changes copy the
//! map, which is cheap at the rate keys change. The cache follows the store
//! by asking for keys changed since its watermark.

// foldhash: these maps are read on every request; SipHash costs more than
// the rest of the lookup.
use foldhash::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use blastdoor_store::{KeyRecord, KeyStore, StoreError};
use http::HeaderValue;

use crate::key::{self, SecretDigest, constant_time_eq};

/// Changes written by another node with a clock this far behind ours are
/// still picked up: each sync looks back this much before its watermark.
const CLOCK_SKEW_MS: i64 = 60_000;

/// Who a request comes from, once its key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub consumer: String,
    pub team: Option<String>,
    /// `consumer` and `team` as values of the headers sent upstream, made
    /// once per key rather than per request; None where the text cannot
    /// be a header value.
    pub consumer_header: Option<HeaderValue>,
    pub team_header: Option<HeaderValue>,
    services: Vec<String>,
    methods: Vec<String>,
}

impl Caller {
    fn new(
        key_id: String,
        consumer: String,
        team: Option<String>,
        services: Vec<String>,
        methods: Vec<String>,
    ) -> Caller {
        Caller {
            consumer_header: HeaderValue::from_str(&consumer).ok(),
            team_header: team.as_deref().and_then(|t| HeaderValue::from_str(t).ok()),
            key_id,
            consumer,
            team,
            services,
            methods,
        }
    }

    /// Whose per-caller limits apply: the key, or a token's consumer.
    pub fn limit_key(&self) -> &str {
        if self.key_id.starts_with("jwt:") {
            &self.consumer
        } else {
            &self.key_id
        }
    }

    /// A caller vouched for by an identity provider: no key, no scope
    /// restriction beyond the service being non-public.
    pub fn from_token(issuer: &str, consumer: String, team: Option<String>) -> Caller {
        Caller::new(
            format!("jwt:{issuer}"),
            consumer,
            team,
            Vec::new(),
            Vec::new(),
        )
    }

    /// Whether the key's scope includes `service` and `method`.
    pub fn authorize(&self, service: &str, method: &str) -> Result<(), Rejection> {
        if !self.services.is_empty() && !self.services.iter().any(|s| s == service) {
            return Err(Rejection::ServiceNotAllowed);
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
        {
            return Err(Rejection::MethodNotAllowed);
        }
        Ok(())
    }
}

/// Why a credential was refused. The first group means 401, the second 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    Malformed,
    Unknown,
    Revoked,
    Expired,
    ServiceNotAllowed,
    MethodNotAllowed,
}

impl Rejection {
    /// 403 (a valid key used outside its scope) rather than 401.
    pub fn is_forbidden(self) -> bool {
        matches!(
            self,
            Rejection::ServiceNotAllowed | Rejection::MethodNotAllowed
        )
    }

    /// A wrong or made-up key: what a guesser produces. Revoked and expired
    /// keys prove their secret, and a missing key guesses nothing.
    pub fn is_guess(self) -> bool {
        matches!(self, Rejection::Malformed | Rejection::Unknown)
    }

    /// The detail shown to the caller. Unknown keys and wrong secrets read
    /// the same, so the answer tells an attacker nothing.
    pub fn detail(self) -> &'static str {
        match self {
            Rejection::Missing => {
                "an API key is required: send Authorization: Bearer <key> or x-api-key"
            }
            Rejection::Malformed | Rejection::Unknown => "the API key is not valid",
            Rejection::Revoked => "the API key has been revoked",
            Rejection::Expired => "the API key has expired",
            Rejection::ServiceNotAllowed => "the API key is not allowed on this service",
            Rejection::MethodNotAllowed => "the API key is not allowed to use this method",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    /// `None`: the stored hash is not a SHA-256 in hex; nothing matches it.
    secret_hash: Option<SecretDigest>,
    previous_hash: Option<SecretDigest>,
    previous_until: Option<i64>,
    expires_at: Option<i64>,
    revoked: bool,
    /// The record's change time: a record seen again is not re-applied.
    updated_at: i64,
    caller: Arc<Caller>,
}

impl From<&KeyRecord> for Entry {
    fn from(r: &KeyRecord) -> Entry {
        Entry {
            secret_hash: key::digest_from_hex(&r.secret_hash),
            previous_hash: r.previous_hash.as_deref().and_then(key::digest_from_hex),
            previous_until: r.previous_until,
            expires_at: r.expires_at,
            revoked: r.revoked_at.is_some(),
            updated_at: r.updated_at,
            caller: Arc::new(Caller::new(
                r.id.clone(),
                r.name.clone(),
                r.team.clone(),
                r.services.clone(),
                r.methods.clone(),
            )),
        }
    }
}

#[derive(Debug, Default)]
pub struct KeyCache {
    entries: ArcSwap<HashMap<String, Arc<Entry>>>,
    /// Highest `updated_at` applied so far.
    watermark: AtomicI64,
}

impl KeyCache {
    pub fn new() -> KeyCache {
        KeyCache::default()
    }

    pub fn len(&self) -> usize {
        self.entries.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Upserts records (by id). Records no newer than the cached copy are
    /// skipped, and the map is only copied when something changed (syncs
    /// look back a while and see the same records again).
    pub fn apply(&self, records: &[KeyRecord]) {
        let current = self.entries.load();
        // Same change time with other content: two changes in one millisecond.
        let changed = |r: &&KeyRecord| {
            current.get(&r.id).is_none_or(|e| {
                r.updated_at > e.updated_at
                    || (r.updated_at == e.updated_at && **e != Entry::from(*r))
            })
        };
        let records: Vec<&KeyRecord> = records.iter().filter(changed).collect();
        drop(current);
        if records.is_empty() {
            return;
        }
        self.entries.rcu(|current| {
            let mut next = HashMap::clone(current);
            for r in &records {
                next.insert(r.id.clone(), Arc::new(Entry::from(*r)));
            }
            next
        });
        if let Some(max) = records.iter().map(|r| r.updated_at).max() {
            self.watermark.fetch_max(max, Ordering::Relaxed);
        }
    }

    /// Fetches the keys changed since the last sync and applies them;
    /// returns how many records came back.
    pub async fn sync<S: KeyStore>(&self, store: &S) -> Result<usize, StoreError> {
        let since = self
            .watermark
            .load(Ordering::Relaxed)
            .saturating_sub(CLOCK_SKEW_MS);
        let changed = store.keys_changed_since(since).await?;
        self.apply(&changed);
        Ok(changed.len())
    }

    /// Checks a presented key at time `now_ms`.
    pub fn authenticate(
        &self,
        presented: Option<&str>,
        now_ms: i64,
    ) -> Result<Arc<Caller>, Rejection> {
        let presented = presented.ok_or(Rejection::Missing)?;
        let (id, secret) = key::split(presented).map_err(|_| Rejection::Malformed)?;
        let entries = self.entries.load();
        let entry = entries.get(id).ok_or(Rejection::Unknown)?;
        // Hashes are compared, so the cache never holds a secret.
        let hash = key::secret_digest(secret);
        let current = entry
            .secret_hash
            .is_some_and(|stored| constant_time_eq(&hash, &stored));
        let in_grace = entry
            .previous_hash
            .zip(entry.previous_until)
            .is_some_and(|(prev, until)| now_ms < until && constant_time_eq(&hash, &prev));
        if !current && !in_grace {
            return Err(Rejection::Unknown);
        }
        if entry.revoked {
            return Err(Rejection::Revoked);
        }
        if entry.expires_at.is_some_and(|at| now_ms >= at) {
            return Err(Rejection::Expired);
        }
        Ok(Arc::clone(&entry.caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKey;

    fn record(key: &ApiKey, updated_at: i64) -> KeyRecord {
        KeyRecord {
            id: key.id().to_string(),
            secret_hash: key.secret_hash(),
            name: "svc-a".into(),
            team: Some("media".into()),
            services: vec!["imagegen".into()],
            methods: vec![],
            created_at: 0,
            expires_at: Some(10_000),
            revoked_at: None,
            previous_hash: None,
            previous_until: None,
            updated_at,
        }
    }

    #[test]
    fn accepts_valid_keys_and_refuses_the_rest() {
        let cache = KeyCache::new();
        let key = ApiKey::generate().unwrap();
        cache.apply(&[record(&key, 1)]);
        let caller = cache.authenticate(Some(&key.reveal()), 5_000).unwrap();
        assert_eq!(caller.consumer, "svc-a");
        assert_eq!(caller.team.as_deref(), Some("media"));
        assert_eq!(cache.authenticate(None, 0), Err(Rejection::Missing));
        assert_eq!(
            cache.authenticate(Some("Bearer nonsense"), 0),
            Err(Rejection::Malformed)
        );
        let stranger = ApiKey::generate().unwrap();
        assert_eq!(
            cache.authenticate(Some(&stranger.reveal()), 0),
            Err(Rejection::Unknown)
        );
        let wrong_secret = key.rotated().unwrap();
        assert_eq!(
            cache.authenticate(Some(&wrong_secret.reveal()), 0),
            Err(Rejection::Unknown)
        );
        assert_eq!(
            cache.authenticate(Some(&key.reveal()), 10_000),
            Err(Rejection::Expired)
        );
    }

    #[test]
    fn a_stored_hash_that_is_not_hex_sha256_matches_nothing() {
        let cache = KeyCache::new();
        let key = ApiKey::generate().unwrap();
        let mut r = record(&key, 1);
        // The secret itself, or a truncated hash: neither may let it in.
        for stored in [
            key.reveal(),
            key.secret_hash()[..62].to_string(),
            String::new(),
        ] {
            r.secret_hash = stored;
            r.updated_at += 1;
            cache.apply(std::slice::from_ref(&r));
            assert_eq!(
                cache.authenticate(Some(&key.reveal()), 0),
                Err(Rejection::Unknown)
            );
        }
        r.secret_hash = key.secret_hash().to_uppercase();
        r.updated_at += 1;
        cache.apply(&[r]);
        assert!(
            cache.authenticate(Some(&key.reveal()), 0).is_ok(),
            "hex is hex in either case"
        );
    }

    #[test]
    fn scopes() {
        let cache = KeyCache::new();
        let key = ApiKey::generate().unwrap();
        let mut r = record(&key, 1);
        r.methods = vec!["GET".into()];
        cache.apply(&[r]);
        let caller = cache.authenticate(Some(&key.reveal()), 0).unwrap();
        assert_eq!(caller.authorize("imagegen", "get"), Ok(()));
        assert_eq!(
            caller.authorize("chat", "GET"),
            Err(Rejection::ServiceNotAllowed)
        );
        assert_eq!(
            caller.authorize("imagegen", "POST"),
            Err(Rejection::MethodNotAllowed)
        );
        assert!(Rejection::ServiceNotAllowed.is_forbidden());
        assert!(!Rejection::Expired.is_forbidden());
    }

    #[test]
    fn revocation_and_rotation_grace() {
        let cache = KeyCache::new();
        let old = ApiKey::generate().unwrap();
        cache.apply(&[record(&old, 1)]);
        let new = old.rotated().unwrap();
        let mut rotated = record(&new, 2);
        rotated.previous_hash = Some(old.secret_hash());
        rotated.previous_until = Some(3_000);
        cache.apply(&[rotated.clone()]);
        assert!(cache.authenticate(Some(&new.reveal()), 2_000).is_ok());
        assert!(
            cache.authenticate(Some(&old.reveal()), 2_999).is_ok(),
            "old secret within grace"
        );
        assert_eq!(
            cache.authenticate(Some(&old.reveal()), 3_000),
            Err(Rejection::Unknown)
        );
        rotated.revoked_at = Some(4);
        rotated.updated_at = 4;
        cache.apply(&[rotated]);
        assert_eq!(
            cache.authenticate(Some(&new.reveal()), 2_000),
            Err(Rejection::Revoked)
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn seen_records_do_not_copy_the_map_but_same_millisecond_changes_apply() {
        let cache = KeyCache::new();
        let key = ApiKey::generate().unwrap();
        let r = record(&key, 7);
        cache.apply(std::slice::from_ref(&r));
        let before = cache.entries.load_full();
        cache.apply(std::slice::from_ref(&r));
        assert!(
            Arc::ptr_eq(&before, &cache.entries.load_full()),
            "nothing changed, nothing copied"
        );
        let mut revoked = r.clone();
        revoked.revoked_at = Some(7);
        cache.apply(&[revoked]);
        assert_eq!(
            cache.authenticate(Some(&key.reveal()), 0),
            Err(Rejection::Revoked)
        );
    }
}
