//! The spool: append-only segment files in one directory, owned by one
//! process at a time (an exclusive lock on `spool.lock`).
//!
//! Appends go to one of several shards, chosen per thread, so proxy
//! workers (one thread each) never wait on each other. Each shard writes
//! `{boot}-{shard}-{seq}.open` and renames it to `.jsonl` when it is full
//! (sealed). Files of an earlier run are sealed whatever their name: the
//! process that wrote them is gone.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use blastdoor_store::{LedgerEntry, LedgerRecord};
use tokio::sync::Notify;

/// A segment is sealed and a new one started past this size.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Bytes set aside for one spool line before it is written.
const LINE_CAPACITY: usize = 512;
const OPEN: &str = "open";
const SEALED: &str = "jsonl";

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the spool is full ({max} bytes): the store has not kept up")]
    Full { max: u64 },
    #[error("cannot write to the spool: {0}")]
    Io(#[from] io::Error),
    #[error("cannot encode the record: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Names this run's segments; segments of other boots are sealed.
    boot: String,
    shards: Box<[Mutex<Shard>]>,
    /// Bytes in all segments not yet deleted.
    bytes: AtomicU64,
    max_bytes: u64,
    /// Records appended since the writer last drained.
    pending: AtomicU64,
    /// Wakes the writer when `pending` reaches `batch`.
    pub(crate) wake: Notify,
    batch: u64,
    /// Held for the spool's life: one process per spool directory.
    _lock: File,
}

#[derive(Debug, Default)]
struct Shard {
    index: usize,
    file: Option<File>,
    path: PathBuf,
    len: u64,
    seq: u64,
}

/// A segment file as the writer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    /// The name without its extension: stable across the seal rename.
    pub stem: String,
    /// No more writes will come.
    pub sealed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the spool directory {0}: {1}")]
    Create(PathBuf, #[source] io::Error),
    #[error("the spool directory {0} is in use by another blastdoor process")]
    Locked(PathBuf),
    #[error("cannot read the spool directory {0}: {1}")]
    Io(PathBuf, #[source] io::Error),
}

impl Spool {
    /// Opens (creating) the spool directory and takes its lock. `shards`
    /// is how many threads append concurrently without contention.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        shards: usize,
        batch: u64,
    ) -> Result<Arc<Spool>, OpenError> {
        fs::create_dir_all(dir).map_err(|e| OpenError::Create(dir.to_path_buf(), e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("spool.lock"))
            .map_err(|e| OpenError::Create(dir.to_path_buf(), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(OpenError::Locked(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(OpenError::Io(dir.to_path_buf(), e)),
        }
        let spool = Spool {
            dir: dir.to_path_buf(),
            boot: format!("{:016x}", fastrand::u64(..)),
            shards: (0..shards.max(1))
                .map(|index| {
                    Mutex::new(Shard {
                        index,
                        ..Shard::default()
                    })
                })
                .collect(),
            bytes: AtomicU64::new(0),
            max_bytes,
            pending: AtomicU64::new(0),
            wake: Notify::new(),
            batch: batch.max(1),
            _lock: lock,
        };
        let existing: u64 = spool
            .segments()
            .map_err(|e| OpenError::Io(dir.to_path_buf(), e))?
            .iter()
            .filter_map(|s| fs::metadata(&s.path).ok())
            .map(|m| m.len())
            .sum();
        spool.bytes.store(existing, Ordering::Relaxed);
        Ok(Arc::new(spool))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes waiting in the spool.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Writes one record as one line with one `write`: once this returns,
    /// the record survives the process being killed.
    pub fn append(&self, record: &LedgerEntry<'_>) -> Result<(), AppendError> {
        // Room for a usual record, so the line is not grown as it is written.
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        serde_json::to_writer(&mut line, record)?;
        line.push(b'\n');
        let len = line.len() as u64;
        if self.bytes.load(Ordering::Relaxed) + len > self.max_bytes {
            return Err(AppendError::Full {
                max: self.max_bytes,
            });
        }
        let shard = &self.shards[shard_index(self.shards.len())];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        if shard.file.is_none() || shard.len >= SEGMENT_BYTES {
            self.rotate(&mut shard)?;
        }
        if let Some(file) = shard.file.as_mut() {
            // O_APPEND: one write puts the whole line at the end.
            file.write_all(&line)?;
            shard.len += len;
        }
        drop(shard);
        self.bytes.fetch_add(len, Ordering::Relaxed);
        if self.pending.fetch_add(1, Ordering::Relaxed) + 1 == self.batch {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Seals the shard's current segment and opens the next one.
    fn rotate(&self, shard: &mut Shard) -> io::Result<()> {
        self.seal(shard)?;
        shard.seq += 1;
        shard.path = self.dir.join(format!(
            "{}-{:03}-{:08}.{OPEN}",
            self.boot, shard.index, shard.seq
        ));
        shard.file = Some(
            OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&shard.path)?,
        );
        shard.len = 0;
        Ok(())
    }

    fn seal(&self, shard: &mut Shard) -> io::Result<()> {
        if shard.file.take().is_some() {
            fs::rename(&shard.path, shard.path.with_extension(SEALED))?;
        }
        Ok(())
    }

    /// Seals every segment: at stop, once no more requests will settle.
    pub fn seal_all(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.seal(&mut shard) {
                tracing::warn!(error = %e, "cannot seal a spool segment");
            }
        }
    }

    /// Every segment in the directory, oldest name first.
    pub fn segments(&self) -> io::Result<Vec<Segment>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let (Some(stem), Some(ext)) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|s| s.to_str()),
            ) else {
                continue;
            };
            let sealed = match ext {
                SEALED => true,
                OPEN => !stem.starts_with(&self.boot),
                _ => continue,
            };
            out.push(Segment {
                stem: stem.to_string(),
                path: path.clone(),
                sealed,
            });
        }
        out.sort_by(|a, b| a.stem.cmp(&b.stem));
        Ok(out)
    }

    /// Resets the count that wakes the writer; called as it drains.
    pub(crate) fn take_pending(&self) -> u64 {
        self.pending.swap(0, Ordering::Relaxed)
    }

    /// Deletes a segment whose records are all stored.
    pub(crate) fn remove(&self, segment: &Segment) -> io::Result<()> {
        let len = fs::metadata(&segment.path).map(|m| m.len()).unwrap_or(0);
        fs::remove_file(&segment.path)?;
        self.bytes
            .fetch_sub(len.min(self.bytes()), Ordering::Relaxed);
        Ok(())
    }
}

/// The shard of the calling thread: threads are spread over the shards in
/// the order they first append.
fn shard_index(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<Option<usize>> = const { Cell::new(None) };
    }
    let mine = MINE.with(|m| {
        m.get().unwrap_or_else(|| {
            let assigned = NEXT.fetch_add(1, Ordering::Relaxed);
            m.set(Some(assigned));
            assigned
        })
    });
    mine % shards
}

