//! The real `blastdoor` binary on port 0 with a temp config.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::WAIT;

/// Settings every test config gets unless it sets its own `[server]`.
pub const TEST_SERVER: &str = r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2
shutdown_timeout = "10s"
reload_poll_interval = "100ms"
"#;

pub struct GatewayProcess {
    bin: String,
    child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts `bin serve` with `config` (TOML); waits until it listens.
    /// Without a `[server]` table, [`TEST_SERVER`] is prepended.
    pub fn start(bin: &str, config: &str) -> GatewayProcess {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("blastdoor.toml");
        let text = if config.contains("[server]") {
            config.to_string()
        } else {
            format!("{TEST_SERVER}\n{config}")
        };
        std::fs::write(&config_path, text).unwrap();
        let (child, proxy, admin, stdout, stderr) = spawn(bin, &config_path);
        GatewayProcess {
            bin: bin.to_string(),
            child,
            proxy,
            admin,
            config_path,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    /// Starts the gateway again on the same config and folder (store,
    /// spool) after it exited or was killed.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, proxy, admin, stdout, stderr) = spawn(&self.bin, &self.config_path);
        (self.child, self.proxy, self.admin, self.stdout, self.stderr) =
            (child, proxy, admin, stdout, stderr);
    }

    /// The folder of the config file, where the default store and spool live.
    pub fn dir(&self) -> &std::path::Path {
        self.config_path.parent().unwrap()
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Access-log lines (stdout) so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Diagnostic log (stderr) so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the diagnostic log contains `needle` (bounded).
    pub fn wait_for_log(&self, needle: &str) {
        let start = Instant::now();
        while !self.stderr().contains(needle) {
            assert!(
                start.elapsed() < WAIT,
                "log never showed {needle:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Counts occurrences of `needle` in the diagnostic log.
    pub fn log_count(&self, needle: &str) -> usize {
        self.stderr().matches(needle).count()
    }

    pub fn write_config(&self, config: &str) {
        let text = if config.contains("[server]") {
            config.to_string()
        } else {
            format!("{TEST_SERVER}\n{config}")
        };
        // Write then rename, as editors and deploy tools do, so the gateway
        // never reads a half-written file.
        let tmp = self.config_path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit (bounded).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < WAIT,
                "gateway did not exit:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

type Spawned = (
    Child,
    SocketAddr,
    SocketAddr,
    Arc<Mutex<String>>,
    Arc<Mutex<String>>,
);

/// Runs `bin serve --config path`; waits until it listens.
fn spawn(bin: &str, config_path: &std::path::Path) -> Spawned {
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config_path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    collect(child.stdout.take().unwrap(), Arc::clone(&stdout), None);
    let (tx, rx) = mpsc::channel();
    collect(child.stderr.take().unwrap(), Arc::clone(&stderr), Some(tx));
    let (proxy, admin) = match rx.recv_timeout(WAIT) {
        Ok(addrs) => addrs,
        Err(_) => {
            let _ = child.kill();
            panic!("gateway did not start:\n{}", stderr.lock().unwrap());
        }
    };
    (child, proxy, admin, stdout, stderr)
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a pipe into `sink` on a thread; with `ready`, reports the
/// addresses from the "blastdoor listening" line.
fn collect(
    pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    ready: Option<mpsc::Sender<(SocketAddr, SocketAddr)>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if let (Some(tx), true) = (&ready, line.contains("blastdoor listening"))
                && let (Some(p), Some(a)) = (field(&line, "proxy="), field(&line, "admin="))
            {
                let _ = tx.send((p, a));
            }
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

fn field(line: &str, key: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}
