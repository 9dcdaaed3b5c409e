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
use blastdoor_budget::Book;
use blastdoor_cluster::{Buckets, Redis, Tallies};
use blastdoor_config::Config;
use blastdoor_ledger::WriterHandle;
use blastdoor_proxy::Gateway;
use blastdoor_store::SqlStore;
use blastdoor_telemetry::otlp::ExporterHandle;
use blastdoor_telemetry::{AccessLog, AccessLogFlush, Metrics};

use crate::reload::Watched;
use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{Signal, SignalKind, signal};
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
    // Signals are taken over before anything listens: until then their
    // default action (stopping at once) would apply.
    let stop_signals = StopSignals::listen()?;
    let watch = watch.map(|file| (file, crate::reload::listen_for_hangup()));
    let store = crate::store::open(&config).await?;
    let listeners = Listeners::bind(&config).await?;
    let bound = listeners.bound;
    let workers = config.server.workers;
    let drain = config.server.shutdown_timeout;
    let running = start(config, store, watch, listeners).await?;
    tracing::info!(proxy = %bound.proxy, admin = %bound.admin, workers, "blastdoor listening");
    if let Some(tx) = on_bound {
        let _ = tx.send(bound);
    }
    stop_signals.wait().await;
    tracing::info!(deadline = ?drain, "stopping: no new connections, draining in-flight requests");
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// The listening sockets, bound before anything else starts.
struct Listeners {
    proxy: Vec<std::net::TcpListener>,
    admin: TcpListener,
    bound: Bound,
}

impl Listeners {
    async fn bind(config: &Config) -> Result<Listeners> {
        let (listen, admin_listen) = (config.server.listen, config.server.admin_listen);
        let proxy = bind_proxy(listen, config.server.workers)
            .with_context(|| format!("cannot listen on {listen} (listen)"))?;
        let admin = TcpListener::bind(admin_listen)
            .await
            .with_context(|| format!("cannot listen on {admin_listen} (admin_listen)"))?;
        let bound = Bound {
            proxy: proxy[0].local_addr()?,
            admin: admin.local_addr()?,
        };
        Ok(Listeners {
            proxy,
            admin,
            bound,
        })
    }
}

/// Everything started, and how to stop it in order.
struct Running {
    gw: Arc<Gateway>,
    store: SqlStore,
    ledger: WriterHandle,
    tracker: TaskTracker,
    ready: Arc<AtomicBool>,
    stop_proxy: CancellationToken,
    stop_rest: CancellationToken,
    workers_drained: Vec<tokio::sync::oneshot::Receiver<bool>>,
    admin_task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Flushes the access log when dropped, after everything else stopped.
    access_log_flush: Option<AccessLogFlush>,
    /// Sends the last spans when stopped.
    span_exporter: Option<ExporterHandle>,
}

