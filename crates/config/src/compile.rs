//! [`RawConfig`] to [`Config`]: interpolation, units, defaults and checks.
//! Every problem is recorded; compilation fails if there is at least one.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::interpolate::interpolate;
use crate::model::*;
use crate::raw::*;
use crate::units::{parse_duration, parse_size};

pub fn compile(
    path: &Path,
    text: &str,
    raw: RawConfig,
    earlier: Diagnostics,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    let mut cx = Cx {
        path,
        text,
        env,
        diags: earlier,
    };
    let server = cx.server(&raw.server);
    let store = cx.store(&raw.store);
    let log = cx.log(&raw.log);
    let tracing = cx.tracing(raw.tracing.as_ref(), raw.tracing_span.clone());
    let auth = cx.auth(&raw.auth);
    let services = cx.services(&raw.services);
    if !cx.diags.is_empty() {
        cx.diags.0.sort_by_key(|d| (d.line, d.column));
        return Err(cx.diags);
    }
    Ok(Config {
        source: path.to_path_buf(),
        server,
        store,
        log,
        tracing,
        auth,
        services,
    })
}

struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    diags: Diagnostics,
}

impl Cx<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::at(self.path, self.text, span, message));
    }

    /// The string with `${VAR}` resolved, or None after recording why not.
    fn string(&mut self, v: &S<String>) -> Option<String> {
        match interpolate(v.get_ref(), self.env) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(v.span(), e);
                None
            }
        }
    }

    fn duration(&mut self, v: &Option<S<String>>, default: Duration, what: &str) -> Duration {
        let Some(v) = v else { return default };
        let parsed = self.string(v).map(|s| parse_duration(&s));
        match parsed {
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                self.error(v.span(), format!("{what} must be greater than zero"));
                default
            }
            Some(Err(e)) => {
                self.error(v.span(), format!("{what}: {e}"));
                default
            }
            None => default,
        }
    }

    fn size(&mut self, v: &Option<S<String>>, default: u64, what: &str) -> u64 {
        let Some(v) = v else { return default };
        match self.string(v).map(|s| parse_size(&s)) {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                self.error(v.span(), format!("{what}: {e}"));
                default
            }
            None => default,
        }
    }

    fn int(&mut self, v: &Option<S<i64>>, default: u64, range: Range<u64>, what: &str) -> u64 {
        let Some(v) = v else { return default };
        match u64::try_from(*v.get_ref()) {
            Ok(n) if range.contains(&n) => n,
            _ => {
                let (lo, hi) = (range.start, range.end - 1);
                self.error(v.span(), format!("{what} must be between {lo} and {hi}"));
                default
            }
        }
    }

    fn addr(&mut self, v: &Option<S<String>>, default: &str, what: &str) -> SocketAddr {
        let fallback = SocketAddr::from(([127, 0, 0, 1], 0));
        let Some(v) = v else {
            return default.parse().unwrap_or(fallback);
        };
        let Some(s) = self.string(v) else {
            return fallback;
        };
        match s.parse() {
            Ok(a) => a,
            Err(_) => {
                self.error(
                    v.span(),
                    format!("{what} {s:?} is not an address like \"127.0.0.1:8080\""),
                );
                fallback
            }
        }
    }

    /// A path relative to the config file's folder.
    fn file_path(&mut self, v: &S<String>) -> PathBuf {
        let s = self.string(v).unwrap_or_default();
        let base = self.path.parent().unwrap_or(Path::new("."));
        base.join(s)
    }

    fn server(&mut self, raw: &RawServer) -> Server {
        let listen = self.addr(&raw.listen, "127.0.0.1:8080", "listen");
        let admin_listen = self.addr(&raw.admin_listen, "127.0.0.1:9090", "admin_listen");
        if let Some(a) = &raw.admin_listen
            && listen == admin_listen
            && listen.port() != 0
        {
            self.error(a.span(), "admin_listen must differ from listen");
        }
        let admin_token = raw.admin_token.as_ref().and_then(|t| {
            let s = self.string(t)?;
            if s.len() < 16 {
                self.error(t.span(), "admin_token must be at least 16 characters");
            }
            Some(Secret::new(s))
        });
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let tls = raw.tls.as_ref().map(|t| Tls {
            cert: self.file_path(&t.cert),
            key: self.file_path(&t.key),
        });
        Server {
            listen,
            admin_listen,
            admin_token,
            metrics_consumer_label: raw.metrics_consumer_label.unwrap_or(false),
            workers: self.int(&raw.workers, cores, 1..257, "workers") as usize,
            tls,
            shutdown_timeout: self.duration(
                &raw.shutdown_timeout,
                Duration::from_secs(30),
                "shutdown_timeout",
            ),
            max_header_size: self
                .size(&raw.max_header_size, 64 * 1024, "max_header_size")
                .clamp(8192, 1 << 24) as usize,
            max_headers: self.int(&raw.max_headers, 100, 1..10_001, "max_headers") as usize,
            header_read_timeout: self.duration(
                &raw.header_read_timeout,
                Duration::from_secs(10),
                "header_read_timeout",
            ),
            upstream_pool_size: self.int(
                &raw.upstream_pool_size,
                256,
                0..100_001,
                "upstream_pool_size",
            ) as usize,
            upstream_idle_timeout: self.duration(
                &raw.upstream_idle_timeout,
                Duration::from_secs(90),
                "upstream_idle_timeout",
            ),
            connect_timeout: self.duration(
                &raw.connect_timeout,
                Duration::from_secs(5),
                "connect_timeout",
            ),
            reload_poll_interval: self.duration(
                &raw.reload_poll_interval,
                Duration::from_secs(2),
                "reload_poll_interval",
            ),
        }
    }

    /// A relative SQLite path is relative to the config file's folder, like
    /// every other path in the config.
    fn anchor_sqlite(&self, url: String) -> String {
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return url;
        };
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.starts_with('/') || path.starts_with(":memory:") {
            return url;
        }
        let base = self.path.parent().unwrap_or(Path::new("."));
        format!("sqlite://{}", base.join(path).display())
    }

    fn store(&mut self, raw: &RawStore) -> Store {
        let url = match &raw.url {
            Some(v) => {
                let s = self.string(v).unwrap_or_default();
                if !(s.starts_with("sqlite:")
                    || s.starts_with("postgres://")
                    || s.starts_with("postgresql://"))
                {
                    self.error(
                        v.span(),
                        format!("store url {s:?} must start with sqlite: or postgres://"),
                    );
                }
                self.anchor_sqlite(s)
            }
            None => self.anchor_sqlite("sqlite://blastdoor.db".to_string()),
        };
        let redis = raw.redis.as_ref().and_then(|v| {
            let s = self.string(v)?;
            if s.starts_with("rediss://") {
                self.error(
                    v.span(),
                    "redis over TLS (rediss://) is not supported yet: use redis:// on a private network",
                );
            } else if !s.starts_with("redis://") {
                self.error(v.span(), format!("redis url {s:?} must start with redis://"));
            }
            Some(s)
        });
        let redis_prefix = raw
            .redis_prefix
            .as_ref()
            .and_then(|v| self.string(v))
            .unwrap_or_else(|| "blastdoor:".to_string());
        let redis_timeout = self.duration(
            &raw.redis_timeout,
            Duration::from_millis(100),
            "redis_timeout",
        );
        let key_sync_interval = self.duration(
            &raw.key_sync_interval,
            Duration::from_secs(1),
            "key_sync_interval",
        );
        let base = self.path.parent().unwrap_or(Path::new("."));
        let spool_dir = match &raw.spool_dir {
            Some(v) => base.join(self.string(v).unwrap_or_default()),
            None => base.join("blastdoor-spool"),
        };
        let spool_max_size = self.size(&raw.spool_max_size, 1 << 30, "spool_max_size");
        let flush_interval = self.duration(
            &raw.flush_interval,
            Duration::from_secs(1),
            "flush_interval",
        );
        let alert_webhook = raw.alert_webhook.as_ref().and_then(|v| {
            let s = self.string(v)?;
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                self.error(
                    v.span(),
                    format!("alert_webhook {s:?} must be an http:// or https:// URL"),
                );
            }
            Some(s)
        });
        Store {
            url,
            redis,
            redis_prefix,
            redis_timeout,
            key_sync_interval,
            spool_dir,
            spool_max_size,
            flush_interval,
            alert_webhook,
        }
    }

    fn services(&mut self, raw: &[RawService]) -> Vec<Service> {
        let mut names = HashSet::new();
        let mut routes = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            let svc = self.service(r);
            if !names.insert(svc.name.clone()) {
                self.error(
                    r.name.span(),
                    format!("duplicate service name {:?}", svc.name),
                );
            }
            if !routes.insert(svc.route.clone()) {
                self.error(
                    r.route.span(),
                    format!(
                        "route prefix {:?} is already used by another service with the same host",
                        svc.route.prefix
                    ),
                );
            }
            out.push(svc);
        }
        out
    }

    fn service(&mut self, r: &RawService) -> Service {
        let name = self.string(&r.name).unwrap_or_default();
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            self.error(
                r.name.span(),
                "service name must be 1-64 characters of a-z, A-Z, 0-9, '-', '_'",
            );
        }
        let upstream_protocol = match r
            .upstream_protocol
            .as_ref()
            .map(|v| (v.span(), v.get_ref().as_str()))
        {
            None | Some((_, "http1")) => UpstreamProtocol::Http1,
            Some((_, "h2")) => UpstreamProtocol::H2,
            Some((span, other)) => {
                self.error(
                    span,
                    format!("upstream_protocol {other:?} must be \"http1\" or \"h2\""),
                );
                UpstreamProtocol::Http1
            }
        };
        let meter = self.meter(r);
        let (lifecycle, deprecation) = self.lifecycle(r);
        let rate_limit = self.rate_limit(r.rate_limit.as_ref(), &meter.units());
        Service {
            owner: r
                .owner
                .as_ref()
                .and_then(|o| self.string(o))
                .unwrap_or_default(),
            route: self.route(r.route.get_ref()),
            upstreams: self.upstreams(&r.upstreams),
            upstream_protocol,
            public: r.public.unwrap_or(false),
            timeout: self.duration(&r.timeout, Duration::from_secs(60), "timeout"),
            max_concurrency: self.int(&r.max_concurrency, 10_000, 1..1_000_001, "max_concurrency")
                as usize,
            max_request_body: self.size(&r.max_request_body, 10 * 1024 * 1024, "max_request_body"),
            retries: self.retries(r.retries.as_ref()),
            outlier: self.outlier(r.outlier.as_ref()),
            rate_limit,
            health_check: r.health_check.as_ref().map(|h| self.health_check(h)),
            upstream_auth: r.upstream_auth.as_ref().and_then(|a| self.upstream_auth(a)),
            strip_headers: self.header_names(r.strip_headers.as_ref()),
            meter,
            include_usage: r.include_usage.unwrap_or(true),
            pricing: self.pricing(r.price.as_ref()),
            unpriced: self.unpriced(r.unpriced.as_ref()),
            contract: self.contract(r),
            lifecycle,
            deprecation,
            description: r
                .description
                .as_ref()
                .and_then(|d| self.string(d))
                .unwrap_or_default(),
            tags: r
                .tags
                .iter()
                .flatten()
                .filter_map(|t| self.string(t))
                .collect(),
            name,
        }
    }

    fn route(&mut self, r: &RawRoute) -> Route {
        let raw_prefix = self.string(&r.prefix).unwrap_or_default();
        let ok = raw_prefix.starts_with('/')
            && !raw_prefix.contains("//")
            && !raw_prefix.split('/').any(|seg| seg == "." || seg == "..")
            && raw_prefix
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#' && b != b'%' && b != b'\\');
        if !ok {
            self.error(
                r.prefix.span(),
                format!(
                    "route prefix {raw_prefix:?} must be a plain absolute path like \"/imagegen\""
                ),
            );
        }
        let prefix = match raw_prefix.trim_end_matches('/') {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        let host = r.host.as_ref().and_then(|h| {
            let s = self.string(h)?.to_ascii_lowercase();
            if s.is_empty() || s.contains(['/', ' ', ':']) {
                self.error(
                    h.span(),
                    format!("route host {s:?} must be a host name without port"),
                );
            }
            Some(s)
        });
        Route { prefix, host }
    }

    fn header_names(&mut self, list: Option<&S<Vec<S<String>>>>) -> Vec<String> {
        let mut out = Vec::new();
        for h in list.map(|l| l.get_ref().as_slice()).unwrap_or_default() {
            let Some(name) = self.string(h).map(|s| s.to_ascii_lowercase()) else {
                continue;
            };
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.error(h.span(), format!("{name:?} is not a valid header name"));
            }
            out.push(name);
        }
        out
    }
}

#[path = "compile_auth.rs"]
mod auth;
#[path = "compile_contract.rs"]
mod contract;
#[path = "compile_limits.rs"]
mod limits;
#[path = "compile_log.rs"]
mod log;
#[path = "compile_price.rs"]
mod price;
#[path = "compile_tracing.rs"]
mod tracing;
#[path = "compile_upstream.rs"]
mod upstream;

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
