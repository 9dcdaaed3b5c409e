#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! End-to-end: the official `openai` and `anthropic` Python SDKs call
//! through the gateway, with an API key, to faithful wire-format simulators
//! of both APIs, streamed and not. The SDKs must parse every answer as they
//! would the real API's, and the usage ledger must hold, for every call,
//! exactly the units the simulator reported and their cost at the
//! configured prices (computed here with integer arithmetic).
//!
//! Needs `BLASTDOOR_TEST_PYTHON`: a Python with the SDKs of
//! tests/sdk/requirements.txt (`.ci/run` makes one). Without it the tests
//! say SKIPPED and pass.

mod common;
#[path = "sdk/python.rs"]
mod python;
#[path = "sdk/simulators.rs"]
mod simulators;

use blastdoor_store::LedgerRecord;
use common::*;
use http::StatusCode;
use python::{ledger, python, run_script, skip};
use serde_json::Value;
use simulators::{SimCall, Simulator};
use std::collections::{BTreeMap, BTreeSet};

const PROVIDER_BEARER: &str = "Bearer sk-sim-provider-credential";
const PROVIDER_API_KEY: &str = "sk-ant-sim-provider-credential";

/// The prices the tests configure: per service, the per-request price and
/// (model, unit, price) rows. The config is written from these, and the
/// expected costs are computed from them.
struct Prices {
    per_request: &'static str,
    models: &'static [(&'static str, &'static str, &'static str)],
}

const OPENAI_PRICES: Prices = Prices {
    per_request: "0.0001",
    models: &[
        ("gpt-4o-mini", "input_tokens", "0.15/1M"),
        ("gpt-4o-mini", "cached_input_tokens", "0.075/1M"),
        ("gpt-4o-mini", "output_tokens", "0.60/1M"),
        ("o4-mini", "input_tokens", "1.10/1M"),
        ("o4-mini", "cached_input_tokens", "0.275/1M"),
        ("o4-mini", "output_tokens", "4.40/1M"),
        ("o4-mini", "reasoning_tokens", "4.40/1M"),
        ("text-embedding-3-small", "input_tokens", "0.02/1M"),
    ],
};

const ANTHROPIC_PRICES: Prices = Prices {
    per_request: "0.0002",
    models: &[
        ("claude-sonnet-4-5", "input_tokens", "3/1M"),
        ("claude-sonnet-4-5", "cached_input_tokens", "0.30/1M"),
        ("claude-sonnet-4-5", "cache_write_tokens", "3.75/1M"),
        ("claude-sonnet-4-5", "output_tokens", "15/1M"),
        ("claude-haiku-4-5", "input_tokens", "1/1M"),
        ("claude-haiku-4-5", "cached_input_tokens", "0.10/1M"),
        ("claude-haiku-4-5", "cache_write_tokens", "1.25/1M"),
        ("claude-haiku-4-5", "output_tokens", "5/1M"),
    ],
};

/// A metered service behind an API key, priced per model; calls naming a
/// model without a price are refused.
fn service_config(
    name: &str,
    upstream: &str,
    meter: &str,
    auth: (&str, &str),
    p: &Prices,
) -> String {
    let mut s = format!(
        "[[service]]\nname = \"{name}\"\nowner = \"ml\"\nroute = {{ prefix = \"/{name}\" }}\n\
         upstreams = [\"{upstream}\"]\nmeter = \"{meter}\"\nunpriced = \"reject\"\n\
         upstream_auth = {{ header = \"{}\", value = \"{}\" }}\n\
         [service.price]\nper_request = \"{}\"\n",
        auth.0, auth.1, p.per_request
    );
    let models: BTreeSet<&str> = p.models.iter().map(|m| m.0).collect();
    for model in models {
        s.push_str(&format!("[service.price.models.\"{model}\"]\n"));
        for (_, unit, price) in p.models.iter().filter(|m| m.0 == model) {
            s.push_str(&format!("{unit} = \"{price}\"\n"));
        }
    }
    s
}

// --- money, independently of the gateway's own code ---

/// Pico-dollars (1e-12) in a decimal dollar amount, exactly.
fn pico(amount: &str) -> u128 {
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
    assert!(frac.len() <= 12, "{amount}");
    let whole: u128 = whole.parse().unwrap();
    let frac: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u128>().unwrap() * 10u128.pow(12 - frac.len() as u32)
    };
    whole * 10u128.pow(12) + frac
}

