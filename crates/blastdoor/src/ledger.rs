//! Starting the ledger: open the spool, replay what an earlier run left in
//! it, then keep the writer running until stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use blastdoor_config::Config;
use blastdoor_ledger::{Spool, Writer, WriterHandle, writer::BATCH};
use blastdoor_store::SqlStore;
use blastdoor_telemetry::Metrics;

/// How long a stop waits for the spool to reach the store.
pub const FLUSH_AT_STOP: Duration = Duration::from_secs(10);

pub async fn start(
    config: &Config,
    store: &SqlStore,
    metrics: &Metrics,
) -> Result<(Arc<Spool>, WriterHandle)> {
    let s = &config.store;
    // One shard per proxy worker, one for anything else that settles.
    let spool = Spool::open(
        &s.spool_dir,
        s.spool_max_size,
        config.server.workers + 1,
        BATCH as u64,
    )
    .context("cannot open the ledger spool")?;
    let mut writer = Writer::new(
        Arc::clone(&spool),
        store.clone(),
        s.flush_interval,
        metrics.ledger.clone(),
    );
    if spool.bytes() > 0 {
        tracing::info!(bytes = spool.bytes(), dir = %spool.dir().display(), "replaying the ledger spool left by an earlier run");
        if !writer.drain().await {
            tracing::warn!("the spool could not be replayed yet; the writer keeps trying");
        }
    }
    Ok((spool, writer.spawn()))
}
