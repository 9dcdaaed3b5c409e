//! The provider backend: pictures from an OpenAI-compatible images endpoint
//! (`POST {base_url}/images/generations`, `b64_json` results). Videos are its
//! picture for the prompt, animated here (a slow zoom), since the images
//! API has no video.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::backend::{Backend, BackendError, ImageSpec, Progress, Video, VideoSpec};
use crate::render;

/// Largest provider answer read (4 pictures of 1024x1024, base64, fit).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The API's base URL, `/v1` included: `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: String,
    pub model: String,
    /// Deadline for one provider call, answer included.
    pub timeout: Duration,
}

pub struct Provider {
    config: ProviderConfig,
    endpoint: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Provider {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let endpoint = format!(
            "{}/images/generations",
            config.base_url.trim_end_matches('/')
        );
        Provider {
            config,
            endpoint,
            client: Client::builder(TokioExecutor::new()).build(https),
        }
    }

    /// The request body the provider gets. `seed` is not part of the
    /// OpenAI API, so it stays here; `response_format` is sent where the
    /// model takes it (the gpt-image models always answer base64).
    fn body(&self, spec: &ImageSpec) -> Value {
        let mut body = json!({
            "model": self.config.model,
            "prompt": spec.prompt,
            "n": spec.n,
            "size": format!("{0}x{0}", spec.side),
        });
        if !self.config.model.starts_with("gpt-image") {
            body["response_format"] = "b64_json".into();
        }
        body
    }

    /// The side of the still a video starts from: the smallest square the
    /// model makes (the video scales it to its own size).
    fn still_side(&self) -> u32 {
        if self.config.model.starts_with("gpt-image") {
            1024
        } else {
            256
        }
    }

    async fn call(&self, body: Value) -> Result<Value, BackendError> {
        let req = http::Request::post(&self.endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.config.api_key),
            )
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| BackendError::Unreachable(format!("bad provider URL: {e}")))?;
        let timeout = self.config.timeout;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| BackendError::Unreachable(e.to_string()))?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| BackendError::Unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, BackendError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| BackendError::Timeout(timeout))??;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            // OpenAI's error shape, {"error": {"message": ...}}, or a
            // problem's `detail`.
            let message = answer["error"]["message"]
                .as_str()
                .or_else(|| answer["detail"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(BackendError::Provider {
                status: status.as_u16(),
                message,
            });
        }
        Ok(answer)
    }
}

fn provider_error(message: &str) -> BackendError {
    BackendError::Provider {
        status: 200,
        message: message.to_string(),
    }
}

impl Backend for Provider {
    fn name(&self) -> &'static str {
        "provider"
    }

    async fn images(&self, spec: &ImageSpec) -> Result<Vec<String>, BackendError> {
        let answer = self.call(self.body(spec)).await?;
        let images: Vec<String> = answer["data"]
            .as_array()
            .ok_or_else(|| provider_error("the answer has no `data` list"))?
            .iter()
            .map(|d| d["b64_json"].as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| provider_error("a picture came without `b64_json`"))?;
        if images.len() != spec.n as usize {
            return Err(provider_error(&format!(
                "asked for {} pictures, got {}",
                spec.n,
                images.len()
            )));
        }
        Ok(images)
    }

    async fn video(&self, spec: &VideoSpec, progress: Progress) -> Result<Video, BackendError> {
        let still = ImageSpec {
            prompt: spec.prompt.clone(),
            n: 1,
            side: self.still_side(),
            seed: spec.seed,
        };
        let b64 = self
            .images(&still)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| provider_error("no picture"))?;
        progress.store(50, std::sync::atomic::Ordering::Relaxed);
        let png = B64
            .decode(b64.as_bytes())
            .map_err(|_| provider_error("a picture is not valid base64"))?;
        let (side, seconds) = (spec.side, spec.seconds);
        let bytes = tokio::task::spawn_blocking(move || render::animate_still(&png, side, seconds))
            .await
            .map_err(|e| BackendError::Crashed(e.to_string()))??;
        Ok(Video {
            media_type: render::APNG,
            bytes,
        })
    }
}
