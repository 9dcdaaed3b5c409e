//! The one place a gateway-made response chooses its status code.
//!
//! Mirrors the error table in SPEC.md; the names are public surface.

use http::StatusCode;

/// Every kind of response the gateway itself produces (as opposed to
/// responses relayed from an upstream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request could not be parsed or is ambiguous (framing, path, headers).
    BadRequest,
    /// Missing, unknown, revoked or expired key.
    Unauthorized,
    /// The key is not allowed on this service or operation.
    Forbidden,
    /// No service matches the request.
    RouteNotFound,
    /// The request breaks the service's contract.
    ContractViolation,
    /// The request body is larger than the configured cap.
    PayloadTooLarge,
    /// A hard budget is spent.
    BudgetExceeded,
    /// The call cannot be priced and the service rejects unpriced calls.
    Unpriced,
    /// A rate limit was hit.
    RateLimited,
    /// The upstream could not be reached or answered with a broken response.
    UpstreamUnavailable,
    /// No upstream host is available (all ejected or unhealthy).
    NoHealthyUpstream,
    /// The service's concurrency cap is reached; the gateway sheds load
    /// instead of queueing.
    Overloaded,
    /// The upstream did not answer before the service's deadline.
    UpstreamTimeout,
    /// A call chain exceeded its allowed depth.
    ChainTooDeep,
    /// The gateway is shutting down and no longer accepts work.
    ShuttingDown,
    /// A bug or an unexpected internal failure.
    Internal,
}

impl ErrorCode {
    /// Every variant, for table tests and documentation.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RouteNotFound,
        ErrorCode::ContractViolation,
        ErrorCode::PayloadTooLarge,
        ErrorCode::BudgetExceeded,
        ErrorCode::Unpriced,
        ErrorCode::RateLimited,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::NoHealthyUpstream,
        ErrorCode::Overloaded,
        ErrorCode::UpstreamTimeout,
        ErrorCode::ChainTooDeep,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
    ];

    /// The machine-readable code sent as the problem's `code` member.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::ContractViolation => "contract_violation",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::Unpriced => "unpriced",
            ErrorCode::RateLimited => "rate_limited",
            // Both are "the upstream is not available" to a caller; the
            // detail says which.
            ErrorCode::UpstreamUnavailable | ErrorCode::NoHealthyUpstream => "upstream_unavailable",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::ChainTooDeep => "chain_too_deep",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal_error",
        }
    }

    /// The HTTP status for this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest | ErrorCode::ContractViolation => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::RouteNotFound => StatusCode::NOT_FOUND,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BudgetExceeded | ErrorCode::Unpriced => StatusCode::PAYMENT_REQUIRED,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            ErrorCode::NoHealthyUpstream | ErrorCode::Overloaded | ErrorCode::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::ChainTooDeep => StatusCode::LOOP_DETECTED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, human-readable summary (the problem's `title`).
    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "Malformed request",
            ErrorCode::Unauthorized => "Missing or invalid credentials",
            ErrorCode::Forbidden => "Not allowed",
            ErrorCode::RouteNotFound => "No service matches this route",
            ErrorCode::ContractViolation => "Request violates the service contract",
            ErrorCode::PayloadTooLarge => "Request body too large",
            ErrorCode::BudgetExceeded => "Budget exceeded",
            ErrorCode::Unpriced => "Call cannot be priced",
            ErrorCode::RateLimited => "Rate limit exceeded",
            ErrorCode::UpstreamUnavailable => "Upstream unavailable",
            ErrorCode::NoHealthyUpstream => "No healthy upstream",
            ErrorCode::Overloaded => "Service overloaded",
            ErrorCode::UpstreamTimeout => "Upstream timed out",
            ErrorCode::ChainTooDeep => "Call chain too deep",
            ErrorCode::ShuttingDown => "Gateway shutting down",
            ErrorCode::Internal => "Internal gateway error",
        }
    }

    /// Whether the caller may usefully retry the same request later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::UpstreamUnavailable
                | ErrorCode::NoHealthyUpstream
                | ErrorCode::Overloaded
                | ErrorCode::UpstreamTimeout
                | ErrorCode::ShuttingDown
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_an_error_status_and_a_snake_case_name() {
        for code in ErrorCode::ALL {
            let status = code.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code:?} -> {status}"
            );
            let name = code.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert!(!code.title().is_empty());
        }
    }

    #[test]
    fn spec_table_codes_and_statuses() {
        let table = [
            (ErrorCode::Unauthorized, "unauthorized", 401),
            (ErrorCode::Forbidden, "forbidden", 403),
            (ErrorCode::RouteNotFound, "route_not_found", 404),
            (ErrorCode::ContractViolation, "contract_violation", 400),
            (ErrorCode::PayloadTooLarge, "payload_too_large", 413),
            (ErrorCode::BudgetExceeded, "budget_exceeded", 402),
            (ErrorCode::Unpriced, "unpriced", 402),
            (ErrorCode::RateLimited, "rate_limited", 429),
            (ErrorCode::UpstreamUnavailable, "upstream_unavailable", 502),
            (ErrorCode::NoHealthyUpstream, "upstream_unavailable", 503),
            (ErrorCode::UpstreamTimeout, "upstream_timeout", 504),
            (ErrorCode::ChainTooDeep, "chain_too_deep", 508),
        ];
        for (code, name, status) in table {
            assert_eq!(code.as_str(), name);
            assert_eq!(code.status().as_u16(), status, "{name}");
        }
    }
}
