//! Pooled keep-alive clients to upstreams: one speaking HTTP/1.1, one
//! HTTP/2 (prior knowledge over cleartext, ALPN over TLS). Built once per
//! process and shared by every config snapshot.

use std::time::Duration;

use blastdoor_config::{Server, UpstreamProtocol};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::RequestBody;

pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

#[derive(Clone, Debug)]
pub struct Clients {
    http1: UpstreamClient,
    http2: UpstreamClient,
}

impl Clients {
    /// Each proxy worker thread has clients of its own, so connection pools
    /// are local to the thread and never contended.
    pub fn new(server: &Server) -> Clients {
        Clients {
            http1: build(server, false),
            http2: build(server, true),
        }
    }

    pub fn get(&self, protocol: UpstreamProtocol) -> &UpstreamClient {
        match protocol {
            UpstreamProtocol::Http1 => &self.http1,
            UpstreamProtocol::H2 => &self.http2,
        }
    }
}

fn connector(server: &Server) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(server.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    http
}

fn build(server: &Server, h2: bool) -> UpstreamClient {
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http();
    let https = if h2 {
        tls.enable_http2().wrap_connector(connector(server))
    } else {
        tls.enable_http1().wrap_connector(connector(server))
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(server.upstream_idle_timeout)
        .pool_max_idle_per_host(server.upstream_pool_size)
        .http1_writev(false)
        .http2_only(h2);
    if h2 {
        builder
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_while_idle(true);
    }
    builder.build(https)
}
