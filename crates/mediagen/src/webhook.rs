//! Completion webhooks, signed per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com>): `webhook-id`, `webhook-timestamp`
//! (Unix seconds) and `webhook-signature` (`v1,` + base64 of
//! HMAC-SHA256(secret, "{id}.{timestamp}.{body}")). A delivery that fails
//! (no answer, a timeout, or a status other than 2xx) is retried with
//! exponential backoff under the same `webhook-id`, re-signed with the
//! time of each attempt, so receivers can drop duplicates.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use tokio::sync::{Semaphore, mpsc};

/// Deliveries waiting to start; beyond this a webhook is dropped (logged).
pub const QUEUE: usize = 1024;
/// Deliveries (with their retries) in progress at once.
const CONCURRENT: usize = 32;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The key webhooks are signed with.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// `whsec_` + base64 of the key, as Standard Webhooks libraries take it
    /// (the prefix is optional).
    pub fn parse(text: &str) -> Result<Secret, String> {
        let b64 = text.trim().strip_prefix("whsec_").unwrap_or(text.trim());
        let key = B64
            .decode(b64)
            .map_err(|_| "a webhook secret is `whsec_` followed by base64".to_string())?;
        if key.len() < 24 {
            return Err(format!(
                "a webhook secret needs at least 24 bytes of key, this one has {}",
                key.len()
            ));
        }
        Ok(Secret(key))
    }

    /// A new random secret, and its `whsec_` text to give receivers.
    pub fn generate() -> Result<(Secret, String), getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok((Secret(key.to_vec()), format!("whsec_{}", B64.encode(key))))
    }

    /// The `webhook-signature` value for this message.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        // An HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// How hard to try a delivery.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each failure.
    pub first_backoff: Duration,
    /// Deadline for one attempt's answer.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 6,
            first_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One message for one receiver.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub id: String,
    pub body: String,
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The sending side: a bounded queue drained by a background task.
#[derive(Clone)]
pub struct Webhooks {
    tx: mpsc::Sender<Delivery>,
}

impl Webhooks {
    /// Starts the sender on the current runtime.
    pub fn start(secret: Secret, retry: Retry) -> Webhooks {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, Arc::new(secret), retry));
        Webhooks { tx }
    }

    /// Queues a delivery; never waits. A full queue drops it, loudly.
    pub fn send(&self, delivery: Delivery) {
        if let Err(e) = self.tx.try_send(delivery) {
            tracing::error!(error = %e, "webhook queue full or closed: delivery dropped");
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Delivery>, secret: Arc<Secret>, retry: Retry) {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(https);
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    while let Some(delivery) = rx.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (client, secret) = (client.clone(), Arc::clone(&secret));
        tokio::spawn(async move {
            deliver(&client, &secret, retry, &delivery).await;
            drop(slot);
        });
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn deliver(client: &HttpClient, secret: &Secret, retry: Retry, d: &Delivery) {
    let mut backoff = retry.first_backoff;
    for attempt in 1..=retry.attempts.max(1) {
        let timestamp = unix_now();
        let req = http::Request::post(&d.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &d.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                secret.sign(&d.id, timestamp, d.body.as_bytes()),
            )
            .body(Full::new(Bytes::from(d.body.clone())));
        let Ok(req) = req else {
            tracing::error!(url = %d.url, "webhook URL is not valid: delivery dropped");
            return;
        };
        match tokio::time::timeout(retry.timeout, client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => {
                tracing::info!(id = %d.id, attempt, "webhook delivered");
                return;
            }
            Ok(Ok(resp)) => {
                tracing::warn!(id = %d.id, status = %resp.status(), attempt, "webhook refused")
            }
            Ok(Err(e)) => tracing::warn!(id = %d.id, error = %e, attempt, "webhook failed"),
            Err(_) => tracing::warn!(id = %d.id, attempt, "webhook timed out"),
        }
        if attempt < retry.attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    tracing::error!(id = %d.id, url = %d.url, attempts = retry.attempts, "webhook gave up");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks reference libraries.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked() {
        assert!(Secret::parse("whsec_not base64!").is_err());
        assert!(
            Secret::parse("whsec_c2hvcnQ=")
                .unwrap_err()
                .contains("24 bytes")
        );
        let (secret, text) = Secret::generate().unwrap();
        assert_eq!(Secret::parse(&text).unwrap().0, secret.0);
        assert_eq!(format!("{secret:?}"), "Secret(..)", "never printed");
    }
}
