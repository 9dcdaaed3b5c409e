//! Compiling `[tracing]`: the OTLP endpoint, sampling and export limits.

use crate::model::{OtlpProtocol, Secret, Tracing};
use crate::raw::RawTracing;

use super::Cx;

impl Cx<'_> {
    /// `span`: where `[tracing]` is, to point at it when it lacks its
    /// endpoint.
    pub(super) fn tracing(
        &mut self,
        raw: Option<&RawTracing>,
        span: Option<std::ops::Range<usize>>,
    ) -> Option<Tracing> {
        let raw = raw?;
        let Some(endpoint) = &raw.otlp_endpoint else {
            self.error(
                span.unwrap_or(0..0),
                "[tracing] needs otlp_endpoint (e.g. \"http://127.0.0.1:4318/v1/traces\")",
            );
            return None;
        };
        let url = self.string(endpoint)?;
        match url.parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
            _ => {
                self.error(
                    endpoint.span(),
                    format!("otlp_endpoint must be an http:// or https:// URL (got {url:?})"),
                );
                return None;
            }
        }
        let protocol = match raw
            .otlp_protocol
            .as_ref()
            .map(|v| (v.span(), v.get_ref().as_str()))
        {
            None | Some((_, "http/protobuf")) => OtlpProtocol::HttpProtobuf,
            Some((_, "grpc")) => OtlpProtocol::Grpc,
            Some((span, other)) => {
                self.error(
                    span,
                    format!("otlp_protocol {other:?} must be \"http/protobuf\" or \"grpc\""),
                );
                OtlpProtocol::HttpProtobuf
            }
        };
        let sample_ratio = match &raw.sample_ratio {
            None => 1.0,
            Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                self.error(
                    v.span(),
                    "sample_ratio must be between 0 and 1 (a fraction of traces)",
                );
                1.0
            }
        };
        let headers = raw
            .headers
            .iter()
            .flatten()
            .filter_map(|(name, value)| {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    self.error(value.span(), format!("{name:?} is not a valid header name"));
                    return None;
                }
                Some((name.to_ascii_lowercase(), Secret::new(self.string(value)?)))
            })
            .collect();
        Some(Tracing {
            endpoint: url,
            protocol,
            service_name: raw
                .service_name
                .as_ref()
                .and_then(|v| self.string(v))
                .unwrap_or_else(|| "blastdoor".to_string()),
            sample_ratio,
            parent_based: raw.parent_based.unwrap_or(true),
            headers,
            export_interval: self.duration(
                &raw.export_interval,
                std::time::Duration::from_secs(1),
                "export_interval",
            ),
            export_timeout: self.duration(
                &raw.export_timeout,
                std::time::Duration::from_secs(5),
                "export_timeout",
            ),
            max_queue: self.int(&raw.max_queue, 8192, 1..1_000_001, "max_queue") as usize,
        })
    }
}
