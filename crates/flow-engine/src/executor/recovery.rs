//! Recovery of executions no process is looking after. A run is lost when its lease ran out
//! (its worker died) or, at start, when it is leased by an earlier incarnation of this very
//! process (it was killed or crashed; see [`flow_domain::model::ProcessIdentity`]): the
//! execution goes back to the queue, or is failed once its counted runs reached the attempt
//! limit (the process running it died each time). Queued executions older than `queued_grace`
//! (their `flow.execute` was lost with a process) are announced again; with a bus that loses
//! its events with the process, so are those queued before this start, right away.
//!
//! Every change is a compare-and-swap save, so concurrent recoverers on several instances act
//! once per execution. Each execution is handled alone: one that cannot be read back is failed
//! with the reason, one whose handling fails is logged and the pass goes on; only a storage
//! outage ends a pass early.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::execution_lifecycle::{ExecutionInput, process_died, transition};
use flow_domain::model::{Execution, ExecutionStatus};
use flow_domain::services::executions::apply_effects;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Executor;
use crate::runtime::spawn_periodic;

/// How many executions one recovery pass looks at, per kind.
const RECOVERY_BATCH: u32 = 100;

/// How many executions queued before the start the first pass announces again (when the bus
/// lost their events); older backlogs follow after `queued_grace`, a batch per pass.
const STARTUP_QUEUED_BATCH: u32 = 1_000;

/// Batches of leftover leases the first pass works through at most.
const LEFTOVER_BATCHES: usize = 100;

impl Executor {
    /// One recovery pass; returns how many executions it re-queued, failed or announced again.
    /// The first successful pass of this executor also takes over what an earlier incarnation
    /// of this process left ([`Executor::recover_leftovers`]).
    ///
    /// # Errors
    /// Storage failures (the next pass tries again).
    pub async fn recover_once(&self) -> anyhow::Result<usize> {
        let mut acted = 0;
        let mut queued_announced = false;
        if !self.shared.leftovers_recovered.load(Ordering::Acquire) {
            acted += self.recover_leftovers().await?;
            // The queued executions were just announced again; not twice in one pass.
            queued_announced = self.shared.config.events_die_with_process;
        }
        let now = self.shared.clock.now();
        for execution in self.shared.executions.list_expired_leases(now, RECOVERY_BATCH).await? {
            acted += usize::from(self.handled(self.lost_run(execution, now)).await?);
        }
        if !queued_announced {
            let grace = chrono::Duration::from_std(self.shared.config.queued_grace)?;
            acted += self.announce_queued_before(now - grace, RECOVERY_BATCH).await?;
        }
        Ok(acted)
    }

    /// Takes over what an earlier incarnation of this process left (it was killed or
    /// crashed): its leased executions are re-queued (or failed when out of attempts) at once
    /// instead of after their lease, and, when the bus loses events with the process, the
    /// executions queued before this start are announced again. Done once per executor; the
    /// first [`Executor::recover_once`] calls it. Returns how many executions it acted on.
    ///
    /// # Errors
    /// Storage failures (the next call tries again).
    pub async fn recover_leftovers(&self) -> anyhow::Result<usize> {
        let shared = &self.shared;
        let process = &shared.config.process;
        let mut acted = 0;
        for _ in 0..LEFTOVER_BATCHES {
            let batch = shared
                .executions
                .list_orphaned_leases(process.name_prefix(), process.owner(), RECOVERY_BATCH)
                .await?;
            let mut progressed = false;
            let listed = batch.len();
            for execution in batch {
                let now = shared.clock.now();
                let done = self.handled(self.lost_run(execution, now)).await?;
                progressed |= done;
                acted += usize::from(done);
            }
            if listed < RECOVERY_BATCH as usize || !progressed {
                break;
            }
        }
        if shared.config.events_die_with_process {
            acted += self.announce_queued_before(shared.started_at, STARTUP_QUEUED_BATCH).await?;
        }
        shared.leftovers_recovered.store(true, Ordering::Release);
        if acted > 0 {
            tracing::info!(acted, process = %process, "took over the executions an earlier run of this process left");
        }
        Ok(acted)
    }

    /// Announces again the queued executions created before `before` (failing those out of
    /// attempts or unreadable), skipping those waiting for a slot in this process.
    async fn announce_queued_before(&self, before: DateTime<Utc>, limit: u32) -> anyhow::Result<usize> {
        let mut acted = 0;
        for execution in self.shared.executions.list_queued_before(before, limit).await? {
            if self.shared.lock_pending().contains(&execution.id) {
                continue; // waiting for a slot in this process
            }
            acted += usize::from(self.handled(self.requeued(execution)).await?);
        }
        Ok(acted)
    }

