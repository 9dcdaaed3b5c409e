//! Budget operations shared by the admin API and the CLI: set, delete,
//! list, and loading the store's budgets into a node's [`Book`].

use blastdoor_store::{
    AuditEntry, AuditStore, BudgetRecord, BudgetScope, BudgetStore, LedgerStore, hour_of, now_ms,
};
use blastdoor_types::Money;
use serde::Serialize;

use crate::alert::usd;
use crate::{Book, Period};

/// A budget as an admin sets it.
#[derive(Debug, Clone)]
pub struct BudgetSpec {
    pub scope: BudgetScope,
    pub target: String,
    pub amount: Money,
    pub period: Period,
    pub hard: bool,
    /// Percentages; empty: 50, 80, 100.
    pub alerts: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    Invalid(String),
    #[error("no {0} budget for {1:?}")]
    NotFound(&'static str, String),
    #[error(transparent)]
    Store(#[from] blastdoor_store::StoreError),
}

/// A budget with its spend, for the API and `budgets list`.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetView {
    pub scope: BudgetScope,
    pub target: String,
    pub amount_usd: String,
    pub period: String,
    pub mode: String,
    pub alerts: Vec<u32>,
    /// Unix milliseconds at which the current period began.
    pub period_start: i64,
    pub spent_usd: String,
    /// Held by requests in flight on this node.
    pub reserved_usd: String,
    pub remaining_usd: String,
    /// Percent of the amount spent.
    pub used_percent: f64,
}

const DEFAULT_ALERTS: [u32; 3] = [50, 80, 100];

pub async fn set<S: BudgetStore + AuditStore + LedgerStore>(
    store: &S,
    book: Option<&Book>,
    actor: &str,
    spec: BudgetSpec,
) -> Result<BudgetView, OpsError> {
    if spec.target.is_empty() || spec.target.len() > 200 {
        return Err(OpsError::Invalid(
            "the budget's target must be 1 to 200 characters".into(),
        ));
    }
    if spec.amount == Money::ZERO {
        return Err(OpsError::Invalid("the amount must be more than $0".into()));
    }
    if spec.alerts.iter().any(|a| *a == 0 || *a > 1000) || spec.alerts.len() > 32 {
        return Err(OpsError::Invalid(
            "alerts are at most 32 percentages from 1 to 1000".into(),
        ));
    }
    let now = now_ms();
    let record = BudgetRecord {
        scope: spec.scope,
        target: spec.target.clone(),
        amount_micros: i64::try_from(spec.amount.micros())
            .map_err(|_| OpsError::Invalid("the amount is too large".into()))?,
        period: spec.period.as_str().to_string(),
        mode: if spec.hard { "hard" } else { "soft" }.to_string(),
        alerts: if spec.alerts.is_empty() {
            DEFAULT_ALERTS.to_vec()
        } else {
            spec.alerts
        },
        created_at: now,
        updated_at: now,
    };
    store.put_budget(&record).await?;
    audit(
        store,
        actor,
        "budget.set",
        &record,
        &format!(
            "{} {} {}",
            usd(record.amount_micros),
            record.period,
            record.mode
        ),
    )
    .await;
    if let Some(book) = book {
        sync(store, book).await?;
    }
    let views = list(store, book).await?;
    views
        .into_iter()
        .find(|v| v.scope == record.scope && v.target == record.target)
        .ok_or_else(|| OpsError::NotFound(record.scope.as_str(), record.target.clone()))
}

pub async fn delete<S: BudgetStore + AuditStore + LedgerStore>(
    store: &S,
    book: Option<&Book>,
    actor: &str,
    scope: BudgetScope,
    target: &str,
) -> Result<(), OpsError> {
    if !store.delete_budget(scope, target).await? {
        return Err(OpsError::NotFound(scope.as_str(), target.to_string()));
    }
    let entry = AuditEntry {
        seq: 0,
        at: now_ms(),
        actor: actor.to_string(),
        action: "budget.delete".into(),
        target: format!("{}:{target}", scope.as_str()),
        outcome: "ok".into(),
        detail: String::new(),
    };
    if let Err(e) = store.append_audit(&entry).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    if let Some(book) = book {
        sync(store, book).await?;
    }
    Ok(())
}

async fn audit<S: AuditStore>(
    store: &S,
    actor: &str,
    action: &str,
    b: &BudgetRecord,
    detail: &str,
) {
    let entry = AuditEntry {
        seq: 0,
        at: now_ms(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: format!("{}:{}", b.scope.as_str(), b.target),
        outcome: "ok".into(),
        detail: detail.to_string(),
    };
    if let Err(e) = store.append_audit(&entry).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}

/// Loads the store's budgets into `book`. Budgets the book already holds
/// unchanged keep their in-memory spend; new or changed ones start from
/// the ledger's spend in their current period.
pub async fn sync<S: BudgetStore + LedgerStore>(store: &S, book: &Book) -> Result<usize, OpsError> {
    let now = now_ms();
    let mut loaded = Vec::new();
    for record in store.list_budgets().await? {
        let spent = if book.holds_unchanged(&record) {
            0 // kept as is: the book ignores this figure
        } else {
            spent_in_period(store, &record, now).await?
        };
        loaded.push((record, spent));
    }
    let n = loaded.len();
    book.replace(loaded, now);
    Ok(n)
}

async fn spent_in_period<S: LedgerStore>(
    store: &S,
    b: &BudgetRecord,
    now: i64,
) -> Result<i64, OpsError> {
    let start = Period::parse(&b.period).map_or(0, |p| p.start(now));
    Ok(store
        .spend_since(b.scope, &b.target, hour_of(start))
        .await?)
}

/// Every budget with its spend: a node's in-memory figures where it holds
/// the budget, else the ledger's.
pub async fn list<S: BudgetStore + LedgerStore>(
    store: &S,
    book: Option<&Book>,
) -> Result<Vec<BudgetView>, OpsError> {
    let now = now_ms();
    let held = book.map(Book::all).unwrap_or_default();
    let mut views = Vec::new();
    for r in store.list_budgets().await? {
        let live = held
            .iter()
            .find(|b| b.scope == r.scope && b.target == r.target);
        let (spent, reserved, period_start) = match live {
            Some(b) => (b.spent(), b.reserved(), b.period_start()),
            None => {
                let start = Period::parse(&r.period).map_or(0, |p| p.start(now));
                (spent_in_period(store, &r, now).await?, 0, start)
            }
        };
        views.push(BudgetView {
            scope: r.scope,
            target: r.target.clone(),
            amount_usd: usd(r.amount_micros),
            period: r.period.clone(),
            mode: r.mode.clone(),
            alerts: r.alerts.clone(),
            period_start,
            spent_usd: usd(spent),
            reserved_usd: usd(reserved),
            remaining_usd: signed_usd(r.amount_micros - spent),
            used_percent: if r.amount_micros > 0 {
                (spent as f64 * 10_000.0 / r.amount_micros as f64).round() / 100.0
            } else {
                0.0
            },
        });
    }
    Ok(views)
}

fn signed_usd(micros: i64) -> String {
    if micros < 0 {
        format!("-{}", usd(-micros))
    } else {
        usd(micros)
    }
}
