//! Admission against budgets: estimate what a request may cost, reserve it
//! on every budget that applies (a hard budget refuses with 402), and hand
//! the reservation to settle, which replaces it by the real cost.

use blastdoor_budget::{Book, Reservation};
use blastdoor_config::Service;
use blastdoor_meter::MeterSpec;
use blastdoor_types::{ErrorCode, money::pico_to_money};
use bytes::Bytes;

use crate::ctx::RequestCtx;
use crate::error::GatewayError;

/// Bytes of request per token, for the input estimate: English text and
/// JSON run about four; fewer bytes per token would under-reserve.
const BYTES_PER_TOKEN: u64 = 3;

/// Reserves the request's estimated cost on its budgets (in the cluster's
/// tallies when budgets are shared through Redis).
pub async fn admit(
    book: &Book,
    svc: &Service,
    ctx: &mut RequestCtx,
    body: Option<&Bytes>,
) -> Result<(), GatewayError> {
    let caller = ctx.caller.as_deref();
    let budgets = book.applicable(
        caller.map(|c| c.key_id.as_str()),
        caller.and_then(|c| c.team.as_deref()),
        &svc.name,
    );
    if budgets.is_empty() {
        return Ok(());
    }
    let estimate = estimate(svc, body);
    match book
        .reserve_shared(budgets, estimate, blastdoor_store::now_ms())
        .await
    {
        Ok(r) => {
            ctx.reservation = Some(r);
            Ok(())
        }
        Err(exceeded) => Err(GatewayError::new(
            ErrorCode::BudgetExceeded,
            exceeded.to_string(),
        )),
    }
}

/// Whether a hard budget applies to this call (then usage that cannot be
/// priced is refused unless the service allows it explicitly).
pub fn hard_budget_applies(book: &Book, svc: &Service, ctx: &RequestCtx) -> bool {
    let caller = ctx.caller.as_deref();
    book.applicable(
        caller.map(|c| c.key_id.as_str()),
        caller.and_then(|c| c.team.as_deref()),
        &svc.name,
    )
    .iter()
    .any(|b| b.hard)
}

/// What to reserve, in micro-dollars: the service's `reserve` if set;
/// for model meters, the input (from the body's size) plus the most
/// output the request allows (`max_tokens` and kin) at the model's prices;
/// else the per-request price.
pub fn estimate(svc: &Service, body: Option<&Bytes>) -> i64 {
    let pricing = &svc.pricing;
    if let Some(reserve) = pricing.reserve {
        return i64::try_from(reserve.micros()).unwrap_or(i64::MAX);
    }
    let mut pico = u128::from(pricing.per_request.micros()) * 1_000_000;
    let model_meter = matches!(svc.meter, MeterSpec::OpenAi | MeterSpec::Anthropic);
    if let (true, Some(body)) = (model_meter, body) {
        let request = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
        let prices = request["model"]
            .as_str()
            .and_then(|m| pricing.model_prices(m))
            .unwrap_or(&pricing.units);
        let price = |unit: &str| prices.get(unit).or_else(|| pricing.units.get(unit));
        if let Some(p) = price("input_tokens") {
            pico += p.pico_for(body.len() as u64 / BYTES_PER_TOKEN + 1);
        }
        let max_output = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
            .iter()
            .find_map(|k| request[*k].as_u64());
        if let (Some(p), Some(n)) = (price("output_tokens"), max_output) {
            pico += p.pico_for(n);
        }
    }
    i64::try_from(pico_to_money(pico).micros()).unwrap_or(i64::MAX)
}

/// Replaces the reservation by the real cost.
pub fn settle(reservation: Option<Reservation>, cost_micros: i64) {
    if let Some(r) = reservation {
        r.settle(cost_micros);
    }
}
