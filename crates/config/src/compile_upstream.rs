//! How a service reaches its upstreams: their URLs, retries, outlier
//! ejection, the credential sent to them and their health checks.

use std::time::Duration;

use super::Cx;
use crate::model::{HealthCheck, Outlier, Retries, Secret, Upstream, UpstreamAuth};
use crate::raw::{RawHealthCheck, RawOutlier, RawRetries, RawUpstreamAuth, S};

impl Cx<'_> {
    pub(super) fn upstreams(&mut self, list: &S<Vec<S<String>>>) -> Vec<Upstream> {
        if list.get_ref().is_empty() {
            self.error(list.span(), "a service needs at least one upstream");
        }
        let mut out = Vec::new();
        for u in list.get_ref() {
            let Some(url) = self.string(u) else { continue };
            match parse_upstream(&url) {
                Ok(up) => out.push(up),
                Err(e) => self.error(u.span(), e),
            }
        }
        out
    }

    pub(super) fn retries(&mut self, r: Option<&RawRetries>) -> Retries {
        let default = RawRetries::default();
        let r = r.unwrap_or(&default);
        let budget_ratio = match &r.budget_ratio {
            Some(v) if !(0.0..=1.0).contains(v.get_ref()) => {
                self.error(v.span(), "budget_ratio must be between 0.0 and 1.0");
                0.2
            }
            Some(v) => *v.get_ref(),
            None => 0.2,
        };
        Retries {
            attempts: self.int(&r.attempts, 2, 1..11, "retries.attempts") as u32,
            budget_ratio,
            min_per_second: self.int(&r.min_per_second, 10, 0..100_001, "retries.min_per_second")
                as u32,
        }
    }

    pub(super) fn outlier(&mut self, r: Option<&RawOutlier>) -> Outlier {
        let default = RawOutlier::default();
        let r = r.unwrap_or(&default);
        let base = self.duration(
            &r.base_ejection_time,
            Duration::from_secs(30),
            "base_ejection_time",
        );
        let max = self.duration(
            &r.max_ejection_time,
            Duration::from_secs(300),
            "max_ejection_time",
        );
        if max < base
            && let Some(v) = &r.max_ejection_time
        {
            self.error(
                v.span(),
                "max_ejection_time must be at least base_ejection_time",
            );
        }
        Outlier {
            consecutive_failures: self.int(
                &r.consecutive_failures,
                5,
                0..1001,
                "consecutive_failures",
            ) as u32,
            base_ejection_time: base,
            max_ejection_time: max.max(base),
            max_ejected_percent: self.int(&r.max_ejected_percent, 50, 0..101, "max_ejected_percent")
                as u32,
        }
    }

    pub(super) fn upstream_auth(&mut self, a: &RawUpstreamAuth) -> Option<UpstreamAuth> {
        let header = self.string(&a.header)?.to_ascii_lowercase();
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            self.error(
                a.header.span(),
                format!("upstream_auth.header {header:?} is not a valid header name"),
            );
        }
        let value = self.string(&a.value)?;
        if http::HeaderValue::from_str(&value).is_err() {
            // Never echo the value: it is a secret.
            self.error(
                a.value.span(),
                "upstream_auth.value is not a valid header value",
            );
        }
        Some(UpstreamAuth {
            header,
            value: Secret::new(value),
        })
    }

    pub(super) fn health_check(&mut self, h: &RawHealthCheck) -> HealthCheck {
        let path = self.string(&h.path).unwrap_or_default();
        if !path.starts_with('/') {
            self.error(h.path.span(), "health_check.path must start with '/'");
        }
        HealthCheck {
            path,
            interval: self.duration(&h.interval, Duration::from_secs(5), "health_check.interval"),
            timeout: self.duration(&h.timeout, Duration::from_secs(2), "health_check.timeout"),
            healthy_threshold: self.int(&h.healthy_threshold, 1, 1..101, "healthy_threshold")
                as u32,
            unhealthy_threshold: self.int(&h.unhealthy_threshold, 2, 1..101, "unhealthy_threshold")
                as u32,
        }
    }
}

/// `http://host:port/base` to an [`Upstream`]; no query, no fragment, no
/// credentials in the URL.
fn parse_upstream(url: &str) -> Result<Upstream, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("upstream {url:?} is not a valid URL: {e}"))?;
    let scheme = uri
        .scheme()
        .cloned()
        .ok_or_else(|| format!("upstream {url:?} needs a scheme (http:// or https://)"))?;
    if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
        return Err(format!("upstream {url:?}: scheme must be http or https"));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("upstream {url:?} needs a host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "upstream {url:?}: credentials in the URL are not allowed; use upstream_auth"
        ));
    }
    if uri.query().is_some() {
        return Err(format!("upstream {url:?}: a query string is not allowed"));
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(Upstream {
        url: url.to_string(),
        scheme,
        authority,
        base_path,
    })
}
