//! Runs executions (SPEC §7): on `flow.execute` a worker claims the execution with a lease,
//! walks the flow's graph from the trigger node and records every step, saving as it goes.
//! Concurrency is bounded globally and per flow; permits are taken before the claim, so work
//! waiting for a slot holds no lease. Recovery ([`Executor::recover_once`]) puts executions of
//! dead workers back in the queue (or fails them after repeated losses) and announces queued
//! executions whose `flow.execute` was lost.
//!
//! Every run is counted before it begins, in the claim that starts it (inline runs: in the
//! insert of the claimed execution, see [`InlineRunner`]), so a run whose process dies stays
//! counted: once `max_attempts` runs were counted without an end, the execution is failed
//! with the reason instead of being run again. An execution that crashes the process running
//! it cannot crash-loop it.

mod config;
mod graph_walk;
mod recovery;
mod run;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use flow_domain::event::{Event, names};
use flow_domain::ids::{ExecutionId, FlowId};
use flow_domain::model::{Execution, ExecutionStatus, Flow};
use flow_domain::ports::{ExecutionRepository, FlowRepository, InlineRunner};
use flow_domain::time::Clock;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

pub use config::ExecutorConfig;
pub use recovery::{spawn_leftover_recovery, spawn_recovery};

use crate::components::ComponentRegistry;
use crate::handler::EventHandler;
use graph_walk::GraphCache;

/// The consumer group of the executor.
pub const EXECUTOR_CONSUMER: &str = "flow-executor";

/// Claims and runs executions; see the module documentation.
pub struct Executor {
    shared: Arc<Shared>,
}

/// What the executor's tasks share.
pub(crate) struct Shared {
    executions: Arc<dyn ExecutionRepository>,
    flows: Arc<dyn FlowRepository>,
    components: Arc<ComponentRegistry>,
    clock: Arc<dyn Clock>,
    config: ExecutorConfig,
    graphs: GraphCache,
    global: Arc<Semaphore>,
    per_flow: Mutex<HashMap<FlowId, Arc<Semaphore>>>,
    /// Executions this process is waiting to run or running (from events), to ignore repeats.
    pending: Mutex<HashSet<ExecutionId>>,
    /// Cancelled when shutdown begins: no new run starts.
    stopping: CancellationToken,
    /// Cancelled when the shutdown grace ran out: running executions are abandoned.
    hard_stop: CancellationToken,
    /// Spawned runs (waiting or running).
    spawned: watch::Sender<usize>,
    /// When this executor was made (this process's start, for recovery).
    started_at: chrono::DateTime<chrono::Utc>,
    /// Whether what an earlier incarnation of this process left was taken over.
    leftovers_recovered: AtomicBool,
}

impl Executor {
    /// The events the executor handles.
    pub const EVENTS: [&'static str; 1] = [names::FLOW_EXECUTE];

    /// An executor over the stores, running `components`.
    pub fn new(
        executions: Arc<dyn ExecutionRepository>,
        flows: Arc<dyn FlowRepository>,
        components: Arc<ComponentRegistry>,
        clock: Arc<dyn Clock>,
        config: ExecutorConfig,
    ) -> Self {
        let global = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        let started_at = clock.now();
        Self {
            shared: Arc::new(Shared {
                executions,
                flows,
                components,
                clock,
                config,
                graphs: GraphCache::default(),
                global,
                per_flow: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashSet::new()),
                stopping: CancellationToken::new(),
                hard_stop: CancellationToken::new(),
                spawned: watch::Sender::new(0),
                started_at,
                leftovers_recovered: AtomicBool::new(false),
            }),
        }
    }

    /// This executor's settings.
    pub fn config(&self) -> &ExecutorConfig {
        &self.shared.config
    }

    /// Handles `flow.execute` (other names are ignored): the execution is run in a task of its
    /// own once a slot is free, so the consumer moves on. A repeated event for an execution
    /// that runs or ended elsewhere does nothing (the claim fails). Idempotent.
    ///
    /// # Errors
    /// None today; an execution that cannot be claimed because storage fails stays queued and
    /// is announced again by [`Executor::recover_once`].
    pub async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        if event.name != names::FLOW_EXECUTE {
            return Ok(());
        }
        let Some(id) = event.execution_id() else {
            tracing::warn!(event_id = %event.id, "flow.execute without an execution id; ignored");
            return Ok(());
        };
        if self.shared.stopping.is_cancelled() {
            tracing::info!(execution_id = %id, "shutting down; execution left queued for recovery");
            return Ok(());
        }
        if !self.shared.lock_pending().insert(id) {
            return Ok(());
        }
        let guard = Spawned::new(Arc::clone(&self.shared), Some(id));
        let flow_id = event.flow_id();
        tokio::spawn(async move {
            let shared = Arc::clone(&guard.shared);
            if let Err(err) = Shared::admit_and_run(&shared, id, flow_id).await {
                tracing::warn!(execution_id = %id, error = format!("{err:#}"), "cannot run execution");
            }
            drop(guard);
        });
        Ok(())
    }

    /// Claims the execution `id` and runs it to the end in the caller's task (within the same
    /// concurrency bounds). `None` when it could not be claimed (unknown, ended, or running
    /// elsewhere), else its status at the end.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn run_now(&self, id: ExecutionId) -> anyhow::Result<Option<ExecutionStatus>> {
        let _guard = Spawned::new(Arc::clone(&self.shared), None);
        Shared::admit_and_run(&self.shared, id, None).await
    }

    /// Waits until no execution started by [`Executor::handle`] or [`Executor::run_now`] is
    /// waiting or running in this executor.
    pub async fn idle(&self) {
        let mut spawned = self.shared.spawned.subscribe();
        let _ = spawned.wait_for(|n| *n == 0).await;
    }

    /// Stops accepting work, waits up to `grace` for running executions to end, then abandons
    /// the rest: their components are cancelled and their leases left to expire, so recovery
    /// (here after a restart, or on another worker) picks them up.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.stopping.cancel();
        let mut spawned = self.shared.spawned.subscribe();
        if tokio::time::timeout(grace, spawned.wait_for(|n| *n == 0)).await.is_ok() {
            return;
        }
        tracing::warn!(running = *spawned.borrow(), "shutdown grace over; abandoning running executions");
        self.shared.hard_stop.cancel();
        let _ = tokio::time::timeout(grace.max(Duration::from_secs(1)), spawned.wait_for(|n| *n == 0)).await;
    }
}

