//! `/v1/budgets`: list budgets with their spend, set one, delete one.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use blastdoor_budget::Period;
use blastdoor_budget::ops::{self, BudgetSpec, BudgetView, OpsError};
use blastdoor_store::BudgetScope;
use blastdoor_types::Money;
use serde::Deserialize;

use super::Api;
use crate::problem::{ApiError, ApiJson};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBudget {
    /// key | team | service
    scope: String,
    target: String,
    /// Decimal US dollars, e.g. "25.00".
    amount_usd: String,
    /// day | week | month | total
    period: String,
    /// hard | soft
    mode: String,
    #[serde(default)]
    alerts: Vec<u32>,
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Invalid(m) => ApiError::bad_request(m),
            OpsError::NotFound(..) => ApiError::not_found(e.to_string()),
            OpsError::Store(e) => ApiError::from(e),
        }
    }
}

fn scope(s: &str) -> Result<BudgetScope, ApiError> {
    BudgetScope::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!("scope must be key, team or service (got {s:?})"))
    })
}

pub async fn list(State(api): State<Arc<Api>>) -> Result<Json<Vec<BudgetView>>, ApiError> {
    Ok(Json(
        ops::list(&api.store, Some(&api.gateway.budgets)).await?,
    ))
}

pub async fn set(
    State(api): State<Arc<Api>>,
    ApiJson(req): ApiJson<SetBudget>,
) -> Result<(StatusCode, Json<BudgetView>), ApiError> {
    let spec = BudgetSpec {
        scope: scope(&req.scope)?,
        target: req.target,
        amount: Money::parse(&req.amount_usd)
            .map_err(|e| ApiError::bad_request(format!("amount_usd: {e}")))?,
        period: Period::parse(&req.period)
            .ok_or_else(|| ApiError::bad_request("period must be day, week, month or total"))?,
        hard: match req.mode.as_str() {
            "hard" => true,
            "soft" => false,
            _ => return Err(ApiError::bad_request("mode must be hard or soft")),
        },
        alerts: req.alerts,
    };
    let view = ops::set(&api.store, Some(&api.gateway.budgets), "admin-api", spec).await?;
    Ok((StatusCode::OK, Json(view)))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    Path((s, target)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    ops::delete(
        &api.store,
        Some(&api.gateway.budgets),
        "admin-api",
        scope(&s)?,
        &target,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
