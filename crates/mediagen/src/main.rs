//! `mediagen`: the reference service on its own.
//!
//! ```sh
//! mediagen --listen 127.0.0.1:7001                                  # local renderer
//! mediagen --provider-url https://api.openai.com/v1 --provider-key "$OPENAI_API_KEY"
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use mediagen::backend::Local;
use mediagen::provider::{Provider, ProviderConfig};
use mediagen::webhook::Secret;

#[derive(Parser)]
#[command(
    version,
    about = "Images (OpenAI-compatible) and asynchronous videos, from a provider or a local renderer"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: SocketAddr,
    /// An OpenAI-compatible API, `/v1` included; without it pictures are
    /// rendered locally (deterministic, a stand-in for a model).
    #[arg(long, env = "MEDIAGEN_PROVIDER_URL")]
    provider_url: Option<String>,
    #[arg(
        long,
        env = "MEDIAGEN_PROVIDER_KEY",
        hide_env_values = true,
        requires = "provider_url"
    )]
    provider_key: Option<String>,
    #[arg(long, env = "MEDIAGEN_PROVIDER_MODEL", default_value = "gpt-image-1")]
    provider_model: String,
    /// Deadline for one provider call.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    provider_timeout: Duration,
    /// Signs completion webhooks (`whsec_...`); without it `webhook_url`
    /// is refused.
    #[arg(long, env = "MEDIAGEN_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = mediagen::Config {
        webhook_secret: args
            .webhook_secret
            .as_deref()
            .map(Secret::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--webhook-secret: {e}"))?,
        ..Default::default()
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(args, config))
}

async fn serve(args: Args, config: mediagen::Config) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let router = match args.provider_url {
        Some(base_url) => {
            tracing::info!(%base_url, model = %args.provider_model, "pictures from the provider");
            mediagen::router(
                Provider::new(ProviderConfig {
                    base_url,
                    api_key: args.provider_key.unwrap_or_default(),
                    model: args.provider_model,
                    timeout: args.provider_timeout,
                }),
                config,
            )
        }
        None => {
            tracing::info!("pictures from the local renderer");
            mediagen::router(Local::default(), config)
        }
    };
    tracing::info!(listen = %args.listen, "mediagen is up");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the server stopped")
}
