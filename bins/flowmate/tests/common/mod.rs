//! Shared by the end-to-end suites: starting the real binary on a free port.

use serde_json::Value;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The first admin's password of every started binary.
pub const PASSWORD: &str = "end-to-end-password";

/// Starts the binary on port 0 with JSON logs (on stderr) and extra `envs`, and reads the bound
/// address from the logs.
#[allow(dead_code)] // not every suite needs it
pub async fn start_binary(dir: &std::path::Path, envs: &[(&str, &str)]) -> (Child, String) {
    let (child, base, _logs) = start_logged(dir, envs).await;
    (child, base)
}

/// The JSON log lines a started binary wrote after it listened.
pub type Logs = Arc<Mutex<Vec<Value>>>;

/// As [`start_binary`], also collecting the JSON log lines written after start-up.
#[allow(dead_code)] // not every suite reads the logs
pub async fn start_logged(dir: &std::path::Path, envs: &[(&str, &str)]) -> (Child, String, Logs) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowmate"))
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
    let logs = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(logs).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
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
    let sink = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(entry);
            }
        }
    });
    (child, format!("http://{address}"), logs)
}
