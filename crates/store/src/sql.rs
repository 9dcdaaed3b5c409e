//! The SQL store: one implementation of every store trait, on SQLite or
//! PostgreSQL through sqlx's `Any` driver. Queries use `$N` placeholders
//! and types (BIGINT, TEXT) both databases share; only the DDL in
//! migrations differs per backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::migrate;
use crate::{AuditEntry, AuditStore, KeyRecord, KeyStore, NewKey, Result, StoreError};

/// Connections kept open per process.
const MAX_CONNECTIONS: u32 = 8;
/// How long a query waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    pub(crate) backend: Backend,
    /// Queries issued through the store traits, shared by clones: lets a
    /// test prove the request path never queries the store.
    queries: Arc<AtomicU64>,
}

/// The columns of a [`KeyRecord`], as a literal for `concat!` (sqlx takes
/// only static SQL).
macro_rules! key_columns {
    () => {
        "id, secret_hash, name, team, services, methods, created_at, expires_at, \
         revoked_at, previous_hash, previous_until, updated_at"
    };
}

impl SqlStore {
    /// Opens `sqlite://PATH` (created if missing, WAL mode) or
    /// `postgres://...`. Does not migrate: call [`SqlStore::migrate`].
    pub async fn connect(url: &str) -> Result<SqlStore> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (backend, url) = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time; more connections only queue.
            .max_connections(if backend == Backend::Sqlite { 1 } else { MAX_CONNECTIONS })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(StoreError::Connect)?;
        Ok(SqlStore {
            pool,
            backend,
            queries: Arc::default(),
        })
    }

    /// Applies pending migrations; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        migrate::apply(&self.pool, self.backend).await
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Queries made through the store traits so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// The pool, counting one query.
    pub(crate) fn pool(&self) -> &AnyPool {
        self.queries.fetch_add(1, Ordering::Relaxed);
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_string())
}

fn parse_list(s: &str, column: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord> {
    Ok(KeyRecord {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        name: row.try_get("name")?,
        team: row.try_get("team")?,
        services: parse_list(&row.try_get::<String, _>("services")?, "services")?,
        methods: parse_list(&row.try_get::<String, _>("methods")?, "methods")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        previous_hash: row.try_get("previous_hash")?,
        previous_until: row.try_get("previous_until")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl KeyStore for SqlStore {
    async fn insert_key(&self, key: &NewKey) -> Result<()> {
        let sql = "INSERT INTO api_keys (id, secret_hash, name, team, services, methods, created_at, expires_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let result = sqlx::query(sql)
            .bind(&key.id)
            .bind(&key.secret_hash)
            .bind(&key.name)
            .bind(&key.team)
            .bind(json_list(&key.services))
            .bind(json_list(&key.methods))
            .bind(key.created_at)
            .bind(key.expires_at)
            .bind(key.created_at)
            .execute(self.pool())
            .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Duplicate(key.id.clone()))
            }
            other => other.map(|_| ()).map_err(StoreError::from),
        }
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>> {
        let sql = concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let sql = concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys ORDER BY created_at DESC, id"
        );
        let rows = sqlx::query(sql).fetch_all(self.pool()).await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool> {
        let sql = "UPDATE api_keys SET revoked_at = $2, updated_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        let done = sqlx::query(sql)
            .bind(id)
            .bind(at)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_key(
        &self,
        id: &str,
        new_hash: &str,
        previous_until: Option<i64>,
        at: i64,
    ) -> Result<bool> {
        let query = match previous_until {
            Some(until) => sqlx::query(
                "UPDATE api_keys SET previous_hash = secret_hash, previous_until = $3, secret_hash = $2, updated_at = $4 \
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(new_hash)
            .bind(until)
            .bind(at),
            None => sqlx::query(
                "UPDATE api_keys SET previous_hash = NULL, previous_until = NULL, secret_hash = $2, updated_at = $3 \
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(new_hash)
            .bind(at),
        };
        let done = query.execute(self.pool()).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn keys_changed_since(&self, after: i64) -> Result<Vec<KeyRecord>> {
        let sql = concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE updated_at >= $1 ORDER BY updated_at, id"
        );
        let rows = sqlx::query(sql).bind(after).fetch_all(self.pool()).await?;
        rows.iter().map(key_from_row).collect()
    }
}

impl AuditStore for SqlStore {
    async fn append_audit(&self, e: &AuditEntry) -> Result<i64> {
        let sql = "INSERT INTO audit_log (at, actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq";
        let seq: i64 = sqlx::query_scalar(sql)
            .bind(e.at)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.outcome)
            .bind(&e.detail)
            .fetch_one(self.pool())
            .await?;
        Ok(seq)
    }

    async fn list_audit(&self, since: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let sql = "SELECT seq, at, actor, action, target, outcome, detail FROM audit_log WHERE at >= $1 ORDER BY seq DESC LIMIT $2";
        let rows = sqlx::query(sql)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
