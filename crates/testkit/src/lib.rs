//! Dev-only test kit: a mock upstream with request records, the real
//! gateway binary on port 0 with a temp config, and small HTTP clients.
//! Test code: panics on setup failures are the clearest report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod client;
pub mod gateway;
pub mod upstream;

pub use client::{Client, Reply};
pub use gateway::GatewayProcess;
pub use upstream::{MockUpstream, Seen};

/// Upper bound for any single wait in a test: a broken gateway fails the
/// test instead of hanging it.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20);
