//! One JSON line per request, written off the request path.
//!
//! Lines go into a bounded queue that a thread of its own drains every
//! [`POLL`] into a buffered writer. The queue is polled rather than waited
//! on, so a request never wakes the writer (waking it per line cost more
//! CPU than writing the lines). When the sink cannot keep up, the full
//! queue drops lines rather than slow down requests.

use std::cell::RefCell;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    /// Writes a line stamped `at`: when the request ended (the line may
    /// be made a little later, off the proxy thread).
    pub fn write_at(&self, record: &AccessRecord<'_>, at: SystemTime) {
        let Some(queue) = &self.queue else { return };
        let mut buf = record.line(at);
        buf.push(b'\n');
        // Never blocks: a full queue (or a stopped writer) drops the line.
        let _ = queue.try_send(buf);
    }
}

impl AccessRecord<'_> {
    /// The line, `ts` first, written field by field: it is made for every
    /// request, and serde's flattening cost more than the rest of the log.
    /// Strings go through serde_json's escaping; the tests check the line
    /// against the derived `Serialize`.
    fn line(&self, now: SystemTime) -> Vec<u8> {
        let mut w = Line(Vec::with_capacity(512));
        w.0.extend_from_slice(b"{\"ts\":\"");
        write_ts(&mut w.0, now);
        w.0.push(b'"');
        w.str("request_id", self.request_id);
        w.str("trace_id", self.trace_id);
        w.str("client", self.client);
        w.str("protocol", self.protocol);
        w.str("method", self.method);
        w.str("path", self.path);
        w.str("service", self.service);
        w.uint("status", u64::from(self.status));
        if let Some(error) = self.error {
            w.str("error", error);
        }
        w.uint("bytes_in", self.bytes_in);
        w.uint("bytes_out", self.bytes_out);
        w.key("complete");
        w.0.extend_from_slice(if self.complete { b"true" } else { b"false" });
        w.float("duration_ms", self.duration_ms);
        if let Some(ms) = self.upstream_ms {
            w.float("upstream_ms", ms);
        }
        if let Some(upstream) = self.upstream {
            w.str("upstream", upstream);
        }
        w.uint("attempts", u64::from(self.attempts));
        if let Some(model) = self.model {
            w.str("model", model);
        }
        if let Some(units) = self.units {
            w.key("units");
            w.0.push(b'{');
            for (i, (unit, n)) in units.iter().enumerate() {
                if i > 0 {
                    w.0.push(b',');
                }
                w.string(unit);
                w.0.push(b':');
                w.0.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
            }
            w.0.push(b'}');
        }
        if let Some(cost) = self.cost_usd {
            w.str("cost_usd", cost);
        }
        if let Some(unpriced) = self.unpriced {
            w.str("unpriced", unpriced);
        }
        w.0.push(b'}');
        w.0
    }
}

/// A JSON object being written after its first field: every field starts
/// with a comma. Keys are the fixed names above and need no escaping.
struct Line(Vec<u8>);

impl Line {
    fn key(&mut self, key: &str) {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    /// A JSON string. Most values (ids, paths, names) need no escaping and
    /// are copied as they are; the rest go through serde_json, which
    /// escapes exactly the bytes checked here.
    fn string(&mut self, value: &str) {
        if needs_no_escape(value.as_bytes()) {
            self.0.push(b'"');
            self.0.extend_from_slice(value.as_bytes());
            self.0.push(b'"');
        } else {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.0, value);
        }
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.string(value);
    }

