//! `blastdoor serve`: start the listeners, reload on change, stop cleanly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use blastdoor_admin::AdminState;
use blastdoor_config::Config;
use blastdoor_proxy::Gateway;
use blastdoor_telemetry::{AccessLog, Metrics};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn run(path: &Path) -> Result<()> {
    let config =
        blastdoor_config::load(path).map_err(|d| anyhow::anyhow!("invalid config:\n{d}"))?;
    crate::logging::init(&config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.workers)
        .thread_name("blastdoor-worker")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, Some(path.to_path_buf()), None))
}

/// Where the listeners ended up (port 0 resolves to a real port).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
}

/// Runs the gateway until SIGTERM/SIGINT (or `stop`), then drains.
/// `watch` is the config file to reload from; `on_bound` learns the
/// listening addresses.
pub async fn serve(
    config: Config,
    watch: Option<PathBuf>,
    on_bound: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<()> {
    let proxy_listener = bind(config.server.listen, "listen").await?;
    let admin_listener = bind(config.server.admin_listen, "admin_listen").await?;
    let bound = Bound {
        proxy: proxy_listener.local_addr()?,
        admin: admin_listener.local_addr()?,
    };
    let tls = config
        .server
        .tls
        .as_ref()
        .map(blastdoor_proxy::tls::acceptor)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let (access_log, _flush_on_exit) =
        AccessLog::open(&config.log.access).context("cannot open the access log")?;
    let metrics = Arc::new(Metrics::new());
    let tracker = TaskTracker::new();
    let drain = config.server.shutdown_timeout;
    let poll = config.server.reload_poll_interval;
    let gw = Gateway::new(config, Arc::clone(&metrics), access_log, tracker.clone())
        .context("cannot set up upstream clients")?;

    let stop_proxy = CancellationToken::new();
    let stop_rest = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let admin = AdminState {
        metrics,
        ready: Arc::clone(&ready),
    };
    let admin_task = tracker.spawn(blastdoor_admin::serve(
        admin_listener,
        admin,
        stop_rest.clone(),
    ));
    if let Some(path) = watch {
        tracker.spawn(crate::reload::watch(
            path,
            Arc::clone(&gw),
            poll,
            stop_rest.clone(),
        ));
    }
    let proxy_task = tracker.spawn(blastdoor_proxy::server::serve(
        proxy_listener,
        Arc::clone(&gw),
        tls,
        stop_proxy.clone(),
        drain,
    ));
    ready.store(true, Ordering::Relaxed);
    tracing::info!(proxy = %bound.proxy, admin = %bound.admin, "blastdoor listening");
    if let Some(tx) = on_bound {
        let _ = tx.send(bound);
    }

    wait_for_stop_signal().await?;
    tracing::info!(deadline = ?drain, "stopping: no new connections, draining in-flight requests");
    ready.store(false, Ordering::Relaxed);
    stop_proxy.cancel();
    let drained = proxy_task.await.unwrap_or(false);
    if !drained {
        tracing::warn!("drain deadline passed with requests still in flight; closing them");
    }
    stop_rest.cancel();
    gw.stop_background();
    if let Ok(Err(e)) = admin_task.await {
        tracing::warn!(error = %e, "admin listener stopped with an error");
    }
    tracker.close();
    // Tunnels and connections past the deadline are abandoned here.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), tracker.wait()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

async fn wait_for_stop_signal() -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}
