//! Usage reports over 1,000,000 ledger rows in SQLite.
//!
//! Seeds a temporary store through the ledger writer's own path
//! (`append_ledger` in batches of 1000, rollups included) with a fleet's
//! month: 200 keys in 12 teams, each calling 3 of 25 services, 1M requests
//! over 30 days. Then times each report and a budget's spend query.
//!
//! Run: `cargo bench -p blastdoor-store --bench usage_report`
//! (`BENCH_ROWS=100000` for a quicker run).

use std::collections::BTreeMap;
use std::time::Instant;

use blastdoor_store::{BudgetScope, GroupBy, LedgerRecord, LedgerStore, SqlStore, now_ms};

fn record(i: u64, now: i64, rows: u64) -> LedgerRecord {
    let key = fastrand::u64(0..200);
    let service = (key * 7 + fastrand::u64(0..3)) % 25;
    let team = key % 12;
    let month_ms = 30 * 86_400_000_i64;
    let at = now - month_ms + (i as i64) * (month_ms / rows as i64);
    let input = fastrand::u64(10..4000);
    let output = fastrand::u64(1..1000);
    LedgerRecord {
        id: format!("bench-{i:010}"),
        at,
        request_id: format!("req-{i}"),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        origin: format!("consumer-{key}"),
        consumer: format!("consumer-{key}"),
        key_id: format!("key{key:09}"),
        team: format!("team-{team}"),
        service: format!("service-{service}"),
        operation: format!("op-{}", fastrand::u64(0..4)),
        method: "POST".into(),
        status: 200,
        error: None,
        complete: true,
        latency_ms: fastrand::u64(5..3000),
        model: Some("gpt-4o-mini".into()),
        units: BTreeMap::from([
            ("input_tokens".to_string(), input),
            ("output_tokens".to_string(), output),
        ]),
        cost_micros: i64::try_from((input * 15 + output * 60) / 100).unwrap_or(0),
        unpriced: None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = SqlStore::connect(&url).await?;
    store.migrate().await?;
    let now = now_ms();
    let seed = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..rows {
        batch.push(record(i, now, rows));
        if batch.len() == 1000 {
            store.append_ledger(&batch).await?;
            batch.clear();
        }
    }
    store.append_ledger(&batch).await?;
    let seeded = seed.elapsed();
    println!(
        "seeded {} ledger rows in {:.1}s ({:.0} rows/s through append_ledger)",
        store.ledger_count().await?,
        seeded.as_secs_f64(),
        rows as f64 / seeded.as_secs_f64()
    );
    for (window, from) in [("30d", now - 30 * 86_400_000), ("7d", now - 7 * 86_400_000)] {
        for by in GroupBy::ALL {
            let t = Instant::now();
            let report = store.usage(by, from, now).await?;
            let requests: u64 = report.iter().map(|r| r.requests).sum();
            println!(
                "usage --by {:<9} --since {window}: {:>7.1} ms  ({} groups, {requests} requests)",
                by.as_str(),
                t.elapsed().as_secs_f64() * 1000.0,
                report.len()
            );
        }
    }
    let month_start = now - 30 * 86_400_000;
    let t = Instant::now();
    let spent = store
        .spend_since(
            BudgetScope::Team,
            "team-3",
            blastdoor_store::hour_of(month_start),
        )
        .await?;
    println!(
        "budget spend of one team over 30d: {:.1} ms ({spent} micro-dollars)",
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
