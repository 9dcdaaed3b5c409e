//! What checking a request against its contract costs: matching among 200
//! operations, and checking a typical 2 KB JSON body (parse included).
//! Run: `cargo bench -p blastdoor-contract`; compare with the proxy's own
//! CPU per request from `bench/run.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use blastdoor_contract::{Contract, Document, Lookup, RequestView};
use criterion::{Criterion, criterion_group, criterion_main};

/// A contract of 100 resources (200 operations); one of them takes a chat
/// request with messages, tools and sampling parameters.
fn contract() -> Contract {
    let mut doc = String::from("openapi: 3.1.0\ninfo: { title: bench, version: '1' }\npaths:\n");
    for i in 0..100 {
        let _ = write!(
            doc,
            "  /v1/r{i}/{{id}}:\n    get:\n      operationId: get{i}\n      parameters: [{{ name: id, in: path, required: true, schema: {{ type: string, maxLength: 64 }} }}]\n      responses: {{ '200': {{ description: ok }} }}\n  /v1/r{i}:\n    post:\n      operationId: create{i}\n      requestBody:\n        required: true\n        content:\n          application/json:\n            schema: {{ $ref: '#/components/schemas/Chat' }}\n      responses: {{ '200': {{ description: ok }} }}\n"
        );
    }
    doc.push_str(
        r#"components:
  schemas:
    Chat:
      type: object
      additionalProperties: false
      required: [model, messages]
      properties:
        model: { type: string, maxLength: 128 }
        temperature: { type: number, minimum: 0, maximum: 2 }
        max_tokens: { type: integer, minimum: 1, maximum: 100000 }
        stream: { type: boolean }
        user: { type: string, maxLength: 256 }
        messages:
          type: array
          maxItems: 256
          items:
            type: object
            required: [role, content]
            properties:
              role: { enum: [system, user, assistant, tool] }
              content: { type: string, maxLength: 100000 }
        tools:
          type: array
          maxItems: 64
          items:
            type: object
            required: [type, function]
            properties:
              type: { const: function }
              function:
                type: object
                required: [name]
                properties:
                  name: { type: string, pattern: "^[a-zA-Z0-9_-]{1,64}$" }
                  description: { type: string, maxLength: 1024 }
                  parameters: { type: object }
"#,
    );
    Contract::compile(&Document::parse(Path::new("bench.yaml"), doc.as_bytes()).unwrap()).unwrap()
}

/// About 2 KB: a system prompt, a short conversation and two tools.
fn body() -> String {
    let text = "Summarise the following paragraph in two sentences, keeping the numbers exact. ";
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 512,
        "user": "team-media-batch-7",
        "messages": [
            {"role": "system", "content": "You are a careful assistant that answers in plain English."},
            {"role": "user", "content": text.repeat(8)},
            {"role": "assistant", "content": "Sure. Please paste the paragraph you want summarised."},
            {"role": "user", "content": text.repeat(9)},
        ],
        "tools": [
            {"type": "function", "function": {"name": "lookup_invoice", "description": "Find an invoice by number", "parameters": {"type": "object", "properties": {"number": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "convert_currency", "description": "Convert an amount between currencies", "parameters": {"type": "object"}}},
        ],
    });
    body.to_string()
}

fn validate(c: &mut Criterion) {
    let contract = contract();
    let body = body();
    assert!((1800..2600).contains(&body.len()), "{} bytes", body.len());
    let mut g = c.benchmark_group("contract");
    g.bench_function("match_among_200_operations", |b| {
        b.iter(|| match contract.lookup("GET", black_box("/v1/r77/abc")) {
            Lookup::Operation(op, _) => op.index,
            _ => unreachable!(),
        })
    });
    g.bench_function("check_2kb_json_body", |b| {
        b.iter(|| {
            let Lookup::Operation(op, params) = contract.lookup("POST", "/v1/r77") else {
                unreachable!()
            };
            let none = |_: &str| None;
            let view = RequestView {
                path_params: &params,
                query: None,
                header: &none,
                content_type: Some("application/json"),
                body: Some(black_box(body.as_bytes())),
            };
            let violations = op.check(&view);
            assert!(violations.is_empty(), "{violations:?}");
        })
    });
    g.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