    fn uint(&mut self, key: &str, value: u64) {
        self.key(key);
        self.0
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// As serde_json writes an f64 (`null` if not finite).
    fn float(&mut self, key: &str, value: f64) {
        self.key(key);
        let _ = serde_json::to_writer(&mut self.0, &value);
    }
}

/// No byte of `bytes` is one JSON escapes: a control byte, `"` or `\\`.
/// Eight bytes are tested at a time (the request id, path and names of
/// every line go through here).
fn needs_no_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Nonzero exactly when some byte of `x` is below `n` (n <= 0x80).
    let has_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let has_byte = |x: u64, b: u8| has_below(x ^ (ONES * u64::from(b)), 1);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
        if has_below(x, 0x20) | has_byte(x, b'"') | has_byte(x, b'\\') != 0 {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// RFC 3339 UTC with milliseconds. The text up to the seconds is kept per
/// thread and made again only when the second turns.
fn write_ts(out: &mut Vec<u8>, now: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *at = secs;
            let whole = UNIX_EPOCH + Duration::from_secs(secs);
            *text = humantime::format_rfc3339_seconds(whole).to_string();
            text.pop(); // the `Z`, written after the milliseconds
        }
        out.extend_from_slice(text.as_bytes());
    });
    let ms = since.subsec_millis();
    let digit = |d: u32| b'0' + u8::try_from(d % 10).unwrap_or(0);
    out.extend_from_slice(&[b'.', digit(ms / 100), digit(ms / 10), digit(ms), b'Z']);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn record<'a>(units: &'a BTreeMap<String, u64>, odd: &'a str) -> AccessRecord<'a> {
        AccessRecord {
            request_id: "req-1",
            trace_id: "0af7651916cd43dd8448eb211c80319c",
            client: "127.0.0.1",
            protocol: "HTTP/1.1",
            method: "POST",
            path: odd,
            // Not ASCII, but nothing JSON escapes: copied as it is.
            service: "ch\u{e9}t\u{7f}",
            status: 200,
            error: None,
            bytes_in: 12,
            bytes_out: 3456,
            complete: true,
            duration_ms: 12.345678,
            upstream_ms: Some(0.25),
            upstream: Some("http://127.0.0.1:9000"),
            attempts: 2,
            model: Some(odd),
            units: Some(units),
            cost_usd: Some("0.001234"),
            unpriced: None,
        }
    }

    /// The hand-written line is the JSON the derived `Serialize` makes,
    /// with `ts` in front.
    fn same_as_serde(r: &AccessRecord<'_>, now: SystemTime) {
        let line = r.line(now);
        let parsed: serde_json::Value = serde_json::from_slice(&line).expect("the line is JSON");
        let mut expected = serde_json::to_value(r).unwrap();
        let ts = humantime::format_rfc3339_millis(now).to_string();
        expected["ts"] = serde_json::Value::String(ts);
        assert_eq!(parsed, expected, "{}", String::from_utf8_lossy(&line));
        assert!(line.starts_with(b"{\"ts\":"), "ts comes first");
    }

    #[test]
    fn escape_check_agrees_with_the_bytewise_one() {
        let bytewise = |s: &[u8]| s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
        for b in 0..=255u8 {
            // The byte at every place of a word and in the remainder.
            for at in 0..19 {
                let mut s = vec![b'a'; 19];
                s[at] = b;
                assert_eq!(needs_no_escape(&s), bytewise(&s), "byte {b:#x} at {at}");
            }
        }
        assert!(needs_no_escape("/v1/chat/completions?é=ü".as_bytes()));
        assert!(needs_no_escape(b""));
    }

    #[test]
    fn line_matches_the_serde_encoding() {
        let units = BTreeMap::from([
            ("input_tokens".to_string(), 800),
            ("output \"quoted\"".to_string(), u64::MAX),
        ]);
        let odd = "/caf\u{e9}/\"q\"\\back\nline\u{1}\u{7f}";
        let now = UNIX_EPOCH + Duration::from_millis(1_764_300_000_007);
        same_as_serde(&record(&units, odd), now);
        let empty = BTreeMap::new();
        let mut bare = record(&empty, "/");
        bare.error = Some("upstream_timeout");
        bare.upstream_ms = None;
        bare.upstream = None;
        bare.model = None;
        bare.units = None;
        bare.cost_usd = None;
        bare.unpriced = Some("model \"x\" has no price");
        bare.complete = false;
        bare.duration_ms = f64::NAN;
        same_as_serde(&bare, now);
        bare.units = Some(&empty);
        same_as_serde(&bare, now);
    }

    #[test]
    fn timestamps_match_humantime_across_seconds() {
        // The same thread, so the cached second is reused and remade.
        for ms in [
            0,
            1,
            999,
            1_000,
            1_010,
            59_999,
            86_400_123,
            1_764_300_000_450,
        ] {
            let now = UNIX_EPOCH + Duration::from_millis(ms);
            let mut out = Vec::new();
            write_ts(&mut out, now);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                humantime::format_rfc3339_millis(now).to_string()
            );
        }
    }
}
