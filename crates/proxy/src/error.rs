//! The gateway's own error responses: one type, one renderer.

use blastdoor_types::{ErrorCode, Problem, problem::PROBLEM_JSON};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};

/// An answer the gateway makes itself. `detail` is shown to the caller;
/// `cause` (internal) is logged only.
#[derive(Debug)]
pub struct GatewayError {
    pub code: ErrorCode,
    pub detail: String,
    pub cause: Option<String>,
    pub retry_after_secs: Option<u32>,
}

impl GatewayError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        GatewayError {
            code,
            detail: detail.into(),
            cause: None,
            retry_after_secs: None,
        }
    }

    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The problem+json response head and body.
    pub fn render(&self, request_id: &str) -> Response<Bytes> {
        let body = Bytes::from(Problem::new(self.code, self.detail.clone(), request_id).to_json());
        let mut resp = Response::new(body);
        *resp.status_mut() = self.code.status();
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
