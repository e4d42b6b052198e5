//! Recovery of executions no worker is looking after: running ones whose lease ran out (their
//! worker died) go back to the queue, or fail after `max_lease_attempts` losses; queued ones
//! older than `queued_grace` (their `flow.execute` was lost with a process) are announced again.
//! Every change is a compare-and-swap save, so concurrent recoverers on several instances act
//! once per execution.

use std::sync::Arc;
use std::time::Duration;

use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::execution_lifecycle::{ExecutionInput, transition};
use flow_domain::model::{Execution, ExecutionStatus};
use flow_domain::services::executions::apply_effects;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Executor;
use crate::runtime::spawn_periodic;

/// How many executions one recovery pass looks at, per kind.
const RECOVERY_BATCH: u32 = 100;

impl Executor {
    /// One recovery pass; returns how many executions it re-queued, failed or announced again.
    ///
    /// # Errors
    /// Storage failures (the next pass tries again).
    pub async fn recover_once(&self) -> anyhow::Result<usize> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let mut acted = 0;
        for mut execution in shared.executions.list_expired_leases(now, RECOVERY_BATCH).await? {
            let input = ExecutionInput::LeaseExpired {
                attempts: execution.lease_attempts,
                max_attempts: shared.config.max_lease_attempts,
            };
            let step = transition(execution.status, &input)?;
            if step.is_noop(execution.status) {
                continue;
            }
            let lost_by = execution.lease_owner.clone().unwrap_or_default();
            execution.status = step.status;
            apply_effects(&mut execution, &step.effects, now);
            let events = match execution.status {
                ExecutionStatus::Queued => vec![Event::flow_execute(execution.flow_id, execution.id, now)],
                _ => Vec::new(),
            };
            if saved(shared.executions.save(&execution, &events).await)? {
                acted += 1;
                tracing::info!(
                    flow_id = %execution.flow_id, execution_id = %execution.id, worker = %lost_by,
                    status = %execution.status, attempts = execution.lease_attempts,
                    "lease of a lost worker expired"
                );
            }
        }
        let grace = chrono::Duration::from_std(shared.config.queued_grace)?;
        for execution in shared.executions.list_queued_before(now - grace, RECOVERY_BATCH).await? {
            if shared.lock_pending().contains(&execution.id) {
                continue; // waiting for a slot in this process
            }
            if announce(self, &execution, now).await? {
                acted += 1;
            }
        }
        Ok(acted)
    }
}

/// Publishes `flow.execute` again for a queued execution (the save changes nothing else).
async fn announce(
    executor: &Executor,
    execution: &Execution,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    let event = Event::flow_execute(execution.flow_id, execution.id, now);
    let done = saved(executor.shared.executions.save(execution, &[event]).await)?;
    if done {
        tracing::info!(flow_id = %execution.flow_id, execution_id = %execution.id, "queued execution announced again");
    }
    Ok(done)
}

/// `true` when stored; `false` when another worker or recoverer got there first.
fn saved(result: Result<(), PortError>) -> anyhow::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(PortError::Conflict | PortError::NotFound) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Runs [`Executor::recover_once`] every `every` (the first pass right away) until `cancel`
/// fires; failures are logged and the next pass tries again.
pub fn spawn_recovery(executor: Arc<Executor>, every: Duration, cancel: CancellationToken) -> JoinHandle<()> {
    spawn_periodic("execution recovery", every, cancel, move || {
        let executor = Arc::clone(&executor);
        async move {
            match executor.recover_once().await {
                Ok(0) => {}
                Ok(acted) => tracing::info!(acted, "execution recovery acted"),
                Err(err) => tracing::warn!(error = format!("{err:#}"), "execution recovery pass failed"),
            }
        }
    })
}
