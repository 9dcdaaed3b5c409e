//! The admin API under `/v1`. Every route here sits behind the admin token
//! by construction: [`routes`] is the one table the router is built from,
//! and the auth layer wraps all of it. A test walks the same table.

mod audit;
mod budgets;
mod dashboard;
mod keys;
mod services;
pub mod sprawl;
pub mod usage;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post};
use blastdoor_auth::KeyCache;
use blastdoor_auth::key::constant_time_eq;
use blastdoor_config::Secret;
use blastdoor_proxy::Gateway;
use blastdoor_store::SqlStore;
use blastdoor_types::ErrorCode;

use crate::problem::ApiError;

/// What `/v1` handlers work with.
#[derive(Clone)]
pub struct Api {
    pub token: Option<Secret>,
    pub store: SqlStore,
    pub keys: Arc<KeyCache>,
    pub gateway: Arc<Gateway>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Every `/v1` route: (path, method router). The router and the auth test
/// both read this table.
pub fn routes() -> Vec<(&'static str, MethodRouter<Arc<Api>>)> {
    vec![
        ("/keys", get(keys::list).post(keys::create)),
        ("/keys/{id}", get(keys::show)),
        ("/keys/{id}/revoke", post(keys::revoke)),
        ("/keys/{id}/rotate", post(keys::rotate)),
        ("/services", get(services::list)),
        ("/usage", get(usage::get)),
        ("/budgets", get(budgets::list).post(budgets::set)),
        ("/budgets/{scope}/{target}", delete(budgets::delete)),
        ("/audit", get(audit::list)),
        ("/reports/sprawl", get(sprawl::get)),
        ("/dashboard/live", get(dashboard::live)),
        ("/dashboard/spend", get(dashboard::spend)),
        ("/dashboard/graph", get(dashboard::graph)),
    ]
}

/// The `/v1` router, every route behind the admin token.
pub fn router<S: Clone + Send + Sync + 'static>(api: Arc<Api>) -> Router<S> {
    let table = routes()
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(path, route));
    table
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&api),
            require_admin,
        ))
        .with_state(api)
}

/// Micro-dollars from the store as a decimal dollar string (a negative
/// sum, which the ledger never holds, shows as 0).
pub(crate) fn usd(micros: i64) -> String {
    blastdoor_types::Money(u64::try_from(micros).unwrap_or(0)).to_string()
}

/// Checks `Authorization: Bearer <admin_token>` in constant time.
async fn require_admin(
    State(api): State<Arc<Api>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = &api.token else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the admin API is disabled: set server.admin_token",
        ));
    };
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), token.expose().as_bytes()) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "a valid admin token is required (Authorization: Bearer ...)",
        ));
    }
    Ok(next.run(req).await)
}
