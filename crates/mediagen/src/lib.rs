//! mediagen, blastdoor's reference service: the typical small service that
//! wraps an image or video model for the rest of a backend.
//!
//! - `POST /v1/images/generations`: OpenAI's images API (prompt, n, size,
//!   seed, `b64_json`), answering real PNG pictures.
//! - `POST /v1/videos`: an asynchronous job (202); `GET /v1/videos/{id}`
//!   shows its state and, once completed, the video (an animated PNG);
//!   a `webhook_url` is called when it ends, signed per Standard Webhooks.
//! - Every successful answer says what it billed in `usage` (`images`,
//!   `video_seconds`), so a gateway's `json` meter can price it.
//!
//! The contract is `examples/contracts/mediagen.yaml`. Pictures come from a
//! [`backend::Backend`]: the local renderer or an OpenAI-compatible
//! provider.

pub mod backend;
pub mod jobs;
pub mod problem;
pub mod provider;
pub mod render;
pub mod requests;
pub mod webhook;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::jobs::{JobLimits, Jobs};
use crate::problem::Problem;
use crate::requests::VideoOrder;
use crate::webhook::{Delivery, Retry, Secret, Webhooks};

/// How the service runs, whatever the backend.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Signs completion webhooks; without one, `webhook_url` is refused.
    pub webhook_secret: Option<Secret>,
    pub webhook_retry: Retry,
    pub jobs: JobLimits,
}

struct App<B> {
    backend: B,
    jobs: Jobs,
    webhooks: Option<Webhooks>,
}

/// The service's routes. Call inside a Tokio runtime (the webhook sender
/// starts on it).
pub fn router<B: Backend>(backend: B, config: Config) -> Router {
    let webhooks = config
        .webhook_secret
        .map(|secret| Webhooks::start(secret, config.webhook_retry));
    let app = Arc::new(App {
        backend,
        jobs: Jobs::new(config.jobs),
        webhooks,
    });
    Router::new()
        .route("/healthz", get(healthz::<B>))
        .route("/v1/images/generations", post(create_images::<B>))
        .route("/v1/videos", post(create_video::<B>))
        .route("/v1/videos/{id}", get(get_video::<B>))
        .fallback(|| async { Problem::not_found("no such operation") })
        .layer(DefaultBodyLimit::max(requests::MAX_BODY))
        .with_state(app)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The body, or the problem with it (too large is a 413, as problem+json).
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The body is too large",
            )
            .detail(format!("at most {} bytes", requests::MAX_BODY))
        } else {
            Problem::invalid(e.body_text())
        }
    })
}

async fn healthz<B: Backend>(State(app): State<Arc<App<B>>>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({ "status": "ok", "backend": app.backend.name() }),
    )
}

async fn create_images<B: Backend>(
    State(app): State<Arc<App<B>>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let spec = requests::image(&body(raw)?)?;
    let images = app.backend.images(&spec).await.map_err(|e| e.problem())?;
    let data: Vec<Value> = images
        .into_iter()
        .map(|b64| json!({ "b64_json": b64 }))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "created": unix_now(),
            "data": data,
            "usage": { "images": spec.n, "video_seconds": 0 },
        }),
    ))
}

async fn create_video<B: Backend>(
    State(app): State<Arc<App<B>>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let order = requests::video(&body(raw)?)?;
    if order.webhook_url.is_some() && app.webhooks.is_none() {
        return Err(Problem::invalid(
            "`webhook_url` needs the service to have a webhook secret (--webhook-secret)",
        ));
    }
    let (id, progress, created) =
        app.jobs
            .create(order.spec.seconds, order.spec.side, unix_now())?;
    tokio::spawn(render_video(Arc::clone(&app), id, progress, order));
    Ok(json_response(StatusCode::ACCEPTED, &created))
}

/// Renders a job to its end, then tells the caller's webhook.
async fn render_video<B: Backend>(
    app: Arc<App<B>>,
    id: String,
    progress: backend::Progress,
    order: VideoOrder,
) {
    app.jobs.start(&id);
    let outcome = app
        .backend
        .video(&order.spec, progress)
        .await
        .map_err(|e| e.problem());
    if let Err(p) = &outcome {
        tracing::warn!(%id, error = %p.detail, "video failed");
    }
    let Some(resource) = app.jobs.finish(&id, outcome, unix_now()) else {
        return;
    };
    if let (Some(url), Some(webhooks)) = (order.webhook_url, &app.webhooks) {
        let kind = if resource["status"] == "completed" {
            "video.completed"
        } else {
            "video.failed"
        };
        let body = json!({
            "type": kind,
            "timestamp": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            "data": resource,
        });
        webhooks.send(Delivery {
            url,
            id: format!("msg_{}", &id[4..]),
            body: body.to_string(),
        });
    }
}

async fn get_video<B: Backend>(
    State(app): State<Arc<App<B>>>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = app
        .jobs
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("no video job {id:?}")))?;
    Ok(json_response(StatusCode::OK, &job))
}
