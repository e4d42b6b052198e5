//! The real `flowmate` binary as a child process, for the suites where the process itself is
//! the subject (it is killed, restarted, or must survive hostile input): started with JSON logs
//! on a free port, its bound address read from its log, every later log line kept.
//!
//! The binary is the one built next to the test executable (`target/<profile>/flowmate`); the
//! test command builds it before running the tests.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The first admin's password of every started binary.
pub const PASSWORD: &str = "real-binary-password";

/// The JSON log lines a started binary wrote after it listened.
pub type Logs = Arc<Mutex<Vec<Value>>>;

/// The `flowmate` binary next to the running test executable: the test executable lives in
/// `target/<profile>/deps/`, the binary in `target/<profile>/`.
///
/// # Panics
/// When the binary is missing (build it first: `cargo build -p flowmate`).
pub fn binary_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join(format!("flowmate{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "{} is missing: build it first (cargo build -p flowmate)", binary.display());
    binary
}

/// A running `flowmate` process.
pub struct RealBinary {
    child: Child,
    /// `http://<address>` it listens on.
    pub base: String,
    /// Its JSON log lines since it listened.
    pub logs: Logs,
}

impl RealBinary {
    /// Starts the binary in `dir` with a clean environment plus `envs` (listening on
    /// 127.0.0.1:0 unless `envs` says otherwise, the first admin's password [`PASSWORD`], JSON
    /// logs at `info`), and waits (at most 30 s) until it listens.
    ///
    /// # Panics
    /// When it does not start or exits before listening.
    pub async fn start(dir: &Path, envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary_path())
            .current_dir(dir)
            .env_clear()
            .env("FLOWMATE_LISTEN", "127.0.0.1:0")
            .env("FLOWMATE_ADMIN_PASSWORD", PASSWORD)
            .env("FLOWMATE_LOG_FORMAT", "json")
            .env("FLOWMATE_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the flowmate binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let address = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read the log") {
                let Ok(entry) = serde_json::from_str::<Value>(&line) else { continue };
                if entry["message"] == "FlowMate is listening" {
                    return entry["address"].as_str().expect("address field").to_string();
                }
            }
            panic!("the binary exited before listening")
        })
        .await
        .expect("the binary listens within 30 s");
        // Keep draining the log (so the child never blocks on a full pipe), keeping every entry.
        let logs: Logs = Arc::default();
        let sink = Arc::clone(&logs);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(entry);
                }
            }
        });
        Self { child, base: format!("http://{address}"), logs }
    }

    /// Kills the process with SIGKILL (no shutdown of any kind, as a crash) and waits until it
    /// is gone.
    ///
    /// # Panics
    /// When it cannot be killed.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL the binary");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the killed binary exits")
            .expect("its exit status");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log lines with this `message` so far.
    pub fn logged(&self, message: &str) -> Vec<Value> {
        let logs = self.logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        logs.iter().filter(|entry| entry["message"] == message).cloned().collect()
    }
}
