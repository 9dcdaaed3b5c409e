//! API keys: the background sync that keeps this node's key cache in step
//! with the store, and `blastdoor keys create|list|revoke|rotate`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use blastdoor_auth::{CreateKey, KeyCache, KeyOps};
use blastdoor_store::{KeyRecord, SqlStore, now_ms};
use blastdoor_telemetry::Metrics;
use clap::Subcommand;
use tokio_util::sync::CancellationToken;

/// Polls the store for changed keys every `interval` until `stop`.
pub async fn sync_loop(
    store: SqlStore,
    keys: Arc<KeyCache>,
    metrics: Arc<Metrics>,
    interval: Duration,
    stop: CancellationToken,
) {
    // serve() loaded the keys just before: the first sync is one interval away.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let synced = keys.sync(&store).await;
        metrics
            .api_keys
            .set(i64::try_from(keys.len()).unwrap_or(i64::MAX));
        match synced {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("key sync recovered");
            }
            Ok(_) => {}
            // Keys already cached keep working while the store is away;
            // say so once, not every second.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "key sync failed; serving the keys already loaded");
            }
            Err(_) => {}
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (the only time the full key is shown).
    Create {
        /// The consumer: who will call with this key.
        #[arg(long)]
        name: String,
        #[arg(long)]
        team: Option<String>,
        /// Services the key may call (comma-separated); default: all.
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        /// HTTP methods the key may use (comma-separated); default: all.
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// Lifetime, e.g. 30d, 12h; default: no expiry.
        #[arg(long, value_parser = duration_arg)]
        expires: Option<Duration>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id; it stops working within the sync interval everywhere.
    Revoke { id: String },
    /// Give a key a new secret; the old one works for --grace (default: not at all).
    Rotate {
        id: String,
        #[arg(long, value_parser = duration_arg)]
        grace: Option<Duration>,
    },
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    blastdoor_config::parse_duration(s)
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

pub fn command(config_path: &Path, cmd: KeysCommand) -> Result<()> {
    crate::store::with_store(config_path, async |_, store| run(store, cmd).await)
}

async fn run(store: &SqlStore, cmd: KeysCommand) -> Result<()> {
    let actor = actor();
    let ops = KeyOps::new(store, None, actor);
    match cmd {
        KeysCommand::Create {
            name,
            team,
            services,
            methods,
            expires,
        } => {
            let req = CreateKey {
                name,
                team,
                services,
                methods,
                expires_in: expires,
            };
            let (key, record) = ops.create(req).await?;
            println!("{}", key.reveal());
            eprintln!(
                "created key {} for {} (shown once: store it now)",
                record.id, record.name
            );
        }
        KeysCommand::List => print_table(&ops.list().await?),
        KeysCommand::Revoke { id } => {
            let record = ops.revoke(&id).await?;
            println!("revoked key {} ({})", record.id, record.name);
        }
        KeysCommand::Rotate { id, grace } => {
            let (key, record) = ops.rotate(&id, grace).await?;
            println!("{}", key.reveal());
            match record.previous_until {
                Some(until) => eprintln!(
                    "rotated key {}; the old secret works for {}s more",
                    record.id,
                    (until - now_ms()) / 1000
                ),
                None => eprintln!("rotated key {}; the old secret no longer works", record.id),
            }
        }
    }
    Ok(())
}

fn status(k: &KeyRecord, now: i64) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|at| now >= at) {
        "expired"
    } else {
        "active"
    }
}

fn print_table(keys: &[KeyRecord]) {
    let now = now_ms();
    println!(
        "{:<14} {:<24} {:<16} {:<8} {:<24} EXPIRES",
        "ID", "NAME", "TEAM", "STATUS", "SERVICES"
    );
    for k in keys {
        let services = if k.services.is_empty() {
            "*".to_string()
        } else {
            k.services.join(",")
        };
        let expires = k.expires_at.map_or("never".to_string(), |at| {
            format!("in {}s", (at - now) / 1000)
        });
        println!(
            "{:<14} {:<24} {:<16} {:<8} {:<24} {}",
            k.id,
            k.name,
            k.team.as_deref().unwrap_or("-"),
            status(k, now),
            services,
            expires
        );
    }
}
