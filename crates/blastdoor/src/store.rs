//! Opening the store named by `[store] url`, migrated to this binary's
//! schema; and `blastdoor migrate`.

use std::path::Path;

use anyhow::{Context, Result};
use blastdoor_config::{Config, redact_url};
use blastdoor_store::SqlStore;

/// Connects (creating a SQLite file and its folder if missing) and applies
/// pending migrations.
pub async fn open(config: &Config) -> Result<SqlStore> {
    let url = &config.store.url;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .filter(|p| !p.starts_with(":memory:"))
        && let Some(dir) = Path::new(path).parent()
    {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let store = SqlStore::connect(url)
        .await
        .with_context(|| format!("store {}", redact_url(url)))?;
    let applied = store.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(backend = store.backend_name(), ?applied, "store migrated");
    }
    Ok(store)
}

/// Runs a store-touching CLI command: loads the config, opens (and
/// migrates) the store, runs `work`, closes the store.
pub fn with_store<T, F>(config_path: &Path, work: F) -> Result<T>
where
    F: AsyncFnOnce(&Config, &SqlStore) -> Result<T>,
{
    let config =
        blastdoor_config::load(config_path).map_err(|d| anyhow::anyhow!("invalid config:\n{d}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = open(&config).await?;
        let result = work(&config, &store).await;
        store.close().await;
        result
    })
}

/// `blastdoor migrate --config FILE`.
pub fn migrate_command(path: &Path) -> Result<()> {
    with_store(path, async |config, store| {
        let url = redact_url(&config.store.url);
        println!(
            "store {url} ({}) is at the current schema",
            store.backend_name()
        );
        Ok(())
    })
}
