//! Where pictures come from: one trait, two backends. [`Local`] renders them
//! here (deterministic, a stand-in for a model); [`crate::provider::Provider`]
//! asks an OpenAI-compatible images endpoint.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::sync::Semaphore;

use crate::problem::Problem;
use crate::render::{self, RenderError};

/// What to draw: already checked against the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub prompt: String,
    pub n: u32,
    /// Pixels per side (pictures are square).
    pub side: u32,
    pub seed: u64,
}

/// What to film: already checked against the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSpec {
    pub prompt: String,
    pub seconds: u32,
    pub side: u32,
    pub seed: u64,
}

/// A finished video.
#[derive(Debug, Clone)]
pub struct Video {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Percent done of a job, updated by the backend as it works.
pub type Progress = Arc<AtomicU8>;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the provider answered {status}: {message}")]
    Provider { status: u16, message: String },
    #[error("the provider did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("cannot reach the provider: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("the renderer stopped: {0}")]
    Crashed(String),
    #[error("{0} renders are already waiting")]
    Busy(usize),
}

impl BackendError {
    pub fn problem(&self) -> Problem {
        let (status, code, title) = match self {
            BackendError::Provider { .. } | BackendError::Unreachable(_) => (
                StatusCode::BAD_GATEWAY,
                "provider_error",
                "The image provider failed",
            ),
            BackendError::Timeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "provider_timeout",
                "The image provider timed out",
            ),
            BackendError::Render(RenderError::Unsupported(_)) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is not valid",
            ),
            BackendError::Busy(_) => {
                return Problem::busy(self.to_string(), 1);
            }
            BackendError::Render(_) | BackendError::Crashed(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "render_failed",
                "Rendering failed",
            ),
        };
        Problem::new(status, code, title).detail(self.to_string())
    }
}

pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and `/healthz`.
    fn name(&self) -> &'static str;

    /// `spec.n` pictures, each a base64-encoded PNG.
    fn images(
        &self,
        spec: &ImageSpec,
    ) -> impl Future<Output = Result<Vec<String>, BackendError>> + Send;

    /// A video, reporting its progress as it goes.
    fn video(
        &self,
        spec: &VideoSpec,
        progress: Progress,
    ) -> impl Future<Output = Result<Video, BackendError>> + Send;
}

/// Renders waiting for a slot, beyond which calls get 429 at once.
pub const MAX_WAITING: usize = 64;

/// Renders on this machine's cores, at most `slots` pictures or videos at
/// once; up to [`MAX_WAITING`] more wait their turn.
pub struct Local {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// Counts a render as waiting while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Local {
    pub fn new(slots: usize) -> Local {
        Local {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Runs CPU-bound work off the async threads, one slot at a time.
    async fn cpu<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let before = self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(&self.waiting);
        if before >= MAX_WAITING + self.slots.available_permits() {
            return Err(BackendError::Busy(before));
        }
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| BackendError::Crashed(e.to_string()))?;
        drop(waiting);
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| BackendError::Crashed(e.to_string()))?
            .map_err(BackendError::from)
    }
}

impl Default for Local {
    fn default() -> Local {
        Local::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

impl Backend for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn images(&self, spec: &ImageSpec) -> Result<Vec<String>, BackendError> {
        let spec = spec.clone();
        self.cpu(move || {
            // Picture i of n uses seed + i: n different pictures, each
            // reproducible on its own.
            (0..spec.n)
                .map(|i| {
                    let png = render::image(
                        &spec.prompt,
                        spec.seed.wrapping_add(u64::from(i)),
                        spec.side,
                    )?;
                    Ok(B64.encode(png))
                })
                .collect()
        })
        .await
    }

    async fn video(&self, spec: &VideoSpec, progress: Progress) -> Result<Video, BackendError> {
        let spec = spec.clone();
        let bytes = self
            .cpu(move || {
                render::video(
                    &spec.prompt,
                    spec.seed,
                    spec.side,
                    spec.seconds,
                    &|percent| progress.store(percent, Ordering::Relaxed),
                )
            })
            .await?;
        Ok(Video {
            media_type: render::APNG,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec() -> ImageSpec {
        ImageSpec {
            prompt: "queue".into(),
            n: 1,
            side: 8,
            seed: 0,
        }
    }

    #[tokio::test]
    async fn renders_beyond_the_queue_are_refused_at_once() {
        let local = Arc::new(Local::new(1));
        let held = Arc::clone(&local.slots).try_acquire_owned().unwrap();
        let queued: Vec<_> = (0..MAX_WAITING)
            .map(|_| {
                let local = Arc::clone(&local);
                tokio::spawn(async move { local.images(&spec()).await })
            })
            .collect();
        for _ in 0..1000 {
            if local.waiting.load(Ordering::Relaxed) == MAX_WAITING {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(local.waiting.load(Ordering::Relaxed), MAX_WAITING);
        let refused = local.images(&spec()).await.unwrap_err();
        let p = refused.problem();
        assert_eq!(
            (p.status.as_u16(), p.code, p.retry_after),
            (429, "busy", Some(1))
        );

        // The queue drains once the slot is free, and every render is made.
        drop(held);
        for q in queued {
            assert_eq!(q.await.unwrap().unwrap().len(), 1);
        }
        assert_eq!(local.waiting.load(Ordering::Relaxed), 0);
        local.images(&spec()).await.unwrap();
    }
}
