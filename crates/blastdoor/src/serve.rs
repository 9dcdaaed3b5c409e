//! `blastdoor serve`: start the listeners, reload on change, stop cleanly.
//!
//! Threads: each proxy worker is a thread with its own single-threaded
//! runtime, its own listening socket (SO_REUSEPORT: the kernel spreads
//! connections) and its own upstream connection pools, so the request path
//! shares nothing mutable between threads. The main thread's runtime runs
//! the admin listener, config reloads, health checks and signal handling.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use blastdoor_admin::{AdminState, Api};
use blastdoor_auth::KeyCache;
use blastdoor_config::Config;
use blastdoor_proxy::Gateway;
use blastdoor_telemetry::{AccessLog, Metrics};

use crate::reload::Watched;
use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pending connections the kernel queues per listening socket.
const LISTEN_BACKLOG: u32 = 4096;

pub fn run(path: &Path) -> Result<()> {
    let watched = Watched {
        path: path.to_path_buf(),
        loaded: crate::reload::fingerprint(path),
    };
    let config =
        blastdoor_config::load(path).map_err(|d| anyhow::anyhow!("invalid config:\n{d}"))?;
    crate::logging::init(&config.log.level);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, Some(watched), None))
}

/// Where the listeners ended up (port 0 resolves to a real port).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
}

/// Runs the gateway until SIGTERM/SIGINT, then drains. `watch` is the
/// config file to reload from; `on_bound` learns the listening addresses.
pub async fn serve(
    config: Config,
    watch: Option<Watched>,
    on_bound: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<()> {
    let store = crate::store::open(&config).await?;
    let workers = config.server.workers;
    let proxy_sockets = bind_proxy(config.server.listen, workers)
        .with_context(|| format!("cannot listen on {} (listen)", config.server.listen))?;
    let admin_listener = TcpListener::bind(config.server.admin_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (admin_listen)",
                config.server.admin_listen
            )
        })?;
    let bound = Bound {
        proxy: proxy_sockets[0].local_addr()?,
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
    let keys = Arc::new(KeyCache::new());
    keys.sync(&store)
        .await
        .context("cannot load API keys from the store")?;
    let key_sync_interval = config.store.key_sync_interval;
    let admin_token = config.server.admin_token.clone();
    let jwt = crate::jwks::build(&config.auth).await?;
    let gw = Gateway::new(
        config,
        Arc::clone(&metrics),
        access_log,
        Arc::clone(&keys),
        tracker.clone(),
    );

    gw.jwt.store(Arc::new(jwt));

    let stop_proxy = CancellationToken::new();
    let stop_rest = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let api = Api {
        token: admin_token,
        store: store.clone(),
        keys: Arc::clone(&keys),
        gateway: Arc::clone(&gw),
    };
    let admin = AdminState {
        metrics,
        ready: Arc::clone(&ready),
        api: Some(Arc::new(api)),
    };
    let admin_task = tracker.spawn(blastdoor_admin::serve(
        admin_listener,
        admin,
        stop_rest.clone(),
    ));
    if let Some(file) = watch {
        tracker.spawn(crate::reload::watch(
            file,
            Arc::clone(&gw),
            store.clone(),
            poll,
            stop_rest.clone(),
        ));
    }
    tracker.spawn(crate::jwks::refresh_loop(
        Arc::clone(&gw),
        stop_rest.clone(),
    ));
    tracker.spawn(crate::keys::sync_loop(
        store.clone(),
        keys,
        Arc::clone(&gw.metrics),
        key_sync_interval,
        stop_rest.clone(),
    ));
    let mut drained = Vec::with_capacity(workers);
    for (i, socket) in proxy_sockets.into_iter().enumerate() {
        let worker = Worker {
            gw: Arc::clone(&gw),
            tls: tls.clone(),
            stop: stop_proxy.clone(),
            drain,
        };
        drained.push(worker.start(i, socket)?);
    }
    ready.store(true, Ordering::Relaxed);
    tracing::info!(proxy = %bound.proxy, admin = %bound.admin, workers, "blastdoor listening");
    if let Some(tx) = on_bound {
        let _ = tx.send(bound);
    }

    wait_for_stop_signal().await?;
    tracing::info!(deadline = ?drain, "stopping: no new connections, draining in-flight requests");
    ready.store(false, Ordering::Relaxed);
    stop_proxy.cancel();
    let mut all_drained = true;
    for done in drained {
        all_drained &= done.await.unwrap_or(false);
    }
    if !all_drained {
        tracing::warn!("drain deadline passed with requests still in flight; closing them");
    }
    stop_rest.cancel();
    gw.stop_background();
    if let Ok(Err(e)) = admin_task.await {
        tracing::warn!(error = %e, "admin listener stopped with an error");
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// One proxy worker thread.
struct Worker {
    gw: Arc<Gateway>,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
    drain: Duration,
}

impl Worker {
    /// Starts the thread; the receiver says whether it drained in time.
    fn start(
        self,
        index: usize,
        socket: std::net::TcpListener,
    ) -> Result<tokio::sync::oneshot::Receiver<bool>> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("blastdoor-proxy-{index}"))
            .spawn(move || {
                let drained = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(self.serve(socket)),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a proxy worker runtime");
                        false
                    }
                };
                let _ = done_tx.send(drained);
            })
            .context("cannot start a proxy worker thread")?;
        Ok(done_rx)
    }

    async fn serve(self, socket: std::net::TcpListener) -> bool {
        match TcpListener::from_std(socket) {
            Ok(listener) => {
                blastdoor_proxy::server::serve(listener, self.gw, self.tls, self.stop, self.drain)
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot register the proxy listener");
                false
            }
        }
    }
}

/// One listening socket per worker on the same address (SO_REUSEPORT);
/// with port 0, the first socket's port is shared by the others.
fn bind_proxy(addr: SocketAddr, workers: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let first = reuseport_listener(addr)?;
    let actual = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..workers {
        sockets.push(reuseport_listener(actual)?);
    }
    Ok(sockets)
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
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