/// Components an inline run may use: no effect outside the execution, bounded running time.
const INLINE_COMPONENTS: [&str; 6] = ["webhook", "scheduler", "jq", "filter", "log", "code"];

/// Whether every node of `flow` is one of [`INLINE_COMPONENTS`].
pub(super) fn computes_only(flow: &Flow) -> bool {
    flow.spec.graph.nodes.iter().all(|node| INLINE_COMPONENTS.contains(&node.component_id.as_str()))
}

/// Inline runs for synchronous webhook calls: not bounded by the executor's concurrency limits
/// (the HTTP server's concurrency bounds them) and not stopped by [`Executor::shutdown`]'s
/// grace, which the server's own graceful shutdown covers.
#[async_trait]
impl InlineRunner for Executor {
    fn runs_inline(&self, flow: &Flow) -> bool {
        computes_only(flow)
    }

    fn claim_inline(&self, execution: &mut Execution) {
        run::claim_inline(&self.shared, execution);
    }

    async fn run_inline(&self, flow: Arc<Flow>, execution: Execution) -> Execution {
        run::run_inline(&self.shared, flow, execution).await
    }
}

#[async_trait]
impl EventHandler for Executor {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        Executor::handle(self, event).await
    }
}

impl Shared {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashSet<ExecutionId>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_per_flow(&self) -> std::sync::MutexGuard<'_, HashMap<FlowId, Arc<Semaphore>>> {
        self.per_flow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot of the flow and a global one, claims, and runs.
    async fn admit_and_run(
        shared: &Arc<Shared>,
        id: ExecutionId,
        flow_id: Option<FlowId>,
    ) -> anyhow::Result<Option<ExecutionStatus>> {
        let flow_id = match flow_id {
            Some(flow_id) => flow_id,
            None => match shared.executions.get(id).await? {
                Some(execution) if !execution.status.is_terminal() => execution.flow_id,
                _ => return Ok(None),
            },
        };
        let permits = tokio::select! {
            biased;
            () = shared.stopping.cancelled() => return Ok(None),
            permits = Permits::acquire(shared, flow_id) => permits?,
        };
        let now = shared.clock.now();
        let lease_until = now + chrono::Duration::from_std(shared.config.lease)?;
        let (owner, limit) = (shared.config.process.owner(), shared.config.max_attempts);
        // Counts this run durably before anything of it runs.
        let Some(execution) = shared.executions.claim(id, owner, now, lease_until, limit).await? else {
            // Ended, running elsewhere, or out of attempts (then it is failed here).
            return run::fail_if_out_of_attempts(shared, id).await;
        };
        let status = run::run(shared, execution).await?;
        drop(permits);
        Ok(Some(status))
    }
}

/// A run's slots: one of its flow and one global.
struct Permits {
    shared: Arc<Shared>,
    flow_id: FlowId,
    flow: Option<OwnedSemaphorePermit>,
    _global: OwnedSemaphorePermit,
}

impl Permits {
    async fn acquire(shared: &Arc<Shared>, flow_id: FlowId) -> anyhow::Result<Self> {
        let per_flow = Arc::clone(
            shared
                .lock_per_flow()
                .entry(flow_id)
                .or_insert_with(|| Arc::new(Semaphore::new(shared.config.max_per_flow.max(1)))),
        );
        let flow = per_flow.acquire_owned().await?;
        let global = Arc::clone(&shared.global).acquire_owned().await?;
        Ok(Self { shared: Arc::clone(shared), flow_id, flow: Some(flow), _global: global })
    }
}

impl Drop for Permits {
    /// Frees the slots and forgets the flow's semaphore once nobody uses or waits for it.
    fn drop(&mut self) {
        drop(self.flow.take());
        let mut per_flow = self.shared.lock_per_flow();
        if per_flow.get(&self.flow_id).is_some_and(|s| Arc::strong_count(s) == 1) {
            per_flow.remove(&self.flow_id);
        }
    }
}

/// Counts a run in [`Shared::spawned`] while it lives (and keeps its id in `pending`).
struct Spawned {
    shared: Arc<Shared>,
    id: Option<ExecutionId>,
}

impl Spawned {
    fn new(shared: Arc<Shared>, id: Option<ExecutionId>) -> Self {
        shared.spawned.send_modify(|n| *n += 1);
        Self { shared, id }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.shared.lock_pending().remove(&id);
        }
        self.shared.spawned.send_modify(|n| *n = n.saturating_sub(1));
    }
}
