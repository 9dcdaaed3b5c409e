//! Optional active health checks: each upstream host of a service with a
//! `health_check` is probed on an interval; a host failing
//! `unhealthy_threshold` probes in a row takes no traffic until it passes
//! `healthy_threshold` in a row. Checks belong to a snapshot and stop when
//! it is replaced.

use std::sync::Arc;

use http::{Request, Uri};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use blastdoor_config::{HealthCheck, UpstreamProtocol};

use crate::body::RequestBody;
use crate::client::Clients;
use crate::endpoint::Endpoint;
use crate::snapshot::Snapshot;

pub fn spawn_checks(snapshot: &Snapshot, clients: &Clients, tracker: &TaskTracker) {
    for svc in &snapshot.services {
        let Some(check) = &svc.config.health_check else {
            continue;
        };
        for endpoint in &svc.endpoints {
            let probe = Probe {
                endpoint: Arc::clone(endpoint),
                check: check.clone(),
                protocol: svc.config.upstream_protocol,
                clients: clients.clone(),
            };
            tracker.spawn(probe.run(snapshot.tasks.clone()));
        }
    }
}

struct Probe {
    endpoint: Arc<Endpoint>,
    check: HealthCheck,
    protocol: UpstreamProtocol,
    clients: Clients,
}

impl Probe {
    async fn run(self, stop: CancellationToken) {
        let mut interval = tokio::time::interval(self.check.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut passes, mut fails) = (0u32, 0u32);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = interval.tick() => {}
            }
            if self.probe_once().await {
                passes += 1;
                fails = 0;
                if passes >= self.check.healthy_threshold {
                    self.endpoint.set_health_passing(true);
                }
            } else {
                fails += 1;
                passes = 0;
                if fails >= self.check.unhealthy_threshold {
                    self.endpoint.set_health_passing(false);
                }
            }
        }
    }

    async fn probe_once(&self) -> bool {
        let up = &self.endpoint.upstream;
        let uri = format!(
            "{}://{}{}{}",
            up.scheme, up.authority, up.base_path, self.check.path
        );
        let Ok(uri) = uri.parse::<Uri>() else {
            return false;
        };
        let mut req = Request::new(RequestBody::empty());
        *req.uri_mut() = uri;
        if self.protocol == UpstreamProtocol::H2 {
            *req.version_mut() = http::Version::HTTP_2;
        }
        let call = self.clients.get(self.protocol).request(req);
        match tokio::time::timeout(self.check.timeout, call).await {
            Ok(Ok(resp)) => resp.status().is_success(),
            _ => false,
        }
    }
}
