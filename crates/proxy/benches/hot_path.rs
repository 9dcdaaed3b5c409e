//! Criterion benches for the per-request work blastdoor adds: route lookup
//! among 10,000 routes, path normalisation and request header rewriting.
//! Run: `cargo bench -p blastdoor-proxy`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup

use std::hint::black_box;

use blastdoor_proxy::headers::{Hop, TraceContext, rewrite_request};
use blastdoor_proxy::path::normalize;
use blastdoor_proxy::route::RouteTable;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};

fn routes(c: &mut Criterion) {
    let mut table = RouteTable::new();
    for i in 0..10_000 {
        table.insert(None, &format!("/team{}/svc{i}", i % 100), i);
    }
    for i in 0..100 {
        table.insert(Some(&format!("api{i}.example.com")), &format!("/v{i}"), i);
    }
    let mut g = c.benchmark_group("route_lookup_10k");
    g.bench_function("hit_deep_path", |b| {
        b.iter(|| table.lookup(None, black_box("/team42/svc4242/v1/images/generations")))
    });
    g.bench_function("hit_with_host", |b| {
        b.iter(|| {
            table.lookup(
                Some(black_box("api7.example.com")),
                black_box("/v7/chat/completions"),
            )
        })
    });
    g.bench_function("miss", |b| {
        b.iter(|| table.lookup(None, black_box("/nowhere/at/all")))
    });
    g.finish();
}

fn paths(c: &mut Criterion) {
    let mut g = c.benchmark_group("path_normalize");
    g.bench_function("clean", |b| {
        b.iter(|| normalize(black_box("/imagegen/v1/images/generations")))
    });
    g.bench_function("dirty", |b| {
        b.iter(|| normalize(black_box("//imagegen/./v1/%69mages/../images/generations")))
    });
    g.finish();
}

/// A typical API call's headers, as an SDK sends them.
fn typical_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "gateway.internal:8080"),
        ("user-agent", "OpenAI/Python 1.54.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate"),
        ("content-type", "application/json"),
        ("content-length", "312"),
        (
            "authorization",
            "Bearer bd_0123456789abcdefghijklmnopqrstuvwxyz",
        ),
        ("connection", "keep-alive"),
        ("x-stainless-lang", "python"),
        ("x-stainless-retry-count", "0"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    h
}

fn headers(c: &mut Criterion) {
    let template = typical_headers();
    c.bench_function("request_header_rewrite", |b| {
        b.iter(|| {
            let mut h = template.clone();
            let trace = TraceContext::continue_or_start(h.get("traceparent"), None);
            let hop = Hop {
                client: "10.0.0.7",
                tls: false,
                http11: true,
                original_host: None,
                request_id: "4f1c2b9a8e7d6c5b4a39281706f5e4d3",
                trace: &trace,
                caller: None,
                strip: &[],
                upstream_auth: None,
            };
            rewrite_request(&mut h, &hop);
            h
        })
    });
    c.bench_function("header_map_clone_only", |b| b.iter(|| template.clone()));
}

criterion_group!(benches, routes, paths, headers);
criterion_main!(benches);
