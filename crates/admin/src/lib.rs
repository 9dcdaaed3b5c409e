//! The admin listener: health, readiness and Prometheus metrics, on a port
//! separate from the proxy's. The `/v1/*` API arrives with keys and the
//! store; every route added there must sit behind the admin token.

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
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
        s.metrics.service("svc").observe(200, 0.01, None);
        let (status, body) = get(s, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("blastdoor_requests_total{service=\"svc\",status_class=\"2xx\"} 1"),
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
