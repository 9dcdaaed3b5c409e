//! Config reload on SIGHUP and on file change (polled: robust against
//! editors that replace files and against network filesystems). A bad new
//! config is refused with its problems logged; the last good one keeps
//! serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use blastdoor_config::Config;
use blastdoor_proxy::Gateway;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// What identifies a version of the file cheaply.
fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

pub async fn watch(path: PathBuf, gw: Arc<Gateway>, poll: Duration, stop: CancellationToken) {
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload on file change only");
            return poll_only(path, gw, poll, stop).await;
        }
    };
    let mut seen = fingerprint(&path);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hup.recv() => tracing::info!("SIGHUP received, reloading config"),
            _ = tokio::time::sleep(poll) => {
                let now = fingerprint(&path);
                if now == seen || now.is_none() {
                    continue;
                }
                tracing::info!(path = %path.display(), "config file changed, reloading");
            }
        }
        seen = fingerprint(&path);
        reload(&path, &gw).await;
    }
}

async fn poll_only(path: PathBuf, gw: Arc<Gateway>, poll: Duration, stop: CancellationToken) {
    let mut seen = fingerprint(&path);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        let now = fingerprint(&path);
        if now != seen && now.is_some() {
            seen = now;
            reload(&path, &gw).await;
        }
    }
}

async fn reload(path: &Path, gw: &Gateway) {
    let owned = path.to_path_buf();
    // Reading and compiling touch the filesystem: keep them off the workers.
    let loaded = tokio::task::spawn_blocking(move || blastdoor_config::load(&owned)).await;
    match loaded {
        Ok(Ok(config)) => {
            warn_about_restart_only_changes(&gw.snapshot().config, &config);
            let services = config.services.len();
            gw.reload(config);
            gw.metrics.reload(true);
            tracing::info!(services, "config reloaded");
        }
        Ok(Err(diags)) => {
            gw.metrics.reload(false);
            tracing::error!(
                problems = diags.len(),
                "new config refused; still serving the last good one:\n{diags}"
            );
        }
        Err(e) => {
            gw.metrics.reload(false);
            tracing::error!(error = %e, "config reload task failed; still serving the last good one");
        }
    }
}

/// `[server]` (listeners, TLS, workers, limits, pools) and `[log]` are
/// set up at start; a reload cannot move them.
fn warn_about_restart_only_changes(old: &Config, new: &Config) {
    if old.server != new.server || old.log != new.log {
        tracing::warn!("changes to [server] and [log] take effect only after a restart");
    }
}
