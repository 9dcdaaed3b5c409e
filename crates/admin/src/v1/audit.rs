//! `/v1/audit`: the log of admin actions, newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use blastdoor_store::{AuditEntry, AuditStore};
use serde::{Deserialize, Serialize};

use super::Api;
use crate::problem::ApiError;

/// Most entries one call returns.
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Unix milliseconds; default: everything.
    since: Option<i64>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct AuditView {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    outcome: String,
}

pub async fn list(
    State(api): State<Arc<Api>>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let limit = q.limit.unwrap_or(100).min(MAX_LIMIT);
    let entries = api.store.list_audit(q.since.unwrap_or(0), limit).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e: AuditEntry| AuditView {
                seq: e.seq,
                at: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                outcome: e.outcome,
            })
            .collect(),
    ))
}
