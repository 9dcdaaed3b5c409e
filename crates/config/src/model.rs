//! The validated configuration: typed values, defaults applied.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use blastdoor_contract::Contract;

pub use blastdoor_meter::{JsonPointerUnit, MeterSpec, Pricing};

/// A compiled, validated config file.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    pub server: Server,
    pub store: Store,
    pub log: Log,
    /// Span export over OTLP; None: no spans are made.
    pub tracing: Option<Tracing>,
    pub auth: Auth,
    pub services: Vec<Service>,
}

/// Where and how often the gateway exports its spans (OTLP over HTTP
/// with protobuf bodies).
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    /// Where spans go: for OTLP/HTTP the full URL they are POSTed to (e.g.
    /// `http://127.0.0.1:4318/v1/traces`); for OTLP/gRPC the collector's
    /// URL (e.g. `http://127.0.0.1:4317`), whose path is not used.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// `service.name` of the gateway's spans.
    pub service_name: String,
    /// The fraction of new traces recorded (0 to 1).
    pub sample_ratio: f64,
    /// Follow the caller's sampled flag when it sends a `traceparent`.
    pub parent_based: bool,
    /// Extra request headers for the collector (credentials, say).
    pub headers: Vec<(String, Secret)>,
    /// A batch is sent at least this often.
    pub export_interval: Duration,
    /// A batch the collector has not taken by then is dropped.
    pub export_timeout: Duration,
    /// Finished spans waiting for export; more are dropped and counted.
    pub max_queue: usize,
}

/// How spans travel to the collector (OpenTelemetry's names for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf`: a protobuf body POSTed over HTTP/1.1.
    HttpProtobuf,
    /// `grpc`: the TraceService's Export call over HTTP/2 (prior knowledge
    /// for `http://`, ALPN for `https://`).
    Grpc,
}

/// Callers that authenticate without an API key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Auth {
    pub jwt: Vec<JwtIssuer>,
}

/// An identity provider whose JWTs the gateway accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtIssuer {
    pub issuer: String,
    pub audience: String,
    pub jwks: JwksSource,
    /// The claim naming the consumer (default `sub`).
    pub consumer_claim: String,
    /// The claim naming the team, if any.
    pub team_claim: Option<String>,
    /// Accepted signature algorithms: asymmetric ones only.
    pub algorithms: Vec<String>,
    /// Clock tolerance for `exp` and `nbf`.
    pub leeway: Duration,
    /// How often a `jwks_url` is fetched again.
    pub refresh_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub admin_token: Option<Secret>,
    /// Cost and units metrics carry a `consumer` label: a series per key
    /// (off by default: keys can be many).
    pub metrics_consumer_label: bool,
    /// Proxy worker threads.
    pub workers: usize,
    pub tls: Option<Tls>,
    /// How long a graceful stop waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Largest request head (request line + headers) accepted, in bytes.
    pub max_header_size: usize,
    /// Most header fields accepted in one request.
    pub max_headers: usize,
    /// How long a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// Idle keep-alive connections kept per upstream host.
    pub upstream_pool_size: usize,
    pub upstream_idle_timeout: Duration,
    pub connect_timeout: Duration,
    /// How often the config file is checked for changes.
    pub reload_poll_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone)]
pub struct Store {
    pub url: String,
    pub redis: Option<String>,
    /// Prefix of every Redis key, so clusters can share one Redis.
    pub redis_prefix: String,
    /// How long a request waits on Redis before this node decides alone.
    pub redis_timeout: Duration,
    /// How often each node asks the store for changed keys: the bound on
    /// how long a revoke made elsewhere takes to reach this node.
    pub key_sync_interval: Duration,
    /// Where usage records wait, one file write per settled request,
    /// until the ledger writer has them in the store.
    pub spool_dir: PathBuf,
    /// The most the spool may hold while the store is slow or down;
    /// records beyond it are dropped and counted.
    pub spool_max_size: u64,
    /// How long a record may wait in the spool before the writer flushes.
    pub flush_interval: Duration,
    /// Budget alerts are posted here (JSON), if set.
    pub alert_webhook: Option<String>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &redact_url(&self.url))
            .field("redis", &self.redis.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_timeout", &self.redis_timeout)
            .field("key_sync_interval", &self.key_sync_interval)
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_size", &self.spool_max_size)
            .field("flush_interval", &self.flush_interval)
            .field(
                "alert_webhook",
                &self.alert_webhook.as_deref().map(redact_url),
            )
            .finish()
    }
}

/// A URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let (Some(scheme_end), Some(at)) = (url.find("://"), url.rfind('@')) else {
        return url.to_string();
    };
    if at < scheme_end {
        return url.to_string();
    }
    match url[scheme_end + 3..at].split_once(':') {
        Some((user, _password)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
        None => url.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    Stdout,
    Stderr,
    File(LogFile),
}

/// An access log written to a file, rotated on a schedule or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub rotation: Rotation,
    /// Rotated files kept (oldest deleted first); None keeps them all.
    pub max_files: Option<usize>,
}

