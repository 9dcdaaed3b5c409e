//! State the replicas of a cluster share through Redis, so that limits and
//! budgets hold for the cluster rather than once per replica: rate-limit
//! buckets ([`Buckets`]) and budget tallies ([`Tallies`]).
//!
//! Each operation is one Lua script, one round trip, atomic in Redis, with
//! a deadline. When Redis is slow or down, the caller falls back to its
//! node-local state (limits and budgets then hold per node, as they do
//! without Redis), the error is counted, and the outage is logged once when
//! it starts and once when it ends.

mod buckets;
mod tallies;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

pub use buckets::{BucketCheck, BucketOp, BucketState, Buckets};
pub use tallies::{Tallies, TallyKey, TallyState};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not connected to Redis yet")]
    NotConnected,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("Redis answered with an unexpected shape: {0}")]
    Shape(String),
}

/// A connection to the cluster's Redis, shared by every request.
pub struct Redis {
    url: String,
    conn: OnceCell<ConnectionManager>,
    timeout: Duration,
    /// Key prefix, so one Redis can serve several clusters.
    prefix: String,
    down: AtomicBool,
    errors: Counter,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.url)
            .field("connected", &self.conn.initialized())
            .finish()
    }
}

/// How long to wait between attempts to make the first connection.
const CONNECT_RETRY: Duration = Duration::from_secs(1);

impl Redis {
    /// Checks the URL and starts connecting in the background: the gateway
    /// serves (on node-local state) until Redis answers.
    pub fn start(
        url: &str,
        timeout: Duration,
        prefix: &str,
        errors: Counter,
    ) -> Result<std::sync::Arc<Redis>, Error> {
        let client = redis::Client::open(url)?;
        let redis = std::sync::Arc::new(Redis {
            url: redact(url),
            conn: OnceCell::new(),
            timeout,
            prefix: prefix.to_string(),
            down: AtomicBool::new(false),
            errors,
        });
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let weak = std::sync::Arc::downgrade(&redis);
        tokio::spawn(async move {
            loop {
                let Some(redis) = weak.upgrade() else { return };
                match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                    Ok(conn) => {
                        let _ = redis.conn.set(conn);
                        tracing::info!(url = %redis.url, "connected to Redis: limits and budgets are shared with the cluster");
                        return;
                    }
                    Err(e) => redis.failed(&Error::from(e)),
                }
                drop(redis);
                tokio::time::sleep(CONNECT_RETRY).await;
            }
        });
        Ok(redis)
    }

    pub fn is_connected(&self) -> bool {
        self.conn.initialized()
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            key.push_str(p);
        }
        key
    }

    /// Runs a script with the deadline; records failures and recoveries.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        call: &redis::ScriptInvocation<'_>,
    ) -> Result<T, Error> {
        let result = match self.conn.get() {
            None => Err(Error::NotConnected),
            Some(conn) => {
                let mut conn = conn.clone();
                match tokio::time::timeout(self.timeout, call.invoke_async(&mut conn)).await {
                    Ok(r) => r.map_err(Error::from),
                    Err(_) => Err(Error::Timeout(self.timeout)),
                }
            }
        };
        match &result {
            Ok(_) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(url = %self.url, "Redis answers again: limits and budgets are shared with the cluster again");
                }
            }
            Err(e) => self.failed(e),
        }
        result
    }

    fn failed(&self, e: &Error) {
        self.errors.inc();
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(url = %self.url, error = %e, "Redis is unreachable: limits and budgets hold per node until it is back");
        }
    }
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            super::redact("redis://:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(
            super::redact("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
