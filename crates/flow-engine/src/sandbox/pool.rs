//! The engine's side: a pool of sandbox processes. A job waits for a free process (within its
//! time limit), is written to it, and its reply read back; a process whose job runs past the
//! limit, is cancelled, or dies is killed and forgotten, and the next job that needs one starts
//! a fresh process.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SandboxConfig;
use super::protocol::{Job, MAX_FRAME_BYTES, Reply};

/// How long past its limit a job may answer (a Rhai script stops itself at the limit; this
/// leaves its reply time to arrive before the process is killed).
const REPLY_GRACE: Duration = Duration::from_millis(100);

/// The bytes of a process's standard error kept to explain its death.
const STDERR_TAIL_BYTES: usize = 4096;

/// A pool of sandbox processes; see the module documentation.
pub struct Sandbox {
    config: SandboxConfig,
    slots: Semaphore,
    idle: Mutex<Vec<Process>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new(SandboxConfig::default())
    }
}

/// Why an exchange with a process did not produce a reply.
enum Failure {
    /// The job ran past its time limit.
    Timeout,
    /// The step was cancelled.
    Cancelled,
    /// The process could not be reached or died.
    Broken(String),
}

impl Sandbox {
    /// A pool with no process yet (they start when jobs need them).
    pub fn new(config: SandboxConfig) -> Self {
        Self { slots: Semaphore::new(config.processes.max(1)), config, idle: Mutex::new(Vec::new()) }
    }

    /// Jobs running (or starting) in a sandbox process now.
    pub fn busy(&self) -> usize {
        self.config.processes.max(1).saturating_sub(self.slots.available_permits())
    }

    /// The pool's settings.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Runs `job` in a sandbox process within `time` (waiting for a free process included).
    pub(crate) async fn run(
        &self,
        job: &Job,
        time: Duration,
        cancel: &CancellationToken,
    ) -> Result<Vec<Value>, String> {
        let frame = serde_json::to_vec(job).map_err(|e| format!("job not serializable: {e}"))?;
        if frame.len() > MAX_FRAME_BYTES {
            return Err(format!("input larger than {MAX_FRAME_BYTES} bytes"));
        }
        let limit_ms = time.as_millis();
        let deadline = Instant::now() + time;
        let _slot = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err("cancelled".into()),
            slot = self.slots.acquire() => slot.map_err(|_| "the sandbox is closed".to_string())?,
            () = tokio::time::sleep_until(deadline) => {
                return Err(format!(
                    "time limit of {limit_ms} ms exceeded waiting for one of {} busy sandbox processes",
                    self.config.processes
                ));
            }
        };
        let mut process = match self.take_idle() {
            Some(process) => process,
            None => {
                Process::start(&self.config).map_err(|e| format!("cannot start a sandbox process: {e}"))?
            }
        };
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Failure::Cancelled),
            () = tokio::time::sleep_until(deadline + REPLY_GRACE) => Err(Failure::Timeout),
            reply = process.exchange(&frame) => reply.map_err(|e| Failure::Broken(e.to_string())),
        };
        match outcome {
            Ok(reply) => {
                self.put_idle(process);
                match reply {
                    Reply::Ok(values) => Ok(values),
                    Reply::Err(message) => Err(message),
                }
            }
            Err(Failure::Timeout) => {
                process.kill();
                Err(format!("time limit of {limit_ms} ms exceeded"))
            }
            Err(Failure::Cancelled) => {
                process.kill();
                Err("cancelled".into())
            }
            Err(Failure::Broken(error)) => Err(process.death(&error, self.config.memory_bytes).await),
        }
    }

    fn take_idle(&self) -> Option<Process> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    fn put_idle(&self, process: Process) {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(process);
    }
}

/// One sandbox process.
struct Process {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_done: tokio::task::JoinHandle<()>,
}

impl Process {
    fn start(config: &SandboxConfig) -> std::io::Result<Self> {
        let mut child = Command::new(&config.program)
            .args(&config.args)
            .env_clear()
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .env(super::MEMORY_ENV, config.memory_bytes.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(std::io::Error::other("sandbox process without pipes"));
        };
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let tail = Arc::clone(&stderr);
        let stderr_done = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut tail = tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                tail.extend_from_slice(&buf[..n]);
                let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
                tail.drain(..excess);
            }
        });
        Ok(Self { child, stdin, stdout, stderr, stderr_done })
    }

    /// Writes one job and reads its reply.
    async fn exchange(&mut self, frame: &[u8]) -> std::io::Result<Reply> {
        let len = u32::try_from(frame.len()).map_err(|_| std::io::Error::other("job too large"))?;
        self.stdin.write_all(&len.to_be_bytes()).await?;
        self.stdin.write_all(frame).await?;
        self.stdin.flush().await?;
        let len = usize::try_from(self.stdout.read_u32().await?).unwrap_or(usize::MAX);
        if len > MAX_FRAME_BYTES {
            return Err(std::io::Error::other("reply too large"));
        }
        let mut reply = vec![0; len];
        self.stdout.read_exact(&mut reply).await?;
        serde_json::from_slice(&reply).map_err(std::io::Error::other)
    }

    /// Kills the process now (its CPU is free at once); it is reaped in the background.
    fn kill(mut self) {
        let _ = self.child.start_kill();
    }

    /// Why the process stopped answering, as a step's error: what it wrote last and how it
    /// ended, in plain words.
    async fn death(mut self, error: &str, memory_bytes: u64) -> String {
        let status = tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await;
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.stderr_done).await;
        let tail =
            String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                .into_owned();
        if tail.contains("overflowed its stack") {
            "stack overflow: the program recursed or nested too deeply".into()
        } else if tail.contains("memory allocation") || tail.contains("capacity overflow") {
            format!("memory limit of {} MiB exceeded", memory_bytes / (1024 * 1024))
        } else {
            match status {
                Ok(Ok(status)) => match status.signal() {
                    Some(signal) => format!("the sandbox process was killed by signal {signal}"),
                    None => format!("the sandbox process exited ({status})"),
                },
                _ => format!("the sandbox process stopped answering ({error})"),
            }
        }
    }
}
