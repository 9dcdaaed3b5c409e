//! [`LedgerStore`] and [`BudgetStore`] on the SQL store.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::ledger::hour_of;
use crate::sql::SqlStore;
use crate::{
    BudgetRecord, BudgetScope, BudgetStore, GroupBy, LedgerRecord, LedgerStore, Result, StoreError,
    UsageRow,
};

macro_rules! ledger_columns {
    () => {
        "id, at, request_id, trace_id, origin, consumer, key_id, team, service, operation, \
         method, status, error, complete, latency_ms, model, units, cost_micros, unpriced"
    };
}

/// The two report queries (totals, then units) for one grouping column.
macro_rules! usage_sql {
    ($col:literal) => {
        (
            concat!(
                "SELECT ",
                $col,
                " AS grp, CAST(SUM(requests) AS BIGINT) AS requests, \
                 CAST(SUM(cost_micros) AS BIGINT) AS cost, \
                 CAST(SUM(unpriced_requests) AS BIGINT) AS unpriced \
                 FROM usage_hourly WHERE hour >= $1 AND hour < $2 GROUP BY ",
                $col
            ),
            concat!(
                "SELECT ",
                $col,
                " AS grp, unit, CAST(SUM(amount) AS BIGINT) AS amount \
                 FROM usage_hourly_units WHERE hour >= $1 AND hour < $2 GROUP BY ",
                $col,
                ", unit"
            ),
        )
    };
}

/// Everything a rollup row is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RollupKey<'a> {
    hour: i64,
    service: &'a str,
    operation: &'a str,
    team: &'a str,
    consumer: &'a str,
    key_id: &'a str,
    origin: &'a str,
}

#[derive(Debug, Default)]
struct Sums<'a> {
    requests: i64,
    cost: i64,
    unpriced: i64,
    units: BTreeMap<&'a str, i64>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