/// Pico-dollars per unit of a price like "0.15/1M" or "0.04".
fn pico_per_unit(price: &str) -> u128 {
    let (amount, per) = price.split_once('/').unwrap_or((price, "1"));
    let per: u128 = match per.strip_suffix('M') {
        Some(n) => n.parse::<u128>().unwrap() * 1_000_000,
        None => per.parse().unwrap(),
    };
    let p = pico(amount);
    assert_eq!(p % per, 0, "{price} is exact to the pico-dollar");
    p / per
}

/// Micro-dollars: per request plus units x prices, rounded half up.
fn expected_cost(p: &Prices, model: &str, units: &BTreeMap<String, u64>) -> u64 {
    let mut total = pico(p.per_request);
    for (unit, n) in units {
        let price = p
            .models
            .iter()
            .find(|m| m.0 == model && m.1 == unit)
            .unwrap_or_else(|| panic!("no price for {model} {unit}"))
            .2;
        total += pico_per_unit(price) * u128::from(*n);
    }
    u64::try_from((total + 500_000) / 1_000_000).unwrap()
}

/// Micro-dollars as the gateway's cost header writes dollars ("0.001435").
fn dollars(micros: u64) -> String {
    let frac = format!("{:06}", micros % 1_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        (micros / 1_000_000).to_string()
    } else {
        format!("{}.{frac}", micros / 1_000_000)
    }
}

// --- the units each API's documented usage means ---

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// OpenAI: cached tokens are part of the prompt tokens, reasoning tokens
/// part of the completion tokens; each is priced once, as its own unit.
fn openai_units(usage: &Value) -> BTreeMap<String, u64> {
    let input = count(&usage["prompt_tokens"]) + count(&usage["input_tokens"]);
    let cached = count(&usage["prompt_tokens_details"]["cached_tokens"])
        + count(&usage["input_tokens_details"]["cached_tokens"]);
    let output = count(&usage["completion_tokens"]) + count(&usage["output_tokens"]);
    let reasoning = count(&usage["completion_tokens_details"]["reasoning_tokens"])
        + count(&usage["output_tokens_details"]["reasoning_tokens"]);
    nonzero([
        ("input_tokens", input - cached),
        ("cached_input_tokens", cached),
        ("output_tokens", output - reasoning),
        ("reasoning_tokens", reasoning),
    ])
}

/// Anthropic: input, cache reads and cache writes are disjoint counts.
fn anthropic_units(usage: &Value) -> BTreeMap<String, u64> {
    nonzero([
        ("input_tokens", count(&usage["input_tokens"])),
        (
            "cached_input_tokens",
            count(&usage["cache_read_input_tokens"]),
        ),
        (
            "cache_write_tokens",
            count(&usage["cache_creation_input_tokens"]),
        ),
        ("output_tokens", count(&usage["output_tokens"])),
    ])
}

fn nonzero<const N: usize>(units: [(&str, u64); N]) -> BTreeMap<String, u64> {
    units
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(u, n)| (u.to_string(), n))
        .collect()
}

/// Every field of `expected` is in `actual` with the same value (the SDK's
/// models add fields of their own, as null).
fn assert_within(expected: &Value, actual: &Value, what: &str) {
    match expected {
        Value::Object(map) => {
            for (k, v) in map {
                assert_within(v, &actual[k], &format!("{what}.{k}"));
            }
        }
        _ => assert_eq!(expected, actual, "{what}"),
    }
}

/// A key for the SDKs, once the running gateway knows it.
async fn sdk_key(gw: &GatewayProcess, service: &str, header: &str) -> String {
    let key = keys(
        gw,
        &[
            "create",
            "--name",
            "sdk-tests",
            "--team",
            "ml",
            "--services",
            service,
        ],
    );
    let c = Client::http1();
    let value = if header == "authorization" {
        format!("Bearer {key}")
    } else {
        key.clone()
    };
    let probe = gw.url(&format!("/{service}/v1/models"));
    eventually("the gateway knows the new key", async || {
        c.send(with_key(&probe, header, &value)).await.status == StatusCode::OK
    })
    .await;
    key
}

/// What every call must satisfy: the SDK saw the simulator's answer, the
/// ledger holds one record of it with exactly the simulator's units and
/// their price.
struct Check<'a> {
    service: &'a str,
    prices: &'a Prices,
    units: fn(&Value) -> BTreeMap<String, u64>,
}

