//! `Meter::start(..).feed(..).finish()` for the openai, anthropic and json
//! meters, streamed or whole bodies, over arbitrary bytes cut arbitrarily.
//!
//! Input: byte 0 picks the meter and the content type, byte 1 seeds the
//! cuts, the rest is the response body.

#![no_main]

use blastdoor_fuzz::{EVENT_STREAM, check_units, meter, split};
use blastdoor_meter::{JsonPointerUnit, JsonUnits, MeterSpec};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "text/event-stream",
    " Text/Event-Stream; charset=utf-8",
    "text/plain",
];

fn spec(pick: u8) -> MeterSpec {
    let unit = |unit: &str, pointer: &str| JsonPointerUnit {
        unit: unit.into(),
        pointer: pointer.into(),
    };
    match pick % 3 {
        0 => MeterSpec::OpenAi,
        1 => MeterSpec::Anthropic,
        _ => MeterSpec::Json(JsonUnits::new(vec![
            unit("image", "/data/#len"),
            unit("token", "/usage/total_tokens"),
            unit("second", "/usage/seconds"),
        ])),
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, seed, body @ ..] = data else {
        return;
    };
    let spec = spec(*pick);
    let content_type = CONTENT_TYPES[usize::from(*pick / 3) % CONTENT_TYPES.len()];
    let whole = meter(&spec, content_type, [body]);
    check_units(&spec, &whole);
    let streamed = content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with(EVENT_STREAM)
        && !matches!(spec, MeterSpec::Json(_));
    if !streamed && serde_json::from_slice::<serde_json::Value>(body).is_err() {
        assert!(
            whole.problem.is_some(),
            "a body that is not JSON is flagged"
        );
        assert!(
            whole.units.is_empty(),
            "nothing is read from a body that is not JSON"
        );
    }
    let cut = meter(&spec, content_type, split(body, u64::from(*seed)));
    assert_eq!(whole, cut, "{spec:?} {content_type:?}: one chunk vs cuts");
});
