//! [`LedgerStore`] and [`BudgetStore`] on the SQL store.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::ledger::hour_of;
use crate::sql::{Backend, SqlStore};
use crate::{
    BudgetRecord, BudgetScope, BudgetStore, EdgeRow, GroupBy, HourRow, LedgerRecord, LedgerStore,
    OperationRow, Result, StoreError, UsageRow,
};

macro_rules! ledger_columns {
    () => {
        "id, at, request_id, trace_id, origin, consumer, key_id, team, service, operation, \
         method, status, error, complete, latency_ms, model, units, cost_micros, unpriced"
    };
}

/// Records per multi-row INSERT (19 parameters each).
const INSERT_ROWS: usize = 50;
/// Rollup rows per multi-row upsert.
const UPSERT_ROWS: usize = 100;

/// Rollup dimensions of pairs: (service, team) and (service, operation);
/// a tab separates the two in the value.
const EDGE_DIM: &str = "edge";
const SERVICE_OPERATION_DIM: &str = "service_operation";
const PAIR_SEPARATOR: char = '\t';

/// One hourly rollup row: a report dimension's value in one hour.
type RollupKey<'a> = (&'static str, Cow<'a, str>, i64);

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

/// `INSERT INTO {table} ({columns}) VALUES (?, ..), (..) {tail}` for
/// `rows` rows. Only placeholders vary: no data is ever spliced in.
///
/// SQLite gets anonymous `?` placeholders: sqlx binds a named one (`$1`)
/// by asking SQLite its name, which scans the statement's list of names,
/// so binding N named parameters costs N squared and dominated the
/// writer's CPU. PostgreSQL only knows `$1`.
fn multi_row_sql(
    backend: Backend,
    table: &str,
    columns: &str,
    per_row: usize,
    rows: usize,
    tail: &str,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..per_row {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => sql.push_str(&format!("${}", r * per_row + c + 1)),
            }
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// The multi-row INSERT of `chunk`'s records, then `tail`. Text is bound
/// borrowed from the records: no copy per field.
fn insert_query<'q>(
    backend: Backend,
    chunk: &'q [LedgerRecord],
    tail: &str,
) -> Query<'q, Any, AnyArguments> {
    let sql = multi_row_sql(backend, "ledger", ledger_columns!(), 19, chunk.len(), tail);
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for r in chunk {
        let units = serde_json::to_string(&r.units).unwrap_or_else(|_| "{}".to_string());
        q = q
            .bind(r.id.as_str())
            .bind(r.at)
            .bind(r.request_id.as_str())
            .bind(r.trace_id.as_str())
            .bind(r.origin.as_str())
            .bind(r.consumer.as_str())
            .bind(r.key_id.as_str())
            .bind(r.team.as_str())
            .bind(r.service.as_str())
            .bind(r.operation.as_str())
            .bind(r.method.as_str())
            .bind(i64::from(r.status))
            .bind(r.error.as_deref())
            .bind(i64::from(r.complete))
            .bind(to_i64(r.latency_ms))
            .bind(r.model.as_deref())
            .bind(units)
            .bind(r.cost_micros)
            .bind(r.unpriced.as_deref());
    }
    q
}

