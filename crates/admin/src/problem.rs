//! Admin API errors, as problem+json like every gateway-made error.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use blastdoor_auth::OpsError;
use blastdoor_types::{ErrorCode, Problem, problem::PROBLEM_JSON};

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    status: StatusCode,
    detail: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            status: code.status(),
            detail: detail.into(),
        }
    }

    /// A 404 for an admin resource that does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError {
            code: ErrorCode::RouteNotFound,
            status: StatusCode::NOT_FOUND,
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadRequest, detail)
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Invalid(m) => ApiError::bad_request(m),
            OpsError::NotFound(_) => ApiError::not_found(e.to_string()),
            OpsError::Revoked(_) => ApiError {
                code: ErrorCode::BadRequest,
                status: StatusCode::CONFLICT,
                detail: e.to_string(),
            },
            OpsError::Random(_) | OpsError::Store(_) => {
                tracing::error!(error = %e, "admin operation failed");
                ApiError::new(
                    ErrorCode::Internal,
                    "the operation failed; see the gateway log",
                )
            }
        }
    }
}

impl From<blastdoor_store::StoreError> for ApiError {
    fn from(e: blastdoor_store::StoreError) -> Self {
        ApiError::from(OpsError::Store(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut problem = Problem::new(self.code, self.detail, blastdoor_proxy::headers::new_id());
        problem.status = self.status.as_u16();
        (
            self.status,
            [(header::CONTENT_TYPE, PROBLEM_JSON)],
            problem.to_json(),
        )
            .into_response()
    }
}

/// `Json<T>` whose rejections (bad JSON, wrong fields, too large) are
/// problem+json too.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    axum::Json<T>:
        axum::extract::FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorCode::PayloadTooLarge
                } else {
                    ErrorCode::BadRequest
                };
                Err(ApiError {
                    code,
                    status: code.status(),
                    detail: rejection.body_text(),
                })
            }
        }
    }
}
