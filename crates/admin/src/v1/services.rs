//! `/v1/services`: the catalog as the running gateway sees it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::Api;

#[derive(Debug, Serialize)]
pub struct ServiceView {
    name: String,
    owner: String,
    route: RouteView,
    public: bool,
    upstreams: Vec<UpstreamView>,
}

#[derive(Debug, Serialize)]
struct RouteView {
    prefix: String,
    host: Option<String>,
}

#[derive(Debug, Serialize)]
struct UpstreamView {
    url: String,
    healthy: bool,
    in_flight: usize,
}

pub async fn list(State(api): State<Arc<Api>>) -> Json<Vec<ServiceView>> {
    let snapshot = api.gateway.snapshot();
    let services = snapshot
        .services
        .iter()
        .map(|svc| ServiceView {
            name: svc.config.name.clone(),
            owner: svc.config.owner.clone(),
            route: RouteView {
                prefix: svc.config.route.prefix.clone(),
                host: svc.config.route.host.clone(),
            },
            public: svc.config.public,
            upstreams: svc
                .endpoints
                .iter()
                .map(|e| UpstreamView {
                    url: e.upstream.url.clone(),
                    healthy: e.is_available(),
                    in_flight: e.in_flight(),
                })
                .collect(),
        })
        .collect();
    Json(services)
}