async fn insert_record(tx: &mut Transaction<'_, Any>, r: &LedgerRecord) -> Result<bool> {
    let sql = concat!(
        "INSERT INTO ledger (",
        ledger_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
         ON CONFLICT (id) DO NOTHING"
    );
    let units = serde_json::to_string(&r.units).unwrap_or_else(|_| "{}".to_string());
    let done = sqlx::query(sql)
        .bind(&r.id)
        .bind(r.at)
        .bind(&r.request_id)
        .bind(&r.trace_id)
        .bind(&r.origin)
        .bind(&r.consumer)
        .bind(&r.key_id)
        .bind(&r.team)
        .bind(&r.service)
        .bind(&r.operation)
        .bind(&r.method)
        .bind(i64::from(r.status))
        .bind(&r.error)
        .bind(i64::from(r.complete))
        .bind(to_i64(r.latency_ms))
        .bind(&r.model)
        .bind(units)
        .bind(r.cost_micros)
        .bind(&r.unpriced)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

async fn add_rollup(tx: &mut Transaction<'_, Any>, k: &RollupKey<'_>, s: &Sums<'_>) -> Result<()> {
    let sql = "INSERT INTO usage_hourly (hour, service, operation, team, consumer, key_id, origin, requests, cost_micros, unpriced_requests) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
               ON CONFLICT (hour, service, operation, team, consumer, key_id, origin) DO UPDATE SET \
               requests = usage_hourly.requests + excluded.requests, \
               cost_micros = usage_hourly.cost_micros + excluded.cost_micros, \
               unpriced_requests = usage_hourly.unpriced_requests + excluded.unpriced_requests";
    sqlx::query(sql)
        .bind(k.hour)
        .bind(k.service)
        .bind(k.operation)
        .bind(k.team)
        .bind(k.consumer)
        .bind(k.key_id)
        .bind(k.origin)
        .bind(s.requests)
        .bind(s.cost)
        .bind(s.unpriced)
        .execute(&mut **tx)
        .await?;
    let sql = "INSERT INTO usage_hourly_units (hour, service, operation, team, consumer, key_id, origin, unit, amount) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
               ON CONFLICT (hour, service, operation, team, consumer, key_id, origin, unit) DO UPDATE SET \
               amount = usage_hourly_units.amount + excluded.amount";
    for (unit, amount) in &s.units {
        sqlx::query(sql)
            .bind(k.hour)
            .bind(k.service)
            .bind(k.operation)
            .bind(k.team)
            .bind(k.consumer)
            .bind(k.key_id)
            .bind(k.origin)
            .bind(*unit)
            .bind(*amount)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn record_from_row(row: &AnyRow) -> Result<LedgerRecord> {
    let units: String = row.try_get("units")?;
    Ok(LedgerRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        request_id: row.try_get("request_id")?,
        trace_id: row.try_get("trace_id")?,
        origin: row.try_get("origin")?,
        consumer: row.try_get("consumer")?,
        key_id: row.try_get("key_id")?,
        team: row.try_get("team")?,
        service: row.try_get("service")?,
        operation: row.try_get("operation")?,
        method: row.try_get("method")?,
        status: u16::try_from(row.try_get::<i64, _>("status")?)
            .map_err(|_| StoreError::Corrupt("ledger.status".into()))?,
        error: row.try_get("error")?,
        complete: row.try_get::<i64, _>("complete")? != 0,
        latency_ms: to_u64(row.try_get("latency_ms")?),
        model: row.try_get("model")?,
        units: serde_json::from_str(&units)
            .map_err(|e| StoreError::Corrupt(format!("ledger.units: {e}")))?,
        cost_micros: row.try_get("cost_micros")?,
        unpriced: row.try_get("unpriced")?,
    })
}

impl LedgerStore for SqlStore {
    async fn append_ledger(&self, batch: &[LedgerRecord]) -> Result<usize> {
        let mut tx = self.pool().begin().await?;
        let mut rollups: BTreeMap<RollupKey<'_>, Sums<'_>> = BTreeMap::new();
        let mut inserted = 0;
        for r in batch {
            if !insert_record(&mut tx, r).await? {
                continue;
            }
            inserted += 1;
            let sums = rollups
                .entry(RollupKey {
                    hour: hour_of(r.at),
                    service: &r.service,
                    operation: &r.operation,
                    team: &r.team,
                    consumer: &r.consumer,
                    key_id: &r.key_id,
                    origin: &r.origin,
                })
                .or_default();
            sums.requests += 1;
            sums.cost = sums.cost.saturating_add(r.cost_micros);
            sums.unpriced += i64::from(r.unpriced.is_some());
            for (unit, n) in &r.units {
                *sums.units.entry(unit).or_default() += to_i64(*n);
            }
        }
        for (key, sums) in &rollups {
            add_rollup(&mut tx, key, sums).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn usage(&self, group_by: GroupBy, from: i64, to: i64) -> Result<Vec<UsageRow>> {
        let (totals, units) = match group_by {
            GroupBy::Team => usage_sql!("team"),
            GroupBy::Consumer => usage_sql!("consumer"),
            GroupBy::Service => usage_sql!("service"),
            GroupBy::Operation => usage_sql!("operation"),
            GroupBy::Origin => usage_sql!("origin"),
            GroupBy::Key => usage_sql!("key_id"),
        };
        let (from, to) = (hour_of(from), hour_of(to.saturating_add(3_599_999)));
        let mut rows: BTreeMap<String, UsageRow> = BTreeMap::new();
        for row in sqlx::query(totals)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?
        {
            let group: String = row.try_get("grp")?;
            rows.insert(
                group.clone(),
                UsageRow {
                    group,
                    requests: to_u64(row.try_get("requests")?),
                    cost_micros: row.try_get("cost")?,
                    unpriced_requests: to_u64(row.try_get("unpriced")?),
                    units: BTreeMap::new(),
                },
            );
        }
        for row in sqlx::query(units)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?
        {
            let group: String = row.try_get("grp")?;
            if let Some(r) = rows.get_mut(&group) {
                r.units
                    .insert(row.try_get("unit")?, to_u64(row.try_get("amount")?));
            }
        }
        let mut rows: Vec<UsageRow> = rows.into_values().collect();
        rows.sort_by(|a, b| {
            b.cost_micros
                .cmp(&a.cost_micros)
                .then(a.group.cmp(&b.group))
        });
        Ok(rows)
    }

    async fn spend_since(&self, scope: BudgetScope, target: &str, from: i64) -> Result<i64> {
        let sql = match scope {
            BudgetScope::Key => {
                "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_hourly WHERE hour >= $1 AND key_id = $2"
            }
            BudgetScope::Team => {
                "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_hourly WHERE hour >= $1 AND team = $2"
            }
            BudgetScope::Service => {
                "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_hourly WHERE hour >= $1 AND service = $2"
            }
        };
        let spent: i64 = sqlx::query_scalar(sql)
            .bind(from)
            .bind(target)
            .fetch_one(self.pool())
            .await?;
        Ok(spent)
    }

    async fn unpriced_models(&self, since: i64) -> Result<Vec<(String, String)>> {
        let sql = "SELECT DISTINCT service, model FROM ledger \
                   WHERE unpriced IS NOT NULL AND model IS NOT NULL AND at >= $1 ORDER BY service, model";
        let rows = sqlx::query(sql).bind(since).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("service")?, r.try_get("model")?)))
            .collect()
    }

    async fn ledger_by_request(&self, request_id: &str) -> Result<Vec<LedgerRecord>> {
        let sql = concat!(
            "SELECT ",
            ledger_columns!(),
            " FROM ledger WHERE request_id = $1 ORDER BY at, id"
        );
        let rows = sqlx::query(sql)
            .bind(request_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn ledger_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
            .fetch_one(self.pool())
            .await?;
        Ok(to_u64(n))
    }
}

fn budget_from_row(row: &AnyRow) -> Result<BudgetRecord> {
    let scope: String = row.try_get("scope")?;
    let alerts: String = row.try_get("alerts")?;
    Ok(BudgetRecord {
        scope: BudgetScope::parse(&scope)
            .ok_or_else(|| StoreError::Corrupt(format!("budgets.scope: {scope:?}")))?,
        target: row.try_get("target")?,
        amount_micros: row.try_get("amount_micros")?,
        period: row.try_get("period")?,
        mode: row.try_get("mode")?,
        alerts: serde_json::from_str(&alerts)
            .map_err(|e| StoreError::Corrupt(format!("budgets.alerts: {e}")))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl BudgetStore for SqlStore {
    async fn put_budget(&self, b: &BudgetRecord) -> Result<()> {
        let sql = "INSERT INTO budgets (scope, target, amount_micros, period, mode, alerts, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                   ON CONFLICT (scope, target) DO UPDATE SET amount_micros = excluded.amount_micros, \
                   period = excluded.period, mode = excluded.mode, alerts = excluded.alerts, \
                   updated_at = excluded.updated_at";
        let alerts = serde_json::to_string(&b.alerts).unwrap_or_else(|_| "[]".to_string());
        sqlx::query(sql)
            .bind(b.scope.as_str())
            .bind(&b.target)
            .bind(b.amount_micros)
            .bind(&b.period)
            .bind(&b.mode)
            .bind(alerts)
            .bind(b.created_at)
            .bind(b.updated_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn list_budgets(&self) -> Result<Vec<BudgetRecord>> {
        let sql = "SELECT scope, target, amount_micros, period, mode, alerts, created_at, updated_at \
                   FROM budgets ORDER BY scope, target";
        let rows = sqlx::query(sql).fetch_all(self.pool()).await?;
        rows.iter().map(budget_from_row).collect()
    }

    async fn delete_budget(&self, scope: BudgetScope, target: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM budgets WHERE scope = $1 AND target = $2")
            .bind(scope.as_str())
            .bind(target)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