impl Check<'_> {
    /// Returns the call's cost in micro-dollars.
    fn call(
        &self,
        line: &Value,
        sim: &Simulator,
        ledger: &BTreeMap<String, Vec<LedgerRecord>>,
    ) -> u64 {
        let id = line["request_id"].as_str().unwrap();
        let calls = sim.calls.by_request(id);
        assert_eq!(
            calls.len(),
            1,
            "{id}: one upstream call, no retries: {calls:?}"
        );
        let call: &SimCall = &calls[0];
        assert_eq!(line["stream"], call.stream, "{id}");

        let path = match line["call"].as_str().unwrap() {
            "chat" => "/v1/chat/completions",
            "responses" => "/v1/responses",
            "embeddings" => "/v1/embeddings",
            "messages" => "/v1/messages",
            other => panic!("{other}"),
        };
        assert_eq!(call.path, path, "{id}: the SDK's path, the prefix stripped");

        // What the SDK parsed is what the simulator sent.
        if path != "/v1/embeddings" {
            assert_eq!(line["text"], call.text.as_str(), "{id}: text");
        }
        assert_eq!(line["model"], call.model.as_str(), "{id}: model");

        // The ledger: one record, exactly the simulator's usage, priced.
        let requested = line["requested"].as_str().unwrap();
        let expected_units = (self.units)(&call.usage);
        assert!(!expected_units.is_empty(), "{id}: the call reported usage");
        let cost = expected_cost(self.prices, requested, &expected_units);
        let records = &ledger[id];
        assert_eq!(records.len(), 1, "{id}: one ledger record: {records:?}");
        let r = &records[0];
        assert_eq!(
            (r.service.as_str(), r.status, r.complete, r.error.as_deref()),
            (self.service, 200, true, None),
            "{id}: {r:?}"
        );
        assert_eq!((r.consumer.as_str(), r.team.as_str()), ("sdk-tests", "ml"));
        assert_eq!(r.model.as_deref(), Some(call.model.as_str()), "{id}: model");
        let recorded: BTreeMap<String, u64> = r
            .units
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(u, n)| (u.clone(), *n))
            .collect();
        assert_eq!(recorded, expected_units, "{id}: units ({:?})", call.usage);
        assert_eq!(r.unpriced, None, "{id}: fully priced");
        assert_eq!(
            r.cost_micros,
            i64::try_from(cost).unwrap(),
            "{id}: cost of {expected_units:?} at {requested}'s prices"
        );
        // A whole answer is priced before it is sent, so the SDK sees the
        // cost in the header.
        if !call.stream {
            assert_eq!(line["cost_header"], dollars(cost).as_str(), "{id}: header");
            assert_eq!(line["response_request_id"], id);
        }
        println!("{id}: {expected_units:?} cost {} USD", dollars(cost));
        cost
    }

    fn all(&self, lines: &[Value], sim: &Simulator, ledger: &BTreeMap<String, Vec<LedgerRecord>>) {
        let total: u64 = lines.iter().map(|l| self.call(l, sim, ledger)).sum();
        println!(
            "{}: {} calls match the ledger exactly, {} USD in all",
            self.service,
            lines.len(),
            dollars(total)
        );
    }
}

