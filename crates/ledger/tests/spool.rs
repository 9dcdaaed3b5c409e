#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! The spool and the writer: everything appended reaches the store once,
//! whether the store is up, down for a while, or the process died mid-write.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blastdoor_ledger::spool::OpenError;
use blastdoor_ledger::{AppendError, LedgerRecord, Spool, Writer};
use blastdoor_store::{BudgetScope, GroupBy, LedgerStore, Result, SqlStore, StoreError, UsageRow};
use blastdoor_telemetry::LedgerMetrics;

fn record(id: u64) -> LedgerRecord {
    LedgerRecord {
        id: format!("r{id}"),
        at: 1_790_000_000_000 + i64::try_from(id).unwrap(),
        request_id: format!("req-{id}"),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_string(),
        origin: "alice".to_string(),
        consumer: "alice".to_string(),
        key_id: "k1".to_string(),
        team: "media".to_string(),
        service: "chat".to_string(),
        operation: String::new(),
        method: "POST".to_string(),
        status: 200,
        error: None,
        complete: true,
        latency_ms: 3,
        model: None,
        units: BTreeMap::from([("image".to_string(), 1)]),
        cost_micros: 40_000,
        unpriced: None,
    }
}

/// A store that keeps ids in memory and fails while `down` is set.
#[derive(Clone, Default)]
struct FlakyStore {
    down: Arc<AtomicBool>,
    ids: Arc<Mutex<Vec<String>>>,
}

impl LedgerStore for FlakyStore {
    async fn append_ledger(&self, batch: &[LedgerRecord]) -> Result<usize> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt("the store is down (test)".into()));
        }
        let mut ids = self.ids.lock().unwrap();
        ids.extend(batch.iter().map(|r| r.id.clone()));
        Ok(batch.len())
    }
    async fn usage(&self, _: GroupBy, _: i64, _: i64) -> Result<Vec<UsageRow>> {
        Ok(vec![])
    }
    async fn hourly(&self, _: GroupBy, _: i64, _: i64) -> Result<Vec<blastdoor_store::HourRow>> {
        Ok(vec![])
    }
    async fn edges(&self, _: i64, _: i64) -> Result<Vec<blastdoor_store::EdgeRow>> {
        Ok(vec![])
    }
    async fn operation_traffic(
        &self,
        _: i64,
        _: i64,
    ) -> Result<Vec<blastdoor_store::OperationRow>> {
        Ok(vec![])
    }
    async fn spend_since(&self, _: BudgetScope, _: &str, _: i64) -> Result<i64> {
        Ok(0)
    }
    async fn unpriced_models(&self, _: i64) -> Result<Vec<(String, String)>> {
        Ok(vec![])
    }
    async fn ledger_by_request(&self, _: &str) -> Result<Vec<LedgerRecord>> {
        Ok(vec![])
    }
    async fn ledger_count(&self) -> Result<u64> {
        Ok(self.ids.lock().unwrap().len() as u64)
    }
}

fn segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("open" | "jsonl")
            )
        })
        .count()
}

#[tokio::test]
async fn records_from_many_threads_reach_the_store_once_and_the_spool_empties() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 30, 3, 1000).unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let spool = Arc::clone(&spool);
            std::thread::spawn(move || {
                for i in 0..900 {
                    spool.append(&record(t * 10_000 + i).entry()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(spool.bytes() > 0);
    let metrics = LedgerMetrics::default();
    let mut writer = Writer::new(
        Arc::clone(&spool),
        store.clone(),
        Duration::from_secs(1),
        metrics.clone(),
    );
    assert!(writer.drain().await);
    assert_eq!(store.ledger_count().await.unwrap(), 2700);
    assert_eq!(metrics.written.get(), 2700);
    // Open segments stay until sealed; sealing and draining empties the spool.
    spool.seal_all();
    assert!(writer.drain().await);
    assert_eq!(segments(dir.path()), 0);
    assert_eq!(spool.bytes(), 0);
    assert_eq!(store.ledger_count().await.unwrap(), 2700, "nothing twice");
}

#[tokio::test]
async fn a_store_outage_keeps_records_in_the_spool_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 30, 1, 1000).unwrap();
    let store = FlakyStore::default();
    store.down.store(true, Ordering::SeqCst);
    let metrics = LedgerMetrics::default();
    let mut writer = Writer::new(
        Arc::clone(&spool),
        store.clone(),
        Duration::from_secs(1),
        metrics.clone(),
    );
    for i in 0..2500 {
        spool.append(&record(i).entry()).unwrap();
    }
    assert!(!writer.drain().await, "the store is down");
    assert!(metrics.write_errors.get() >= 1);
    assert!(spool.bytes() > 0, "records wait in the spool");
    store.down.store(false, Ordering::SeqCst);
    assert!(writer.drain().await);
    let ids = store.ids.lock().unwrap().clone();
    assert_eq!(ids.len(), 2500);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2500, "each once");
}

