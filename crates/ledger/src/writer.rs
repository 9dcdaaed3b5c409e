//! The batch writer: tails the spool and moves records to the store in
//! batches, on a size trigger or an interval, whichever comes first.
//! Progress lives in memory; after a crash the spool is read again from the
//! start and the store skips the ids it already has.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use blastdoor_store::{LedgerRecord, LedgerStore};
use blastdoor_telemetry::LedgerMetrics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::spool::{self, Segment, Spool};

/// Records per store transaction.
pub const BATCH: usize = 4000;
/// The longest wait between retries while the store is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct Writer<S> {
    spool: Arc<Spool>,
    store: S,
    interval: Duration,
    metrics: LedgerMetrics,
    /// How far each segment (by stem) has been stored.
    stored_to: HashMap<String, u64>,
    /// The store is failing; logged once per outage.
    failing: bool,
    /// Buffers kept from one pass to the next (a few MB at most).
    scratch: Scratch,
}

/// The read buffer and the record list a pass fills. Kept rather than made
/// anew: fresh megabytes each pass were paid in page faults.
#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    records: Vec<LedgerRecord>,
}

/// Stops the writer after a last flush.
pub struct WriterHandle {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl WriterHandle {
    /// Seals the spool and flushes it to the store, giving up (records stay
    /// in the spool for the next start) after `deadline`.
    pub async fn stop(self, deadline: Duration) {
        self.stop.cancel();
        let task = self.task;
        tokio::pin!(task);
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            tracing::warn!(
                "the ledger could not be flushed in time; its records stay in the spool for the next start"
            );
            task.abort();
        }
    }
}

/// What one pass read: records to store, and how far each segment goes.
struct Pass {
    records: Vec<LedgerRecord>,
    progress: Vec<(Segment, spool::Chunk)>,
    buf: Vec<u8>,
}

impl<S: LedgerStore + 'static> Writer<S> {
    pub fn new(spool: Arc<Spool>, store: S, interval: Duration, metrics: LedgerMetrics) -> Self {
        Writer {
            spool,
            store,
            interval,
            metrics,
            stored_to: HashMap::new(),
            failing: false,
            scratch: Scratch::default(),
        }
    }

    pub fn spawn(self) -> WriterHandle {
        let stop = CancellationToken::new();
        let task = tokio::spawn(self.run(stop.clone()));
        WriterHandle { stop, task }
    }

    async fn run(mut self, stop: CancellationToken) {
        let mut backoff = self.interval;
        loop {
            let wait = if self.failing { backoff } else { self.interval };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.spool.wake.notified(), if !self.failing => {}
                _ = tokio::time::sleep(wait) => {}
            }
            if self.drain().await {
                backoff = self.interval;
            } else {
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        self.spool.seal_all();
        while !self.drain().await {
            tokio::time::sleep(backoff).await;
        }
        tracing::info!("ledger flushed");
    }

    /// Moves everything now in the spool to the store. False if the store
    /// failed (the records stay in the spool).
    pub async fn drain(&mut self) -> bool {
        loop {
            self.spool.take_pending();
            let pass = match self.read().await {
                Ok(pass) => pass,
                Err(e) => {
                    tracing::error!(error = %e, dir = %self.spool.dir().display(), "cannot read the ledger spool");
                    return false;
                }
            };
            let Pass {
                mut records,
                progress,
                buf,
            } = pass;
            let full = records.len() >= BATCH;
            let stored = self.write_batch(&records).await;
            records.clear();
            self.scratch = Scratch { buf, records };
            if !stored {
                return false;
            }
            self.advance(progress);
            self.metrics
                .spool_bytes
                .set(i64::try_from(self.spool.bytes()).unwrap_or(i64::MAX));
            if !full {
                return true;
            }
        }
    }

    /// Writes one batch; false if the store failed (logged once per outage).
    async fn write_batch(&mut self, records: &[LedgerRecord]) -> bool {
        if records.is_empty() {
            return true;
        }
        match self.store.append_ledger(records).await {
            Ok(_) => {
                self.metrics.written.inc_by(records.len() as u64);
                if self.failing {
                    tracing::info!("the store takes ledger records again");
                    self.failing = false;
                }
                true
            }
            Err(e) => {
                self.metrics.write_errors.inc();
                if !self.failing {
                    tracing::error!(error = %e, spooled_bytes = self.spool.bytes(), "cannot write the ledger to the store; records wait in the spool");
                    self.failing = true;
                }
                false
            }
        }
    }

    /// Reads up to a batch from the segments, off the async threads.
    async fn read(&mut self) -> std::io::Result<Pass> {
        let spool = Arc::clone(&self.spool);
        let stored_to = self.stored_to.clone();
        let Scratch { buf, records } = std::mem::take(&mut self.scratch);
        let read = tokio::task::spawn_blocking(move || {
            let mut pass = Pass {
                records,
                progress: Vec::new(),
                buf,
            };
            for segment in spool.segments()? {
                let room = BATCH - pass.records.len();
                if room == 0 {
                    break;
                }
                let from = stored_to.get(&segment.stem).copied().unwrap_or(0);
                let read =
                    spool::read_chunk(&segment.path, from, room, &mut pass.buf, &mut pass.records);
                let chunk = match read {
                    Ok(chunk) => chunk,
                    // Sealed (renamed) between listing and reading: next pass.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                pass.progress.push((segment, chunk));
            }
            Ok(pass)
        });
        read.await.map_err(std::io::Error::other)?
    }

    /// Records the stored progress; deletes sealed segments read to the end.
    fn advance(&mut self, progress: Vec<(Segment, spool::Chunk)>) {
        for (segment, chunk) in progress {
            if chunk.corrupt > 0 {
                tracing::warn!(segment = %segment.path.display(), lines = chunk.corrupt, "skipped spool lines that do not parse");
            }
            if !(segment.sealed && chunk.at_eof) {
                self.stored_to.insert(segment.stem, chunk.end);
                continue;
            }
            let len = std::fs::metadata(&segment.path).map_or(0, |m| m.len());
            if len > chunk.end {
                // Only a crash mid-write leaves a partial last line.
                tracing::warn!(segment = %segment.path.display(), bytes = len - chunk.end, "dropped a partial last line in the spool (written when the process died)");
            }
            match self.spool.remove(&segment) {
                Ok(()) => {
                    self.stored_to.remove(&segment.stem);
                }
                Err(e) => {
                    tracing::warn!(error = %e, segment = %segment.path.display(), "cannot delete a stored spool segment");
                    self.stored_to.insert(segment.stem, chunk.end);
                }
            }
        }
    }
}
