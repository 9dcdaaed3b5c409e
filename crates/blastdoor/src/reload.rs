//! Config reload on SIGHUP and on file change (polled: robust against
//! editors that replace files and against network filesystems). A bad new
//! config is refused with its problems logged; the last good one keeps
//! serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use blastdoor_config::Config;
use blastdoor_proxy::Gateway;
use blastdoor_store::{AuditEntry, AuditStore, SqlStore, now_ms};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// What identifies a version of the file cheaply: a rename-based write
/// changes the inode, an in-place edit the times or the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    len: u64,
}

pub fn fingerprint(path: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    Some(Fingerprint {
        dev: m.dev(),
        ino: m.ino(),
        mtime_ns: ns(m.mtime(), m.mtime_nsec()),
        ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        len: m.len(),
    })
}

/// The config file to follow, and the version of it that was loaded.
#[derive(Debug, Clone)]
pub struct Watched {
    pub path: PathBuf,
    /// Taken before the file was read, so a change made while starting up
    /// is not mistaken for the loaded version.
    pub loaded: Option<Fingerprint>,
}

/// Takes over SIGHUP. Called before the listeners accept anything: until
/// then a SIGHUP would still stop the process (its default action).
pub fn listen_for_hangup() -> Option<Signal> {
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reloading on file change only");
            None
        }
    }
}

pub async fn watch(
    file: Watched,
    mut hup: Option<Signal>,
    gw: Arc<Gateway>,
    store: SqlStore,
    poll: Duration,
    stop: CancellationToken,
) {
    let Watched {
        path,
        loaded: mut seen,
    } = file;
    loop {
        let hangup = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hangup => tracing::info!("SIGHUP received, reloading config"),
            _ = tokio::time::sleep(poll) => {
                let now = fingerprint(&path);
                if now == seen || now.is_none() {
                    continue;
                }
                tracing::info!(path = %path.display(), "config file changed, reloading");
            }
        }
        seen = fingerprint(&path);
        reload(&path, &gw, &store).await;
    }
}

async fn reload(path: &Path, gw: &Gateway, store: &SqlStore) {
    let owned = path.to_path_buf();
    // Reading and compiling touch the filesystem: keep them off the workers.
    let loaded = tokio::task::spawn_blocking(move || blastdoor_config::load(&owned)).await;
    let outcome = match loaded {
        Ok(Ok(config)) => match crate::jwks::build(&config.auth).await {
            Ok(jwt) => {
                warn_about_restart_only_changes(&gw.snapshot().config, &config);
                let services = config.services.len();
                gw.reload(config);
                gw.jwt.store(Arc::new(jwt));
                tracing::info!(services, "config reloaded");
                "ok".to_string()
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "new config refused; still serving the last good one");
                "refused: JWKS".to_string()
            }
        },
        Ok(Err(diags)) => {
            tracing::error!(
                problems = diags.len(),
                "new config refused; still serving the last good one:\n{diags}"
            );
            format!("refused: {} problems", diags.len())
        }
        Err(e) => {
            tracing::error!(error = %e, "config reload task failed; still serving the last good one");
            "failed".to_string()
        }
    };
    gw.metrics.reload(outcome == "ok");
    let entry = AuditEntry {
        seq: 0,
        at: now_ms(),
        actor: "gateway".to_string(),
        action: "config.reload".to_string(),
        target: path.display().to_string(),
        outcome,
        detail: String::new(),
    };
    if let Err(e) = store.append_audit(&entry).await {
        tracing::warn!(error = %e, "could not record the reload in the audit log");
    }
}

/// `[server]` (listeners, TLS, workers, limits, pools) and `[log]` are
/// set up at start; a reload cannot move them.
fn warn_about_restart_only_changes(old: &Config, new: &Config) {
    if old.server != new.server || old.log != new.log {
        tracing::warn!("changes to [server] and [log] take effect only after a restart");
    }
}
