//! Versioned schema migrations, one SQL file per backend and version,
//! applied in order on start and by `blastdoor migrate`. Each runs in a
//! transaction together with its bookkeeping row, so a failed migration
//! leaves the schema as it was.

use sqlx::AnyPool;

use crate::sql::Backend;
use crate::{Result, StoreError, now_ms};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration this binary knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "keys_and_audit",
        sqlite: include_str!("../migrations/sqlite/0001_keys_and_audit.sql"),
        postgres: include_str!("../migrations/postgres/0001_keys_and_audit.sql"),
    },
    Migration {
        version: 2,
        name: "ledger_and_budgets",
        sqlite: include_str!("../migrations/sqlite/0002_ledger_and_budgets.sql"),
        postgres: include_str!("../migrations/postgres/0002_ledger_and_budgets.sql"),
    },
    Migration {
        version: 3,
        name: "lean_ledger_indexes",
        sqlite: include_str!("../migrations/sqlite/0003_lean_ledger_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0003_lean_ledger_indexes.sql"),
    },
];

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS blastdoor_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Applies the migrations not yet applied; returns their versions.
pub(crate) async fn apply(pool: &AnyPool, backend: Backend) -> Result<Vec<i64>> {
    sqlx::raw_sql(BOOKKEEPING).execute(pool).await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let mut tx = pool.begin().await?;
        if backend == Backend::Postgres {
            // Replicas starting together: one migrates, the others wait and
            // then find the work done.
            sqlx::raw_sql("LOCK TABLE blastdoor_migrations IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let current: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM blastdoor_migrations")
                .fetch_one(&mut *tx)
                .await?;
        let current = current.unwrap_or(0);
        if current > known {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        if m.version <= current {
            continue;
        }
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let fail = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
        sqlx::query(
            "INSERT INTO blastdoor_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "store migration applied"
        );
        applied.push(m.version);
    }
    Ok(applied)
}