/// What one read of a segment found (its records go to the caller's list).
#[derive(Debug, Default)]
pub struct Chunk {
    /// Records read.
    pub records: usize,
    /// Where the next read starts.
    pub end: u64,
    /// Lines that did not parse (skipped, and logged by the writer).
    pub corrupt: u64,
    /// The segment has no more complete lines after `end`.
    pub at_eof: bool,
}

/// The most read from a segment at once.
const READ_BYTES: u64 = 4 * 1024 * 1024;

/// Reads complete lines from `offset` into `records`, at most `max` of
/// them. `buf` is the caller's and kept from one read to the next: a fresh
/// buffer of megabytes per read cost more than the parsing, in the kernel
/// zeroing the new pages.
pub fn read_chunk(
    path: &Path,
    offset: u64,
    max: usize,
    buf: &mut Vec<u8>,
    records: &mut Vec<LedgerRecord>,
) -> io::Result<Chunk> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    buf.clear();
    (&mut file).take(READ_BYTES).read_to_end(buf)?;
    let mut chunk = Chunk {
        end: offset,
        ..Chunk::default()
    };
    let mut start = 0;
    while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
        if chunk.records >= max {
            return Ok(chunk);
        }
        let line = &buf[start..start + nl];
        // The line is checked as UTF-8 once, whole: parsing from bytes
        // checks each string on its own, which cost more than the rest.
        let parsed = std::str::from_utf8(line)
            .ok()
            .and_then(|line| serde_json::from_str::<LedgerRecord>(line).ok());
        match parsed {
            Some(r) => {
                records.push(r);
                chunk.records += 1;
            }
            None => chunk.corrupt += 1,
        }
        start += nl + 1;
        chunk.end = offset + start as u64;
    }
    if start == 0 && buf.len() as u64 == READ_BYTES {
        // A line longer than any record can be: skip it rather than stall.
        chunk.corrupt += 1;
        chunk.end = offset + READ_BYTES;
        return Ok(chunk);
    }
    chunk.at_eof = (buf.len() as u64) < READ_BYTES;
    Ok(chunk)
}
