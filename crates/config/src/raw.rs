//! The config file as written: serde structs that keep the source span of
//! every value `compile` may complain about. Unknown keys are rejected.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<S<String>>,
    pub admin_listen: Option<S<String>>,
    pub admin_token: Option<S<String>>,
    /// Cost and units metrics by consumer too (one series per key).
    pub metrics_consumer_label: Option<bool>,
    pub workers: Option<S<i64>>,
    pub tls: Option<RawTls>,
    pub shutdown_timeout: Option<S<String>>,
    pub max_header_size: Option<S<String>>,
    pub max_headers: Option<S<i64>>,
    pub header_read_timeout: Option<S<String>>,
    pub upstream_pool_size: Option<S<i64>>,
    pub upstream_idle_timeout: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub reload_poll_interval: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: S<String>,
    pub key: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<S<String>>,
    pub redis: Option<S<String>>,
    pub redis_timeout: Option<S<String>>,
    pub redis_prefix: Option<S<String>>,
    pub key_sync_interval: Option<S<String>>,
    pub spool_dir: Option<S<String>>,
    pub spool_max_size: Option<S<String>>,
    pub flush_interval: Option<S<String>>,
    pub alert_webhook: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// "stdout", "stderr", "off", or a file path.
    pub access: Option<S<String>>,
    /// never | minutely | hourly | daily (a file access log only).
    pub access_rotation: Option<S<String>>,
    /// Rotated access-log files kept.
    pub access_max_files: Option<S<i64>>,
    pub level: Option<S<String>>,
}

/// `[tracing]`: spans exported over OTLP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    pub otlp_endpoint: Option<S<String>>,
    pub otlp_protocol: Option<S<String>>,
    pub service_name: Option<S<String>>,
    pub sample_ratio: Option<S<f64>>,
    pub parent_based: Option<bool>,
    pub headers: Option<std::collections::BTreeMap<String, S<String>>>,
    pub export_interval: Option<S<String>>,
    pub export_timeout: Option<S<String>>,
    pub max_queue: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: S<String>,
    pub owner: Option<S<String>>,
    pub route: S<RawRoute>,
    pub upstreams: S<Vec<S<String>>>,
    pub upstream_protocol: Option<S<String>>,
    pub public: Option<bool>,
    pub timeout: Option<S<String>>,
    pub max_concurrency: Option<S<i64>>,
    pub max_request_body: Option<S<String>>,
    pub retries: Option<RawRetries>,
    pub outlier: Option<RawOutlier>,
    pub rate_limit: Option<RawRateLimit>,
    pub health_check: Option<RawHealthCheck>,
    pub upstream_auth: Option<RawUpstreamAuth>,
    pub meter: Option<S<String>>,
    pub include_usage: Option<bool>,
    pub unpriced: Option<S<String>>,
    pub price: Option<RawPrice>,
    pub strip_headers: Option<S<Vec<S<String>>>>,
    pub contract: Option<S<String>>,
    pub validate: Option<S<String>>,
    pub undocumented: Option<S<String>>,
    pub response_sample: Option<S<f64>>,
    pub lint_disable: Option<Vec<S<String>>>,
    pub lifecycle: Option<S<String>>,
    pub description: Option<S<String>>,
    pub tags: Option<Vec<S<String>>>,
    pub deprecation: Option<RawDeprecation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeprecation {
    /// A date, "2026-11-01": when the service was (or will be) deprecated.
    pub since: S<String>,
    /// A date after which it may stop answering.
    pub sunset: Option<S<String>>,
    /// Where callers read how to move off it.
    pub link: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub per_request: Option<S<String>>,
    /// What admission reserves against budgets before the cost is known.
    pub reserve: Option<S<String>>,
    pub units: Option<Vec<RawUnitPrice>>,
    pub models: Option<BTreeMap<String, BTreeMap<String, S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUnitPrice {
    pub name: S<String>,
    pub price: S<String>,
    /// `json` meter: a JSON pointer; `header` meter: `header:NAME`.
    pub from: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamAuth {
    pub header: S<String>,
    pub value: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub prefix: S<String>,
    pub host: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    pub attempts: Option<S<i64>>,
    pub budget_ratio: Option<S<f64>>,
    pub min_per_second: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub requests_per_minute: Option<S<i64>>,
    pub per_key_requests_per_minute: Option<S<i64>>,
    pub per_key_concurrency: Option<S<i64>>,
    /// Units (as the meter names them) per minute, for the whole service.
    pub units_per_minute: Option<BTreeMap<String, S<i64>>>,
    /// Units per minute per caller.
    pub per_key_units_per_minute: Option<BTreeMap<String, S<i64>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutlier {
    pub consecutive_failures: Option<S<i64>>,
    pub base_ejection_time: Option<S<String>>,
    pub max_ejection_time: Option<S<String>>,
    pub max_ejected_percent: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub path: S<String>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub healthy_threshold: Option<S<i64>>,
    pub unhealthy_threshold: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub jwt: Option<Vec<RawJwt>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub issuer: S<String>,
    pub audience: S<String>,
    pub jwks_file: Option<S<String>>,
    pub jwks_url: Option<S<String>>,
    pub consumer_claim: Option<S<String>>,
    pub team_claim: Option<S<String>>,
    pub algorithms: Option<S<Vec<S<String>>>>,
    pub leeway: Option<S<String>>,
    pub refresh_interval: Option<S<String>>,
}

/// The whole document, each section deserialized on its own so one bad
/// section does not hide problems in the others.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub server: RawServer,
    pub server_span: Option<std::ops::Range<usize>>,
    pub store: RawStore,
    pub log: RawLog,
    pub tracing: Option<RawTracing>,
    pub tracing_span: Option<std::ops::Range<usize>>,
    pub auth: RawAuth,
    pub services: Vec<RawService>,
}
