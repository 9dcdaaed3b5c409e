//! One JSON line per request, written off the request path.
//!
//! Lines go into a bounded queue that a thread of its own drains every
//! [`POLL`] into a buffered writer. The queue is polled rather than waited
//! on, so a request never wakes the writer (waking it per line cost more
//! CPU than writing the lines). When the sink cannot keep up, the full
//! queue drops lines rather than slow down requests.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use blastdoor_config::{AccessLog as Sink, LogFile, Rotation};
use tracing_appender::rolling::{self, RollingFileAppender};

/// Lines queued before new ones are dropped.
const QUEUE_LINES: usize = 64 * 1024;
/// Bytes the writer thread gathers before a write.
const WRITE_BUFFER: usize = 64 * 1024;
/// How often the writer drains the queue: lines reach the sink within it.
const POLL: Duration = Duration::from_millis(50);

/// One access-log line. Field names are documented in docs/access-log.md.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub trace_id: &'a str,
    pub client: &'a str,
    pub protocol: &'static str,
    pub method: &'a str,
    pub path: &'a str,
    pub service: &'a str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// False when the caller went away or the stream broke mid-response.
    pub complete: bool,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a str>,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
    /// Units read from the response by the service's meter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<&'a std::collections::BTreeMap<String, u64>>,
    /// Decimal dollars, exact to the micro-dollar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<&'a str>,
    /// Why the usage could not be fully priced, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpriced: Option<&'a str>,
}

/// A file that starts anew on a schedule as `{name}.{date-time}` beside
/// the configured path, keeping the newest `max_files`.
fn rolling(file: &LogFile) -> std::io::Result<RollingFileAppender> {
    let dir = match file.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = file
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("access.log");
    let mut builder = RollingFileAppender::builder()
        .rotation(match file.rotation {
            Rotation::Minutely => rolling::Rotation::MINUTELY,
            Rotation::Hourly => rolling::Rotation::HOURLY,
            Rotation::Daily | Rotation::Never => rolling::Rotation::DAILY,
        })
        .filename_prefix(name);
    if let Some(n) = file.max_files {
        builder = builder.max_log_files(n);
    }
    builder.build(dir).map_err(std::io::Error::other)
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    #[serde(flatten)]
    record: &'a AccessRecord<'a>,
}

/// The access-log writer; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    queue: Option<SyncSender<Vec<u8>>>,
}

/// Stops the writer thread when dropped, after it wrote what was queued.
pub struct AccessLogFlush {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for AccessLogFlush {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for AccessLogFlush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLogFlush")
    }
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("enabled", &self.queue.is_some())
            .finish()
    }
}

/// The writer thread: drain, write, flush, sleep; a last round at stop.
fn spawn_writer(
    sink: Box<dyn Write + Send>,
    queue: Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || {
            let mut out = BufWriter::with_capacity(WRITE_BUFFER, sink);
            loop {
                let stopping = stop.load(Ordering::Acquire);
                let mut gone = false;
                loop {
                    match queue.try_recv() {
                        Ok(line) => {
                            // A sink that fails (a full disk) loses lines,
                            // never requests.
                            let _ = out.write_all(&line);
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            gone = true;
                            break;
                        }
                    }
                }
                let _ = out.flush();
                if stopping || gone {
                    return;
                }
                std::thread::park_timeout(POLL);
            }
        })
}

impl AccessLog {
    /// Opens the sink. The guard writes what is queued and stops the writer
    /// when dropped: keep it alive until shutdown.
    pub fn open(sink: &Sink) -> std::io::Result<(AccessLog, Option<AccessLogFlush>)> {
        let out: Box<dyn Write + Send> = match sink {
            Sink::Off => return Ok((AccessLog::disabled(), None)),
            Sink::Stdout => Box::new(std::io::stdout()),
            Sink::Stderr => Box::new(std::io::stderr()),
            Sink::File(file) if file.rotation == Rotation::Never => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file.path)?,
            ),
            Sink::File(file) => Box::new(rolling(file)?),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_LINES);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = spawn_writer(out, rx, Arc::clone(&stop))?;
        Ok((
            AccessLog { queue: Some(tx) },
            Some(AccessLogFlush {
                stop,
                thread: Some(thread),
            }),
        ))
    }

    pub fn disabled() -> AccessLog {
        AccessLog { queue: None }
    }

    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    pub fn write(&self, record: &AccessRecord<'_>) {
        let Some(queue) = &self.queue else { return };
        let line = Line {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            record,
        };
        let Ok(mut buf) = serde_json::to_vec(&line) else {
            return;
        };
        buf.push(b'\n');
        // Never blocks: a full queue (or a stopped writer) drops the line.
        let _ = queue.try_send(buf);
    }
}
