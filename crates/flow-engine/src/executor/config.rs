//! How an [`super::Executor`] runs: its process identity, lease length, concurrency bounds,
//! attempt limit and recovery thresholds. The binary fills this from its own configuration.

use std::time::Duration;

use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::model::ProcessIdentity;

/// Settings of one executor (one worker process).
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// This process incarnation, the owner of its leases. Leases held by an earlier
    /// incarnation of the same process name are taken over by the first recovery pass.
    pub process: ProcessIdentity,
    /// How long a claim (and each renewal) holds an execution; renewed every third of it.
    pub lease: Duration,
    /// Executions run at the same time by this worker, over all flows.
    pub max_concurrent: usize,
    /// Executions of one flow run at the same time by this worker.
    pub max_per_flow: usize,
    /// Runs of one execution (each counted before it begins) before it is failed because the
    /// process running it kept dying (`FLOWMATE_EXECUTION_MAX_ATTEMPTS`).
    pub max_attempts: AttemptLimit,
    /// A queued execution older than this is assumed to have lost its `flow.execute` and is
    /// announced again by recovery.
    pub queued_grace: Duration,
    /// Whether a `flow.execute` that was published dies with the process (the in-process bus):
    /// then the first recovery pass announces again every execution queued before the start,
    /// without waiting for `queued_grace`.
    pub events_die_with_process: bool,
    /// Whether components may call loopback, private and link-local addresses.
    pub allow_private_networks: bool,
    /// Step invocations allowed in one execution before it is failed.
    pub max_step_runs: usize,
}

impl Default for ExecutorConfig {
    /// A process of its own (random name), 30 s leases, 64 concurrent executions (32 per
    /// flow), 3 attempts, 60 s queued grace, events kept by the bus, public networks only,
    /// 10 000 step runs.
    fn default() -> Self {
        Self {
            process: ProcessIdentity::unique(),
            lease: Duration::from_secs(30),
            max_concurrent: 64,
            max_per_flow: 32,
            max_attempts: AttemptLimit::DEFAULT,
            queued_grace: Duration::from_secs(60),
            events_die_with_process: false,
            allow_private_networks: false,
            max_step_runs: 10_000,
        }
    }
}
