//! Budget alerts leave the request path through a bounded channel; this
//! task counts them and posts each to the webhook, if one is set, retrying
//! with backoff.

use std::sync::Arc;
use std::time::Duration;

use blastdoor_budget::Alert;
use blastdoor_telemetry::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

/// Alerts waiting for delivery; beyond this they are logged only.
pub const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 4;
const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn deliver(
    mut rx: mpsc::Receiver<Alert>,
    webhook: Option<String>,
    metrics: Arc<Metrics>,
) {
    let client = webhook.as_ref().map(|_| client());
    while let Some(alert) = rx.recv().await {
        metrics.budget_alert(alert.scope.as_str(), &alert.target, alert.threshold);
        if let (Some(url), Some(client)) = (&webhook, &client) {
            post(client, url, &alert).await;
        }
    }
}

type WebhookClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client() -> WebhookClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

async fn post(client: &WebhookClient, url: &str, alert: &Alert) {
    let body = serde_json::json!({ "type": "budget.alert", "alert": alert }).to_string();
    let mut backoff = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        let req = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.clone())));
        let Ok(req) = req else {
            tracing::warn!("alert_webhook is not a valid URL");
            return;
        };
        match tokio::time::timeout(TIMEOUT, client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => return,
            Ok(Ok(resp)) => {
                tracing::warn!(status = %resp.status(), attempt, "budget alert webhook refused")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, attempt, "budget alert webhook failed"),
            Err(_) => tracing::warn!(attempt, "budget alert webhook timed out"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    tracing::error!(target = %alert.target, threshold = alert.threshold, "budget alert webhook gave up");
}
