//! The contract stage: a request is matched to an operation of its
//! service's OpenAPI contract (the operation names it in metrics and the
//! ledger), then checked against it once its body is read. `enforce`
//! refuses a violating request (400 `contract_violation`), `report`
//! forwards it and counts it; traffic the contract does not describe is
//! blocked or counted as the service says.

use blastdoor_config::{Undocumented, Validate};
use blastdoor_contract::{Lookup, RequestView};
use blastdoor_types::ErrorCode;
use http::request::Parts;

use crate::Gateway;
use crate::body::RequestBody;
use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::route;
use crate::snapshot::ServiceRuntime;

/// Before the body is read: finds the operation. Returns whether the
/// whole body must be read to check it.
pub fn match_operation(
    gw: &Gateway,
    svc: &ServiceRuntime,
    ctx: &mut RequestCtx,
    parts: &Parts,
) -> Result<bool, GatewayError> {
    let Some(spec) = &svc.config.contract else {
        return Ok(false);
    };
    let path = route::strip_prefix(&ctx.path, &svc.config.route.prefix);
    let method = parts.method.as_str();
    match spec.contract.lookup(method, path) {
        Lookup::Operation(op, params) => {
            ctx.operation = Some(op.index);
            ctx.path_params = params;
            Ok(spec.validate != Validate::Off && op.wants_body())
        }
        lookup => {
            gw.metrics.undocumented(&svc.config.name);
            if spec.undocumented == Undocumented::Report {
                return Ok(false);
            }
            let what = match lookup {
                Lookup::UndocumentedMethod => "describes this path, not this method",
                _ => "does not describe this path",
            };
            Err(GatewayError::new(
                ErrorCode::ContractViolation,
                format!(
                    "{method} {path} is not an operation of {}: its contract {what}",
                    svc.config.name
                ),
            ))
        }
    }
}

/// After the body is read: checks the request against its operation.
pub fn check_request(
    gw: &Gateway,
    svc: &ServiceRuntime,
    ctx: &RequestCtx,
    parts: &Parts,
    body: &RequestBody,
) -> Result<(), GatewayError> {
    let (Some(spec), Some(index)) = (&svc.config.contract, ctx.operation) else {
        return Ok(());
    };
    if spec.validate == Validate::Off {
        return Ok(());
    }
    let Some(op) = spec.contract.operations.get(index) else {
        return Ok(());
    };
    let header_value = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let view = RequestView {
        path_params: &ctx.path_params,
        query: parts.uri.query(),
        header: &header_value,
        content_type: header_value("content-type"),
        body: match body {
            RequestBody::Buffered(b) => Some(b.as_deref().unwrap_or_default()),
            RequestBody::Streaming { .. } => None,
        },
    };
    let violations = op.check(&view);
    if violations.is_empty() {
        return Ok(());
    }
    gw.metrics
        .contract_violation(&svc.config.name, &op.id, "request");
    let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
    let detail = format!(
        "the request breaks the contract of {} ({}): {}",
        svc.config.name,
        op.id,
        list.join("; ")
    );
    if spec.validate == Validate::Report {
        tracing::debug!(request_id = %ctx.request_id, %detail, "contract violation (reported, forwarded)");
        return Ok(());
    }
    Err(GatewayError::new(ErrorCode::ContractViolation, detail))
}
