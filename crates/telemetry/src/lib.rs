//! What the gateway tells the outside world about its traffic: Prometheus
//! metrics (every name declared in [`metrics`]), the JSON access log and
//! the recent traffic the dashboard draws.

pub mod access_log;
pub mod metrics;
pub mod otlp;
pub mod recent;
pub mod spend;

pub use access_log::{AccessLog, AccessLogFlush, AccessRecord};
pub use metrics::{LedgerMetrics, Metrics, ServiceMetrics, TracingMetrics, UpstreamMetrics};
