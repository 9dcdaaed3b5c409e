//! The admin listener, on a port separate from the proxy's: health,
//! readiness and Prometheus metrics (open), the `/v1` API (keys, services,
//! usage, budgets, audit, reports) behind the admin token, and the
//! dashboard at `/`, which reads that API with the token it asks for.

mod dashboard;
mod problem;
pub mod v1;

pub use v1::Api;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use blastdoor_telemetry::Metrics;
use blastdoor_types::{ErrorCode, Problem, problem::PROBLEM_JSON};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the admin handlers read.
#[derive(Clone, Debug)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    /// True once the gateway serves traffic; false again while draining.
    pub ready: Arc<AtomicBool>,
    /// The `/v1` API; None serves only the open endpoints.
    pub api: Option<Arc<Api>>,
}

/// Largest admin request body accepted.
const MAX_ADMIN_BODY: usize = 64 * 1024;

pub fn router(state: AdminState) -> Router {
    let v1 = state.api.clone().map(v1::router).unwrap_or_default();
    Router::new()
        .nest("/v1", v1)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(dashboard::router())
        .fallback(not_found)
        .with_state(state)
}

/// Serves the admin API until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    if let Some(api) = &state.api {
        state
            .metrics
            .store_queries
            .set(i64::try_from(api.store.queries()).unwrap_or(i64::MAX));
        state.metrics.clear_budgets();
        for b in api.gateway.budgets.all() {
            state.metrics.budget_remaining(
                b.scope.as_str(),
                &b.target,
                b.remaining() as f64 / 1_000_000.0,
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    let problem = Problem::new(
        ErrorCode::RouteNotFound,
        format!("no admin endpoint at {}", uri.path()),
        "",
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        problem.to_json(),
    )
        .into_response()
}

#[cfg(test)]
#[path = "v1_tests.rs"]
mod v1_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn state(ready: bool) -> AdminState {
        AdminState {
            metrics: Arc::new(Metrics::new()),
            ready: Arc::new(AtomicBool::new(ready)),
            api: None,
        }
    }

    async fn get(state: AdminState, path: &str) -> (StatusCode, String) {
        let resp = router(state)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_and_readiness() {
        assert_eq!(get(state(false), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(state(false), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get(state(true), "/readyz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_in_prometheus_text() {
        let s = state(true);
        s.metrics
            .service("svc", &[], &[])
            .observe(200, None, 0.01, None);
        let (status, body) = get(s, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(
                "blastdoor_requests_total{service=\"svc\",operation=\"\",status_class=\"2xx\"} 1"
            ),
            "{body}"
        );
        assert!(body.trim_end().ends_with("# EOF"));
    }

    #[tokio::test]
    async fn unknown_paths_are_problem_json() {
        let (status, body) = get(state(true), "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("\"code\":\"route_not_found\""), "{body}");
    }
}