    /// The outcome of handling one execution: storage outages end the pass (`Err`), any other
    /// failure is logged and counts as not acted, so the pass goes on with the next one.
    async fn handled(
        &self,
        handling: impl std::future::Future<Output = Result<bool, PortError>>,
    ) -> anyhow::Result<bool> {
        match handling.await {
            Ok(done) => Ok(done),
            Err(err @ PortError::Unavailable(_)) => Err(err.into()),
            Err(err) => {
                tracing::warn!(error = %err, "execution recovery skipped an execution it could not handle");
                Ok(false)
            }
        }
    }

    /// A run whose process died: back to the queue, or failed when out of attempts (or
    /// unreadable). `true` when stored.
    async fn lost_run(&self, mut execution: Execution, now: DateTime<Utc>) -> Result<bool, PortError> {
        if execution.unreadable {
            return self.fail_unreadable(execution, now).await;
        }
        let input = ExecutionInput::LeaseExpired {
            attempts: execution.attempts,
            limit: self.shared.config.max_attempts,
        };
        let Ok(step) = transition(execution.status, &input) else { return Ok(false) };
        if step.is_noop(execution.status) {
            return Ok(false);
        }
        let lost_by = execution.lease_owner.clone().unwrap_or_default();
        execution.status = step.status;
        apply_effects(&mut execution, &step.effects, now);
        let events = match execution.status {
            ExecutionStatus::Queued => vec![Event::flow_execute(execution.flow_id, execution.id, now)],
            _ => Vec::new(),
        };
        let done = saved(self.shared.executions.save(&execution, &events).await)?;
        if done {
            tracing::info!(
                flow_id = %execution.flow_id, execution_id = %execution.id, worker = %lost_by,
                status = %execution.status, attempts = execution.attempts,
                "run of a lost process taken over"
            );
        }
        Ok(done)
    }

    /// A queued execution whose `flow.execute` may be lost: announced again (the save changes
    /// nothing else), or failed when out of attempts (or unreadable).
    async fn requeued(&self, execution: Execution) -> Result<bool, PortError> {
        let now = self.shared.clock.now();
        if execution.unreadable {
            return self.fail_unreadable(execution, now).await;
        }
        if !self.shared.config.max_attempts.allows_another(execution.attempts) {
            let reason = process_died(execution.attempts);
            return self.fail(execution, reason, now).await;
        }
        let event = Event::flow_execute(execution.flow_id, execution.id, now);
        let done = saved(self.shared.executions.save(&execution, &[event]).await)?;
        if done {
            tracing::info!(flow_id = %execution.flow_id, execution_id = %execution.id, "queued execution announced again");
        }
        Ok(done)
    }

    /// Fails an execution whose stored record could not be read back (it is never run): its
    /// readable remains are stored, failed, with the reason.
    async fn fail_unreadable(&self, execution: Execution, now: DateTime<Utc>) -> Result<bool, PortError> {
        let reason = execution.error.clone().unwrap_or_default();
        tracing::warn!(flow_id = %execution.flow_id, execution_id = %execution.id, %reason, "unreadable execution failed");
        self.fail(execution, reason, now).await
    }

    /// Ends `execution` failed with `reason`. `true` when stored.
    async fn fail(
        &self,
        mut execution: Execution,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let Ok(step) = transition(execution.status, &ExecutionInput::Fail(reason)) else { return Ok(false) };
        if step.is_noop(execution.status) {
            return Ok(false);
        }
        execution.status = step.status;
        apply_effects(&mut execution, &step.effects, now);
        let done = saved(self.shared.executions.save(&execution, &[]).await)?;
        if done {
            tracing::warn!(
                flow_id = %execution.flow_id, execution_id = %execution.id, attempts = execution.attempts,
                error = execution.error.as_deref().unwrap_or(""), "execution failed by recovery"
            );
        }
        Ok(done)
    }
}

/// `true` when stored; `false` when another worker or recoverer got there first.
fn saved(result: Result<(), PortError>) -> Result<bool, PortError> {
    match result {
        Ok(()) => Ok(true),
        Err(PortError::Conflict | PortError::NotFound) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Runs [`Executor::recover_once`] every `every` (the first pass right away, which takes over
/// what an earlier run of this process left) until `cancel` fires; failures are logged and the
/// next pass tries again.
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

/// For processes that run no recovery passes (the `api` role, whose inline runs hold leases):
/// calls [`Executor::recover_leftovers`] right away, and again every `every` until it
/// succeeded once or `cancel` fires.
pub fn spawn_leftover_recovery(
    executor: Arc<Executor>,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match executor.recover_leftovers().await {
                Ok(_) => return,
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "taking over leftover executions failed")
                }
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    })
}
