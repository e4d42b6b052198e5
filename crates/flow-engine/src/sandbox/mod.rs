//! Where user programs run: jq programs that [run in process](flow_domain::expr::JqProgram::runs_in_process)
//! on the caller's thread, every other jq program and every Rhai script in a pool of sandbox
//! processes ([`Sandbox`]).
//!
//! A sandbox process is this program started again with a `sandbox` argument (the `flowmate
//! sandbox` subcommand, or any binary that calls [`serve_stdio`]): it lowers its priority, sets
//! resource limits on itself (memory, files, no core dumps), and runs one job at a time read
//! from standard input ([`protocol`]). The pool kills a process whose job outlives its time
//! limit (its CPU is free at once) and starts another when one is needed; a process that dies
//! (a stack overflow, the memory limit) fails only its own job, with a plain message.

mod pool;
mod protocol;
mod rhai_script;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use flow_domain::expr::JqProgram;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

pub use pool::Sandbox;
pub use protocol::RhaiLimits;
pub use worker::serve_stdio;

/// The time limit of a step that sets none (`limits.timeMs`).
pub const DEFAULT_STEP_TIME: Duration = Duration::from_millis(1_000);

/// The environment variable through which a sandbox process learns its memory limit.
pub const MEMORY_ENV: &str = "FLOWMATE_SANDBOX_MEMORY_BYTES";

/// How to start sandbox processes and how far they may go.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The program to start (by default this process's own executable).
    pub program: PathBuf,
    /// Its arguments (by default `sandbox`).
    pub args: Vec<String>,
    /// Its environment (by default empty: a sandbox process inherits nothing, no secrets).
    /// A binary whose allocator reserves address space up front should turn that off here,
    /// since the reservation counts against the memory limit.
    pub env: Vec<(String, String)>,
    /// Processes at most, each running one job at a time.
    pub processes: usize,
    /// Memory one process may allocate (its data segment), in bytes.
    pub memory_bytes: u64,
    /// The longest a step may set with `limits.timeMs`.
    pub max_step_time: Duration,
    /// The deepest nesting of a program's output (the host's body nesting limit).
    pub max_output_nesting: usize,
}

impl Default for SandboxConfig {
    /// This executable with `sandbox`, two processes per core, 512 MiB each, steps of at most
    /// 30 s.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("flowmate")),
            args: vec!["sandbox".into()],
            env: Vec::new(),
            processes: (2 * cores).max(2),
            memory_bytes: 512 * 1024 * 1024,
            max_step_time: Duration::from_secs(30),
            max_output_nesting: flow_domain::expr::MAX_OUTPUT_NESTING,
        }
    }
}

impl SandboxConfig {
    /// The time limit of a step configured by `fields` (`limits.timeMs`, default
    /// [`DEFAULT_STEP_TIME`], at least 1 ms, at most [`SandboxConfig::max_step_time`]).
    pub fn step_time(&self, fields: &Map<String, Value>) -> Duration {
        let asked = fields
            .get("limits")
            .and_then(|l| l.get("timeMs"))
            .and_then(Value::as_u64)
            .map_or(DEFAULT_STEP_TIME, Duration::from_millis);
        asked.clamp(Duration::from_millis(1), self.max_step_time.max(Duration::from_millis(1)))
    }
}

/// What a jq run should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JqOutput {
    /// Every output value, at most this many.
    Values(usize),
    /// Whether the first output is truthy (one `Value::Bool`).
    Holds,
}

impl Sandbox {
    /// Runs `program` on `input`: on this thread when it runs in process, else in a sandbox
    /// process within `time` (cancelled with `cancel`).
    ///
    /// # Errors
    /// The program's error or the limit it hit, as a plain message.
    pub async fn run_jq(
        &self,
        program: &JqProgram,
        input: &Value,
        output: JqOutput,
        time: Duration,
        cancel: &CancellationToken,
    ) -> Result<Vec<Value>, String> {
        if program.runs_in_process() {
            return match output {
                JqOutput::Values(limit) => program.run_nested(input, limit, self.config().max_output_nesting),
                JqOutput::Holds => program.holds(input).map(|holds| vec![Value::Bool(holds)]),
            };
        }
        let job = protocol::Job::Jq {
            program: program.code().to_owned(),
            input: input.clone(),
            max_outputs: match output {
                JqOutput::Values(limit) => Some(limit),
                JqOutput::Holds => None,
            },
            max_nesting: self.config().max_output_nesting,
        };
        self.run(&job, time, cancel).await
    }

    /// Whether `program`'s first output on `input` is truthy; see [`Sandbox::run_jq`].
    ///
    /// # Errors
    /// As [`Sandbox::run_jq`].
    pub async fn jq_holds(
        &self,
        program: &JqProgram,
        input: &Value,
        time: Duration,
        cancel: &CancellationToken,
    ) -> Result<bool, String> {
        let out = self.run_jq(program, input, JqOutput::Holds, time, cancel).await?;
        Ok(matches!(out.first(), Some(Value::Bool(true))))
    }

    /// Runs the Rhai `script` on `input` (seen by the script as `msg`) in a sandbox process.
    ///
    /// # Errors
    /// The script's error or the limit it hit, as a plain message.
    pub async fn run_rhai(
        &self,
        script: &str,
        input: &Value,
        limits: RhaiLimits,
        cancel: &CancellationToken,
    ) -> Result<Vec<Value>, String> {
        let time = Duration::from_millis(limits.time_ms);
        let job = protocol::Job::Rhai { script: script.to_owned(), input: input.clone(), limits };
        self.run(&job, time, cancel).await
    }
}
