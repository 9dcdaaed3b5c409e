//! One JSON line per request, written off the request path.
//!
//! Lines go through `tracing-appender`'s non-blocking writer: a bounded
//! queue drained by a dedicated thread. When the sink cannot keep up the
//! queue drops lines (and counts them) rather than slow down requests.

use std::io::{BufWriter, Write};
use std::time::SystemTime;

use serde::Serialize;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

use blastdoor_config::{AccessLog as Sink, LogFile, Rotation};
use tracing_appender::rolling::{self, RollingFileAppender};

/// Lines buffered before the writer starts dropping them.
const QUEUE_LINES: usize = 64 * 1024;
/// Bytes the writer thread gathers before a write.
const WRITE_BUFFER: usize = 64 * 1024;

/// One access-log line. Field names are documented in docs/access-log.md.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub trace_id: &'a str,
    pub client: String,
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
    writer: Option<NonBlocking>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("enabled", &self.writer.is_some())
            .finish()
    }
}

impl AccessLog {
    /// Opens the sink. The guard flushes queued lines when dropped: keep it
    /// alive until shutdown.
    pub fn open(sink: &Sink) -> std::io::Result<(AccessLog, Option<WorkerGuard>)> {
        let builder = || {
            NonBlockingBuilder::default()
                .lossy(true)
                .buffered_lines_limit(QUEUE_LINES)
                .thread_name("access-log")
        };
        // The writer thread flushes whenever its queue runs dry: under load
        // many lines share one write(2); when idle each goes out at once.
        let buffered = |w| BufWriter::with_capacity(WRITE_BUFFER, w);
        let (writer, guard) = match sink {
            Sink::Off => return Ok((AccessLog { writer: None }, None)),
            Sink::Stdout => builder().finish(buffered(
                Box::new(std::io::stdout()) as Box<dyn Write + Send>
            )),
            Sink::Stderr => builder().finish(buffered(Box::new(std::io::stderr()))),
            Sink::File(file) if file.rotation == Rotation::Never => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file.path)?;
                builder().finish(buffered(Box::new(file)))
            }
            Sink::File(file) => builder().finish(buffered(Box::new(rolling(file)?))),
        };
        Ok((
            AccessLog {
                writer: Some(writer),
            },
            Some(guard),
        ))
    }

    pub fn disabled() -> AccessLog {
        AccessLog { writer: None }
    }

    pub fn enabled(&self) -> bool {
        self.writer.is_some()
    }

    pub fn write(&self, record: &AccessRecord<'_>) {
        let Some(writer) = &self.writer else { return };
        let line = Line {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            record,
        };
        let Ok(mut buf) = serde_json::to_vec(&line) else {
            return;
        };
        buf.push(b'\n');
        // The non-blocking writer never blocks; a full queue drops the line.
        let _ = writer.clone().write_all(&buf);
    }
}