/// Loads keys and JWKS, builds the gateway, starts the admin listener, the
/// background tasks and the proxy workers.
async fn start(
    config: Config,
    store: SqlStore,
    watch: Option<(Watched, Option<Signal>)>,
    listeners: Listeners,
) -> Result<Running> {
    let tls = config
        .server
        .tls
        .as_ref()
        .map(blastdoor_proxy::tls::acceptor)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let (access_log, flush_on_exit) =
        AccessLog::open(&config.log.access).context("cannot open the access log")?;
    let keys = Arc::new(KeyCache::new());
    keys.sync(&store)
        .await
        .context("cannot load API keys from the store")?;
    let jwt = crate::jwks::build(&config.auth).await?;
    let (drain, poll) = (
        config.server.shutdown_timeout,
        config.server.reload_poll_interval,
    );
    let key_sync_interval = config.store.key_sync_interval;
    let admin_token = config.server.admin_token.clone();
    let metrics = Arc::new(Metrics::new());
    let (tracer, span_exporter) = match &config.tracing {
        Some(t) => {
            let (tracer, handle) = blastdoor_telemetry::otlp::start(t, metrics.tracing.clone())
                .context("cannot start the span exporter")?;
            tracing::info!(endpoint = %t.endpoint, sample_ratio = t.sample_ratio, "exporting spans over OTLP");
            (Some(tracer), Some(handle))
        }
        None => (None, None),
    };
    let (spool, ledger) = crate::ledger::start(&config, &store, &metrics).await?;
    // After the spool replay, so budgets start from every recorded cost.
    let (alerts_tx, alerts_rx) = tokio::sync::mpsc::channel(crate::alerts::QUEUE);
    let (book, buckets) = match &config.store.redis {
        Some(url) => {
            let redis = Redis::start(
                url,
                config.store.redis_timeout,
                &config.store.redis_prefix,
                metrics.redis_errors.clone(),
            )
            .context("cannot use the redis URL")?;
            (
                Book::new(Some(alerts_tx))
                    .shared_through(Arc::new(Tallies::new(Arc::clone(&redis)))),
                Some(Arc::new(Buckets::new(redis))),
            )
        }
        None => (Book::new(Some(alerts_tx)), None),
    };
    let budgets = Arc::new(book);
    blastdoor_budget::ops::sync(&store, &budgets)
        .await
        .context("cannot load budgets from the store")?;
    let alert_webhook = config.store.alert_webhook.clone();
    let tracker = TaskTracker::new();
    let consumer_label = config.server.metrics_consumer_label;
    let gw = Gateway::new(
        config,
        Arc::clone(&metrics),
        blastdoor_proxy::Signals {
            access_log,
            tracer,
            consumer_label,
        },
        blastdoor_proxy::Usage {
            ledger: Some(spool),
            budgets: Arc::clone(&budgets),
            buckets,
        },
        Arc::clone(&keys),
        tracker.clone(),
    );
    gw.jwt.store(Arc::new(jwt));

    let (stop_proxy, stop_rest) = (CancellationToken::new(), CancellationToken::new());
    let ready = Arc::new(AtomicBool::new(false));
    let api = Api {
        token: admin_token,
        store: store.clone(),
        keys: Arc::clone(&keys),
        gateway: Arc::clone(&gw),
    };
    let admin = AdminState {
        metrics: Arc::clone(&metrics),
        ready: Arc::clone(&ready),
        api: Some(Arc::new(api)),
    };
    let admin_task = tracker.spawn(blastdoor_admin::serve(
        listeners.admin,
        admin,
        stop_rest.clone(),
    ));
    if let Some((file, hangup)) = watch {
        tracker.spawn(crate::reload::watch(
            file,
            hangup,
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
    tracker.spawn(crate::alerts::deliver(
        alerts_rx,
        alert_webhook,
        Arc::clone(&metrics),
    ));
    tracker.spawn(crate::budgets::sync_loop(
        store.clone(),
        budgets,
        key_sync_interval,
        stop_rest.clone(),
    ));
    tracker.spawn(crate::keys::sync_loop(
        store.clone(),
        keys,
        metrics,
        key_sync_interval,
        stop_rest.clone(),
    ));
    let mut workers_drained = Vec::with_capacity(listeners.proxy.len());
    for (i, socket) in listeners.proxy.into_iter().enumerate() {
        let worker = Worker {
            gw: Arc::clone(&gw),
            tls: tls.clone(),
            stop: stop_proxy.clone(),
            drain,
        };
        workers_drained.push(worker.start(i, socket)?);
    }
    ready.store(true, Ordering::Relaxed);
    Ok(Running {
        gw,
        store,
        ledger,
        tracker,
        ready,
        stop_proxy,
        stop_rest,
        workers_drained,
        admin_task,
        access_log_flush: flush_on_exit,
        span_exporter,
    })
}

impl Running {
    /// Not ready, stop accepting, drain the workers up to the deadline,
    /// then stop the admin listener and background tasks.
    async fn stop(self) {
        self.ready.store(false, Ordering::Relaxed);
        self.stop_proxy.cancel();
        let mut all_drained = true;
        for done in self.workers_drained {
            all_drained &= done.await.unwrap_or(false);
        }
        if !all_drained {
            tracing::warn!("drain deadline passed with requests still in flight; closing them");
        }
        self.stop_rest.cancel();
        self.gw.stop_background();
        if let Ok(Err(e)) = self.admin_task.await {
            tracing::warn!(error = %e, "admin listener stopped with an error");
        }
        self.tracker.close();
        // Tunnels and connections past the deadline are abandoned here.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.wait()).await;
        // Every request has settled: the spool is complete, and the
        // reporter makes the last lines and spans before their sinks stop.
        let gw = Arc::clone(&self.gw);
        let _ = tokio::task::spawn_blocking(move || gw.stop_reporting()).await;
        self.ledger.stop(crate::ledger::FLUSH_AT_STOP).await;
        self.store.close().await;
        if let Some(exporter) = self.span_exporter {
            // Joins a thread: off the async workers.
            let _ = tokio::task::spawn_blocking(move || exporter.stop()).await;
        }
        drop(self.access_log_flush);
    }
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

/// SIGTERM and SIGINT (Ctrl-C): a graceful stop.
struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    fn listen() -> Result<StopSignals> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