/// Inserts the records, none of which should be stored yet; false (stop,
/// roll back) as soon as one was. Asks only how many rows went in: the
/// store returns no ids, and none are collected.
async fn insert_all_new(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    records: &[LedgerRecord],
) -> Result<bool> {
    for chunk in records.chunks(INSERT_ROWS) {
        let done = insert_query(backend, chunk, "ON CONFLICT (id) DO NOTHING")
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Inserts records not yet stored; returns the ids that were new.
async fn insert_records(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    records: &[LedgerRecord],
) -> Result<std::collections::HashSet<String>> {
    let mut inserted = std::collections::HashSet::new();
    for chunk in records.chunks(INSERT_ROWS) {
        let q = insert_query(backend, chunk, "ON CONFLICT (id) DO NOTHING RETURNING id");
        for row in q.fetch_all(&mut **tx).await? {
            inserted.insert(row.try_get::<String, _>("id")?);
        }
    }
    Ok(inserted)
}

/// Whose usage a record is, in which hour: every rollup row the record
/// adds to follows from these, so records are summed by them first (one
/// lookup per record instead of one per dimension).
type Group<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

impl<'a> Sums<'a> {
    fn add(&mut self, r: &'a LedgerRecord) {
        self.requests += 1;
        self.cost = self.cost.saturating_add(r.cost_micros);
        self.unpriced += i64::from(r.unpriced.is_some());
        for (unit, n) in &r.units {
            *self.units.entry(unit.as_str()).or_default() += to_i64(*n);
        }
    }

    fn merge(&mut self, other: &Sums<'a>) {
        self.requests += other.requests;
        self.cost = self.cost.saturating_add(other.cost);
        self.unpriced += other.unpriced;
        for (unit, n) in &other.units {
            *self.units.entry(unit).or_default() += n;
        }
    }
}

/// Sums new records into one row per (dimension, value, hour).
fn roll_up<'a>(
    records: impl Iterator<Item = &'a LedgerRecord>,
) -> BTreeMap<RollupKey<'a>, Sums<'a>> {
    let mut groups: BTreeMap<Group<'a>, Sums<'a>> = BTreeMap::new();
    for r in records {
        let group = (
            hour_of(r.at),
            r.team.as_str(),
            r.consumer.as_str(),
            r.service.as_str(),
            r.operation.as_str(),
            r.origin.as_str(),
            r.key_id.as_str(),
        );
        groups.entry(group).or_default().add(r);
    }
    let mut rollups: BTreeMap<RollupKey<'a>, Sums<'a>> = BTreeMap::new();
    for ((hour, team, consumer, service, operation, origin, key), sums) in &groups {
        // `edge`: who calls which service (team and service), for the
        // catalog's callers and the dependency map.
        let edge = Cow::Owned(format!("{service}{PAIR_SEPARATOR}{team}"));
        let service_operation = Cow::Owned(format!("{service}{PAIR_SEPARATOR}{operation}"));
        for (dim, value) in [
            ("team", Cow::Borrowed(*team)),
            ("consumer", Cow::Borrowed(*consumer)),
            ("service", Cow::Borrowed(*service)),
            ("operation", Cow::Borrowed(*operation)),
            ("origin", Cow::Borrowed(*origin)),
            ("key", Cow::Borrowed(*key)),
            (EDGE_DIM, edge),
            (SERVICE_OPERATION_DIM, service_operation),
        ] {
            rollups.entry((dim, value, *hour)).or_default().merge(sums);
        }
    }
    rollups
}

async fn add_rollups(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rollups: &BTreeMap<RollupKey<'_>, Sums<'_>>,
) -> Result<()> {
    let rows: Vec<_> = rollups.iter().collect();
    for chunk in rows.chunks(UPSERT_ROWS) {
        let sql = multi_row_sql(
            backend,
            "usage_rollup",
            "dim, value, hour, requests, cost_micros, unpriced_requests",
            6,
            chunk.len(),
            "ON CONFLICT (dim, value, hour) DO UPDATE SET \
             requests = usage_rollup.requests + excluded.requests, \
             cost_micros = usage_rollup.cost_micros + excluded.cost_micros, \
             unpriced_requests = usage_rollup.unpriced_requests + excluded.unpriced_requests",
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for ((dim, value, hour), s) in chunk {
            q = q
                .bind(*dim)
                .bind(value.to_string())
                .bind(*hour)
                .bind(s.requests)
                .bind(s.cost)
                .bind(s.unpriced);
        }
        q.execute(&mut **tx).await?;
    }
    let units: Vec<_> = rollups
        .iter()
        .flat_map(|(k, s)| s.units.iter().map(move |(u, n)| (k, *u, *n)))
        .collect();
    for chunk in units.chunks(UPSERT_ROWS) {
        let sql = multi_row_sql(
            backend,
            "usage_rollup_units",
            "dim, value, hour, unit, amount",
            5,
            chunk.len(),
            "ON CONFLICT (dim, value, hour, unit) DO UPDATE SET \
             amount = usage_rollup_units.amount + excluded.amount",
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for ((dim, value, hour), unit, amount) in chunk {
            q = q
                .bind(*dim)
                .bind(value.to_string())
                .bind(*hour)
                .bind(unit.to_string())
                .bind(*amount);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A pair dimension's rows in a window: (first, second, requests, cost,
/// the last hour with traffic).
async fn pairs(
    store: &SqlStore,
    dim: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(String, String, u64, i64, i64)>> {
    let sql = "SELECT value, CAST(SUM(requests) AS BIGINT) AS requests, \
               CAST(SUM(cost_micros) AS BIGINT) AS cost_micros, CAST(MAX(hour) AS BIGINT) AS last_hour \
               FROM usage_rollup WHERE dim = $1 AND hour >= $2 AND hour < $3 GROUP BY value";
    let rows = sqlx::query(sql)
        .bind(dim)
        .bind(hour_of(from))
        .bind(hour_of(to.saturating_add(3_599_999)))
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            let value: String = row.try_get("value")?;
            let (a, b) = value.split_once(PAIR_SEPARATOR).unwrap_or((&value, ""));
            Ok((
                a.to_string(),
                b.to_string(),
                to_u64(row.try_get("requests")?),
                row.try_get("cost_micros")?,
                row.try_get("last_hour")?,
            ))
        })
        .collect()
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
        // Usually every record is new. Fewer rows going in than records
        // means a replay (the spool read again after a crash, or a batch
        // whose commit's answer was lost): then the batch is stored again,
        // asking the store which ids are new.
        let mut tx = self.pool().begin().await?;
        if insert_all_new(&mut tx, self.backend, batch).await? {
            add_rollups(&mut tx, self.backend, &roll_up(batch.iter())).await?;
            tx.commit().await?;
            return Ok(batch.len());
        }
        tx.rollback().await?;
        let mut tx = self.pool().begin().await?;
        let inserted = insert_records(&mut tx, self.backend, batch).await?;
        // Only new records count: a replayed spool must not count twice.
        let rollups = roll_up(batch.iter().filter(|r| inserted.contains(&r.id)));
        add_rollups(&mut tx, self.backend, &rollups).await?;
        tx.commit().await?;
        Ok(inserted.len())
    }

    async fn usage(&self, group_by: GroupBy, from: i64, to: i64) -> Result<Vec<UsageRow>> {
        let totals = "SELECT value, CAST(SUM(requests) AS BIGINT) AS requests, \
                      CAST(SUM(cost_micros) AS BIGINT) AS cost, \
                      CAST(SUM(unpriced_requests) AS BIGINT) AS unpriced \
                      FROM usage_rollup WHERE dim = $1 AND hour >= $2 AND hour < $3 GROUP BY value";
        let units = "SELECT value, unit, CAST(SUM(amount) AS BIGINT) AS amount \
                     FROM usage_rollup_units WHERE dim = $1 AND hour >= $2 AND hour < $3 GROUP BY value, unit";
        let (from, to) = (hour_of(from), hour_of(to.saturating_add(3_599_999)));
        let mut rows: BTreeMap<String, UsageRow> = BTreeMap::new();
        for row in sqlx::query(totals)
            .bind(group_by.as_str())
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?
        {
            let group: String = row.try_get("value")?;
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
            .bind(group_by.as_str())
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?
        {
            let group: String = row.try_get("value")?;
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

    async fn hourly(&self, group_by: GroupBy, from: i64, to: i64) -> Result<Vec<HourRow>> {
        let sql = "SELECT hour, value, requests, cost_micros FROM usage_rollup \
                   WHERE dim = $1 AND hour >= $2 AND hour < $3 ORDER BY hour, value";
        let rows = sqlx::query(sql)
            .bind(group_by.as_str())
            .bind(hour_of(from))
            .bind(hour_of(to.saturating_add(3_599_999)))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(HourRow {
                    hour: row.try_get("hour")?,
                    group: row.try_get("value")?,
                    requests: to_u64(row.try_get("requests")?),
                    cost_micros: row.try_get("cost_micros")?,
                })
            })
            .collect()
    }

    async fn edges(&self, from: i64, to: i64) -> Result<Vec<EdgeRow>> {
        Ok(pairs(self, EDGE_DIM, from, to)
            .await?
            .into_iter()
            .map(
                |(service, team, requests, cost_micros, last_hour)| EdgeRow {
                    service,
                    team,
                    requests,
                    cost_micros,
                    last_hour,
                },
            )
            .collect())
    }

    async fn operation_traffic(&self, from: i64, to: i64) -> Result<Vec<OperationRow>> {
        Ok(pairs(self, SERVICE_OPERATION_DIM, from, to)
            .await?
            .into_iter()
            .map(
                |(service, operation, requests, cost_micros, last_hour)| OperationRow {
                    service,
                    operation,
                    requests,
                    cost_micros,
                    last_hour,
                },
            )
            .collect())
    }

    async fn spend_since(&self, scope: BudgetScope, target: &str, from: i64) -> Result<i64> {
        let sql = "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_rollup \
                   WHERE dim = $1 AND value = $2 AND hour >= $3";
        let spent: i64 = sqlx::query_scalar(sql)
            .bind(scope.as_str())
            .bind(target)
            .bind(from)
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
