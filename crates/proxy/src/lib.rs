//! The proxy: blastdoor's request path, from accepting a connection to
//! settling the request. `pipeline` states the order of the stages.

pub mod auth_limiter;
pub mod authenticate;
pub mod balance;
pub mod body;
pub mod budget;
pub mod client;
pub mod contract;
pub mod ctx;
pub mod endpoint;
pub mod error;
pub mod forward;
pub mod framing;
pub mod headers;
pub mod health;
pub mod limits;
pub mod path;
pub mod pipeline;
pub mod rate_limit;
mod report;
pub mod retry_budget;
pub mod route;
pub mod server;
pub mod settle;
pub mod snapshot;
pub mod spans;
pub mod stream_usage;
pub mod tls;
pub mod upgrade;

use std::sync::Arc;

use arc_swap::ArcSwap;
use blastdoor_auth::{JwtVerifier, KeyCache};
use blastdoor_budget::Book;
use blastdoor_cluster::Buckets;
use blastdoor_config::Config;
use blastdoor_ledger::Spool;
use blastdoor_telemetry::otlp::Tracer;
use blastdoor_telemetry::{AccessLog, Metrics};
use tokio_util::task::TaskTracker;

use crate::auth_limiter::FailureLimiter;
use crate::client::Clients;
use crate::settle::Settler;
use crate::snapshot::Snapshot;

/// Where the gateway records and limits what calls use.
#[derive(Debug, Default)]
pub struct Usage {
    /// The ledger's spool; None: no ledger (tests).
    pub ledger: Option<Arc<Spool>>,
    pub budgets: Arc<Book>,
    /// Rate-limit buckets shared through Redis; None: per node.
    pub buckets: Option<Arc<Buckets>>,
}

/// Where the gateway tells what each request did, besides metrics.
#[derive(Debug)]
pub struct Signals {
    pub access_log: AccessLog,
    /// Spans of sampled requests; None: tracing is off.
    pub tracer: Option<Arc<Tracer>>,
    /// Cost and units metrics carry a `consumer` label (as well as `team`).
    pub consumer_label: bool,
}

/// The running gateway: the current config snapshot and what outlives it.
#[derive(Debug)]
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    /// Clients for background work (health checks); each proxy worker has
    /// its own.
    clients: Clients,
    pub(crate) settler: Settler,
    /// Budgets, checked in memory (or in Redis, shared) at admission.
    pub budgets: Arc<Book>,
    /// Rate-limit buckets shared by the cluster through Redis; None:
    /// every limit holds per node.
    pub(crate) buckets: Option<Arc<Buckets>>,
    pub metrics: Arc<Metrics>,
    /// Where sampled requests' spans go; None: tracing is off.
    pub(crate) tracer: Option<Arc<Tracer>>,
    /// API keys, checked in memory on every request.
    pub keys: Arc<KeyCache>,
    /// JWT issuers and their current keys; replaced on reload.
    pub jwt: ArcSwap<JwtVerifier>,
    pub(crate) limiter: FailureLimiter,
    /// Every background task (connections, tunnels, health checks).
    pub tracker: TaskTracker,
}

impl Gateway {
    pub fn new(
        config: Config,
        metrics: Arc<Metrics>,
        signals: Signals,
        usage: Usage,
        keys: Arc<KeyCache>,
        tracker: TaskTracker,
    ) -> Arc<Gateway> {
        let clients = Clients::new(&config.server);
        let snapshot = Snapshot::build(config, None, &metrics);
        health::spawn_checks(&snapshot, &clients, &tracker);
        Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            clients,
            tracer: signals.tracer.clone(),
            settler: Settler::new(&metrics, signals, usage.ledger, usage.buckets.clone()),
            budgets: usage.budgets,
            buckets: usage.buckets,
            metrics,
            keys,
            jwt: ArcSwap::from_pointee(JwtVerifier::default()),
            limiter: FailureLimiter::default(),
            tracker,
        })
    }

    /// The snapshot new requests use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Publishes a new config. Requests already running keep the snapshot
    /// they started with; the old snapshot's health checks stop.
    pub fn reload(&self, config: Config) {
        let old = self.snapshot();
        let snapshot = Snapshot::build(config, Some(&old), &self.metrics);
        health::spawn_checks(&snapshot, &self.clients, &self.tracker);
        self.snapshot.store(Arc::new(snapshot));
        old.tasks.cancel();
    }

    /// Makes the access-log lines and spans still queued and stops the
    /// reporter thread (blocks until it is done); once every request has
    /// settled.
    pub fn stop_reporting(&self) {
        self.settler.stop_reporting();
    }

    /// Stops background work that belongs to the current snapshot.
    pub fn stop_background(&self) {
        self.snapshot().tasks.cancel();
    }
}