/// When a rotated log starts a new file, named `{path}.{date-time}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Never,
    Minutely,
    Hourly,
    Daily,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub access: AccessLog,
    /// A tracing filter directive for diagnostic logs, e.g. "info".
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2: prior knowledge for `http://`, ALPN for `https://`.
    H2,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub owner: String,
    pub route: Route,
    pub upstreams: Vec<Upstream>,
    pub upstream_protocol: UpstreamProtocol,
    /// No key needed. Explicit: the default is to require one.
    pub public: bool,
    /// Deadline for the upstream's response head.
    pub timeout: Duration,
    /// Most requests in flight at once; over it the gateway answers 503.
    pub max_concurrency: usize,
    pub max_request_body: u64,
    pub retries: Retries,
    pub outlier: Outlier,
    pub rate_limit: RateLimit,
    pub health_check: Option<HealthCheck>,
    /// A credential the gateway adds towards the upstream.
    pub upstream_auth: Option<UpstreamAuth>,
    /// Caller headers removed before forwarding, besides `authorization`
    /// and `x-api-key` (always removed). Lower-case.
    pub strip_headers: Vec<String>,
    /// How usage is read from responses.
    pub meter: MeterSpec,
    /// `openai` meter: add `stream_options.include_usage` to streamed
    /// requests that did not ask, so streams report their usage.
    pub include_usage: bool,
    pub pricing: Pricing,
    pub unpriced: Unpriced,
    /// The service's OpenAPI contract, compiled, and what to do with
    /// traffic that breaks it or that it does not describe.
    pub contract: Option<ContractSpec>,
    pub lifecycle: Lifecycle,
    pub description: String,
    pub tags: Vec<String>,
    /// Set when the service is deprecated: what its answers say so with.
    pub deprecation: Option<Deprecation>,
}

/// Where a service is in its life, for the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Experimental,
    Production,
    Deprecated,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Experimental => "experimental",
            Lifecycle::Production => "production",
            Lifecycle::Deprecated => "deprecated",
        }
    }
}

/// A deprecation, as the headers that announce it: `Deprecation`
/// (RFC 9745, a structured-field date), `Sunset` (RFC 8594, an HTTP date)
/// and `Link` to the migration notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// Unix seconds.
    pub since: i64,
    pub sunset: Option<i64>,
    pub link: Option<String>,
}

impl Deprecation {
    /// `@1793318400`
    pub fn deprecation_header(&self) -> String {
        format!("@{}", self.since)
    }

    /// `Wed, 31 Mar 2027 00:00:00 GMT`
    pub fn sunset_header(&self) -> Option<String> {
        let secs = u64::try_from(self.sunset?).ok()?;
        Some(httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + Duration::from_secs(secs),
        ))
    }

    /// `<https://...>; rel="deprecation"`
    pub fn link_header(&self) -> Option<String> {
        self.link
            .as_ref()
            .map(|l| format!("<{l}>; rel=\"deprecation\"; type=\"text/html\""))
    }
}

#[derive(Debug, Clone)]
pub struct ContractSpec {
    pub contract: Arc<Contract>,
    /// Where it was loaded from (reloads read it again).
    pub path: PathBuf,
    pub validate: Validate,
    pub undocumented: Undocumented,
    /// The fraction of responses checked against the contract (0 to 1).
    pub response_sample: f64,
    /// Lint rules `blastdoor check` does not apply to this contract.
    pub lint_disable: Vec<String>,
}

/// What to do with a request that breaks its operation's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validate {
    /// Refuse it: 400 `contract_violation`.
    Enforce,
    /// Forward it, count it and log it.
    Report,
    /// Do not check requests (operations are still matched, for labels).
    Off,
}

/// What to do with a request the contract does not describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undocumented {
    /// Refuse it: 400 `contract_violation`, naming what is undescribed.
    Block,
    /// Forward it, counted as undocumented.
    Report,
}

/// What to do with calls whose usage cannot be priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpriced {
    /// Admit them, flagged in metrics and logs.
    Allow,
    /// Refuse a call whose request names a model without a price (402).
    Reject,
    /// Not set: reject where a hard budget applies to the call (a budget
    /// cannot hold against usage it cannot price), allow elsewhere.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAuth {
    /// Lower-case header name.
    pub header: String,
    pub value: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Starts with '/', no trailing '/' (except the root prefix "/").
    pub prefix: String,
    /// Lower-case host name, without port.
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The URL as written (after interpolation), for logs and metrics.
    pub url: String,
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Base path kept in front of the forwarded path; "" or "/api" (no
    /// trailing slash).
    pub base_path: String,
}

#[derive(Debug, Clone)]
pub struct Retries {
    /// Total tries, the first included (1 disables retries).
    pub attempts: u32,
    /// Retries allowed as a share of requests, e.g. 0.2 = 20%.
    pub budget_ratio: f64,
    /// Retries always allowed per second, whatever the ratio says.
    pub min_per_second: u32,
}

/// Requests and units per minute a service takes, in all and per caller
/// (API key or token subject). None or empty: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub requests_per_minute: Option<u32>,
    pub per_key_requests_per_minute: Option<u32>,
    /// Requests one caller may have in flight at once.
    pub per_key_concurrency: Option<u32>,
    /// (unit, limit): units the meter reports, per minute, for the service.
    pub units_per_minute: Vec<(String, u64)>,
    /// (unit, limit) per caller.
    pub per_key_units_per_minute: Vec<(String, u64)>,
}

#[derive(Debug, Clone)]
pub struct Outlier {
    /// Consecutive failures that eject a host; 0 disables ejection.
    pub consecutive_failures: u32,
    pub base_ejection_time: Duration,
    pub max_ejection_time: Duration,
    pub max_ejected_percent: u32,
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// A secret from the config: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}