#[tokio::test]
async fn the_writer_flushes_on_its_own_and_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 30, 2, 10).unwrap();
    let store = FlakyStore::default();
    let handle = Writer::new(
        Arc::clone(&spool),
        store.clone(),
        Duration::from_secs(3600),
        LedgerMetrics::default(),
    )
    .spawn();
    // A full batch wakes the writer long before its (hour-long) interval.
    for i in 0..10 {
        spool.append(&record(i).entry()).unwrap();
    }
    for _ in 0..500 {
        if store.ids.lock().unwrap().len() == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.ids.lock().unwrap().len(), 10);
    // A partial batch waits for the interval, or for stop.
    for i in 10..13 {
        spool.append(&record(i).entry()).unwrap();
    }
    handle.stop(Duration::from_secs(10)).await;
    assert_eq!(store.ids.lock().unwrap().len(), 13);
    assert_eq!(
        segments(dir.path()),
        0,
        "a clean stop leaves an empty spool"
    );
}

#[tokio::test]
async fn a_spool_left_by_a_dead_process_is_replayed_and_a_torn_line_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&serde_json::to_string(&record(i)).unwrap());
        text.push('\n');
    }
    text.push_str("{\"id\":\"r3\",\"at\":17"); // killed mid-write
    std::fs::write(dir.path().join("00000000deadbeef-000-00000001.open"), text).unwrap();
    let spool = Spool::open(dir.path(), 1 << 30, 1, 1000).unwrap();
    let store = FlakyStore::default();
    let mut writer = Writer::new(
        Arc::clone(&spool),
        store.clone(),
        Duration::from_secs(1),
        LedgerMetrics::default(),
    );
    assert!(writer.drain().await);
    assert_eq!(*store.ids.lock().unwrap(), vec!["r0", "r1", "r2"]);
    assert_eq!(
        segments(dir.path()),
        0,
        "the dead run's segment is consumed"
    );
}

/// Lines that are not UTF-8 or not JSON are counted and skipped; the
/// records around them, text in any script included, read back whole.
#[test]
fn corrupt_lines_are_skipped_and_the_rest_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut worldly = record(1);
    worldly.consumer = "zoë \"the door\" 🚪\n".to_string();
    let mut bytes = Vec::new();
    for line in [
        serde_json::to_vec(&record(0)).unwrap(),
        b"{\"id\":\"\xff\"}".to_vec(),
        serde_json::to_vec(&worldly).unwrap(),
        b"not json".to_vec(),
        serde_json::to_vec(&record(2)).unwrap(),
    ] {
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
    }
    let path = dir.path().join("segment");
    std::fs::write(&path, &bytes).unwrap();
    let (mut buf, mut records) = (Vec::new(), Vec::new());
    let chunk = blastdoor_ledger::spool::read_chunk(&path, 0, 100, &mut buf, &mut records).unwrap();
    assert_eq!((chunk.records, chunk.corrupt), (3, 2));
    assert_eq!(chunk.end, bytes.len() as u64);
    assert_eq!(records, vec![record(0), worldly, record(2)]);
}

#[test]
fn a_full_spool_refuses_records_instead_of_growing() {
    let dir = tempfile::tempdir().unwrap();
    let one = serde_json::to_vec(&record(0)).unwrap().len() as u64 + 1;
    let spool = Spool::open(dir.path(), one * 3, 1, 1000).unwrap();
    for i in 0..3 {
        spool.append(&record(i).entry()).unwrap();
    }
    match spool.append(&record(100).entry()) {
        Err(AppendError::Full { .. }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
}

#[test]
fn one_process_per_spool_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Spool::open(dir.path(), 1 << 20, 1, 1000).unwrap();
    match Spool::open(dir.path(), 1 << 20, 1, 1000) {
        Err(OpenError::Locked(_)) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
}
