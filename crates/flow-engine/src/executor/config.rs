//! How an [`super::Executor`] runs: its worker identity, lease length, concurrency bounds and
//! recovery thresholds. The binary fills this from its own configuration.

use std::time::Duration;

/// Settings of one executor (one worker process).
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// This worker's name in leases; unique per process (e.g. host name plus a random suffix).
    pub worker_id: String,
    /// How long a claim (and each renewal) holds an execution; renewed every third of it.
    pub lease: Duration,
    /// Executions run at the same time by this worker, over all flows.
    pub max_concurrent: usize,
    /// Executions of one flow run at the same time by this worker.
    pub max_per_flow: usize,
    /// Lease expiries (dead workers) tolerated before an execution is failed.
    pub max_lease_attempts: u32,
    /// A queued execution older than this is assumed to have lost its `flow.execute` and is
    /// announced again by recovery.
    pub queued_grace: Duration,
    /// Whether components may call loopback, private and link-local addresses.
    pub allow_private_networks: bool,
    /// Step invocations allowed in one execution before it is failed.
    pub max_step_runs: usize,
}

impl Default for ExecutorConfig {
    /// A random worker id, 30 s leases, 64 concurrent executions (32 per flow), 3 lease
    /// attempts, 60 s queued grace, public networks only, 10 000 step runs.
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            lease: Duration::from_secs(30),
            max_concurrent: 64,
            max_per_flow: 32,
            max_lease_attempts: 3,
            queued_grace: Duration::from_secs(60),
            allow_private_networks: false,
            max_step_runs: 10_000,
        }
    }
}