fn assert_distinct_usage(sim: &Simulator) {
    let calls = sim.calls.all();
    let distinct: BTreeSet<String> = calls.iter().map(|c| c.usage.to_string()).collect();
    assert_eq!(
        distinct.len(),
        calls.len(),
        "every call reports its own usage, so an exact match means something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_calls_are_metered_exactly() {
    let Some(python) = python() else {
        return skip("openai_sdk_calls_are_metered_exactly");
    };
    let sim = simulators::openai().await;
    let config = format!(
        "[store]\nkey_sync_interval = \"100ms\"\n\n{}",
        service_config(
            "openai",
            &sim.url(),
            "openai",
            ("authorization", PROVIDER_BEARER),
            &OPENAI_PRICES
        )
    );
    let gw = start(&config);
    let key = sdk_key(&gw, "openai", "authorization").await;
    let lines = run_script(&python, "openai_client.py", &gw.url("/openai/v1"), &key).await;
    assert_eq!(lines[0]["sdk"], "openai", "{}", lines[0]);
    let lines = &lines[1..];
    assert_eq!(lines.len(), 9, "{lines:?}");

    // The SDK saw what the simulator reported, including in streams.
    for line in lines {
        let id = line["request_id"].as_str().unwrap();
        let call = &sim.calls.by_request(id)[0];
        assert_within(
            &call.usage,
            &line["usage"],
            &format!("{id}: usage the SDK saw"),
        );
    }
    let by_id = |id: &str| lines.iter().find(|l| l["request_id"] == id).unwrap();
    let unasked = by_id("oa-chat-stream-unasked");
    assert_eq!(unasked["asked_for_usage"], false);
    assert!(
        unasked["usage"]["prompt_tokens"].as_u64().is_some(),
        "the gateway asked for the usage chunk and the SDK took it: {unasked}"
    );
    let events = by_id("oa-resp-stream")["event_types"].clone();
    assert_eq!(events[0], "response.created");
    assert_eq!(
        events.as_array().unwrap().last().unwrap(),
        "response.completed"
    );
    for embed in ["oa-embed-base64", "oa-embed-float"] {
        let l = by_id(embed);
        assert_eq!(l["dimensions"], 8, "{l}");
    }
    assert_eq!(by_id("oa-embed-base64")["count"], 2);
    assert_distinct_usage(&sim);
    for call in sim.calls.all() {
        assert_eq!(call.authorization.as_deref(), Some(PROVIDER_BEARER));
    }

    let ids: Vec<String> = lines
        .iter()
        .map(|l| l["request_id"].as_str().unwrap().to_string())
        .collect();
    let ledger = ledger(gw, &ids).await;
    let check = Check {
        service: "openai",
        prices: &OPENAI_PRICES,
        units: openai_units,
    };
    check.all(lines, &sim, &ledger);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_calls_are_metered_exactly() {
    let Some(python) = python() else {
        return skip("anthropic_sdk_calls_are_metered_exactly");
    };
    let sim = simulators::anthropic().await;
    let config = format!(
        "[store]\nkey_sync_interval = \"100ms\"\n\n{}",
        service_config(
            "anthropic",
            &sim.url(),
            "anthropic",
            ("x-api-key", PROVIDER_API_KEY),
            &ANTHROPIC_PRICES
        )
    );
    let gw = start(&config);
    let key = sdk_key(&gw, "anthropic", "x-api-key").await;
    // The SDK appends /v1/messages to its base URL.
    let lines = run_script(&python, "anthropic_client.py", &gw.url("/anthropic"), &key).await;
    assert_eq!(lines[0]["sdk"], "anthropic", "{}", lines[0]);
    let lines = &lines[1..];
    assert_eq!(lines.len(), 5, "{lines:?}");

    for line in lines {
        let id = line["request_id"].as_str().unwrap();
        let call = &sim.calls.by_request(id)[0];
        if line.get("start_usage").is_some() {
            // The raw events: input counts at the start, output at the end.
            let mut start = call.usage.clone();
            start["output_tokens"] = 1.into();
            assert_within(
                &start,
                &line["start_usage"],
                &format!("{id}: message_start"),
            );
            assert_eq!(
                line["delta_usage"]["output_tokens"], call.usage["output_tokens"],
                "{id}: message_delta"
            );
            let mut events = vec!["message_start", "content_block_start"];
            events.extend(
                call.text
                    .split_inclusive(' ')
                    .map(|_| "content_block_delta"),
            );
            events.extend(["content_block_stop", "message_delta", "message_stop"]);
            assert_eq!(
                line["event_types"],
                serde_json::json!(events),
                "{id}: the SDK passes on every event but ping"
            );
        } else {
            assert_within(
                &call.usage,
                &line["usage"],
                &format!("{id}: usage the SDK saw"),
            );
        }
        assert_eq!(line["stop_reason"], "end_turn", "{id}");
    }
    let streams = sim.calls.all().into_iter().filter(|c| c.stream);
    let shapes: BTreeSet<bool> = streams.map(|c| c.cumulative_delta).collect();
    assert_eq!(
        shapes.len(),
        2,
        "both message_delta usage shapes were exercised"
    );
    assert_distinct_usage(&sim);
    for call in sim.calls.all() {
        assert_eq!(call.api_key.as_deref(), Some(PROVIDER_API_KEY));
    }

    let ids: Vec<String> = lines
        .iter()
        .map(|l| l["request_id"].as_str().unwrap().to_string())
        .collect();
    let ledger = ledger(gw, &ids).await;
    let check = Check {
        service: "anthropic",
        prices: &ANTHROPIC_PRICES,
        units: anthropic_units,
    };
    check.all(lines, &sim, &ledger);
}
