//! JWT issuers' keys: JWKS files read at start and on reload, JWKS URLs
//! fetched at start, on reload and every `refresh_interval`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use blastdoor_auth::JwtVerifier;
use blastdoor_config::{Auth, JwksSource};
use blastdoor_proxy::Gateway;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A verifier with every issuer's keys loaded. A file that cannot be read
/// is an error (the config is refused); a URL that cannot be fetched is
/// logged, and that issuer's tokens are refused until a refresh succeeds.
pub async fn build(auth: &Auth) -> Result<JwtVerifier> {
    let verifier = JwtVerifier::new(&auth.jwt);
    for (i, issuer) in auth.jwt.iter().enumerate() {
        match &issuer.jwks {
            JwksSource::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .with_context(|| format!("cannot read JWKS {}", path.display()))?;
                let n = verifier
                    .load_jwks(i, &text)
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
                tracing::info!(issuer = %issuer.issuer, keys = n, "JWKS loaded");
            }
            JwksSource::Url(url) => fetch_into(&verifier, i, &issuer.issuer, url).await,
        }
    }
    Ok(verifier)
}

async fn fetch_into(verifier: &JwtVerifier, index: usize, issuer: &str, url: &str) {
    match fetch(url)
        .await
        .and_then(|text| verifier.load_jwks(index, &text).map_err(anyhow::Error::msg))
    {
        Ok(n) => tracing::info!(%issuer, keys = n, "JWKS fetched"),
        Err(e) => {
            tracing::warn!(%issuer, %url, error = %format!("{e:#}"), "cannot fetch JWKS; keeping the keys already loaded")
        }
    }
}

async fn fetch(url: &str) -> Result<String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let uri: http::Uri = url.parse().context("invalid JWKS URL")?;
    let fetch = async {
        let resp = client.get(uri).await.context("request failed")?;
        if !resp.status().is_success() {
            return Err(anyhow!("status {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow!("body: {e}"))?;
        String::from_utf8(body.to_bytes().to_vec()).context("JWKS is not UTF-8")
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| anyhow!("timed out"))?
}

/// Fetches JWKS URLs again every `refresh_interval` (the shortest among
/// issuers), into whatever verifier the gateway currently has.
pub async fn refresh_loop(gw: Arc<Gateway>, stop: CancellationToken) {
    loop {
        let config = Arc::clone(&gw.snapshot().config);
        let urls: Vec<(usize, String, String)> = config
            .auth
            .jwt
            .iter()
            .enumerate()
            .filter_map(|(i, j)| match &j.jwks {
                JwksSource::Url(u) => Some((i, j.issuer.clone(), u.clone())),
                JwksSource::File(_) => None,
            })
            .collect();
        let every = config
            .auth
            .jwt
            .iter()
            .map(|j| j.refresh_interval)
            .min()
            .unwrap_or(Duration::from_secs(600));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let verifier = gw.jwt.load_full();
        for (i, issuer, url) in urls {
            fetch_into(&verifier, i, &issuer, &url).await;
        }
    }
}
