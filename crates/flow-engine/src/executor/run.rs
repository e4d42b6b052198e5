//! One run of one claimed execution: walks the graph from the trigger node, runs independent
//! branches concurrently, and keeps every change to the [`Execution`] in one driver loop that
//! saves after each finished step invocation and renews the lease every third of it. The claim
//! that starts a run counts it ([`Execution::attempts`]) before anything runs; an execution out
//! of attempts is failed instead ([`fail_if_out_of_attempts`]).
//!
//! A claimed execution of a computes-only flow is run in memory and saved once, ended (two
//! writes per execution: the claim, which counts the run, and the end).
//!
//! An inline run ([`run_inline`]) walks the same way in memory, in the caller's task, on an
//! execution taken by [`claim_inline`] that the caller stored before and stores ended after.
//!
//! An execution claimed again after its worker died (it already has steps) is resumed by
//! re-running from the trigger: its steps and counters are cleared first, so step counts stay
//! those of one complete run (steps with side effects may repeat; delivery is at least once).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use flow_domain::error::PortError;
use flow_domain::execution_lifecycle::{ExecutionInput, process_died, transition};
use flow_domain::model::{Counters, Execution, ExecutionStatus, Flow, StepRecord, StepStatus};
use flow_domain::services::executions::apply_effects;
use serde_json::Value;
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::graph_walk::CompiledGraph;
use crate::components::CallContext;

/// What one step invocation produced.
type Outcome = Result<Vec<Value>, String>;

/// Whether the driver still owns the execution after a save.
enum Saved {
    /// Stored; the local revision was bumped.
    Kept,
    /// Someone else changed it (a cancel, or another worker after our lease ran out); the
    /// run must stop. Holds the status as now stored.
    Lost(ExecutionStatus),
}

/// Runs the claimed `execution` to its end (or until it is taken away or `stop` fires) and
/// returns its status as last known.
///
/// # Errors
/// Storage failures that leave the end of the run unrecorded (the lease then expires and
/// recovery takes over).
pub(super) async fn run(shared: &Shared, execution: Execution) -> anyhow::Result<ExecutionStatus> {
    let started = Instant::now();
    let (flow_id, execution_id) = (execution.flow_id, execution.id);
    tracing::info!(%flow_id, %execution_id, "execution started");
    let status = start(shared, execution).await;
    log_end(flow_id, execution_id, started, &status);
    status
}

/// After a claim of `id` found nothing to claim: when the execution is waiting for a run
/// (queued, or running with a lease that ran out) but its runs are used up, fails it with the
/// reason (the process running it died each time) and returns `Some(Failed)`; else `None`
/// (it ended, or runs elsewhere).
///
/// # Errors
/// Storage failures.
pub(super) async fn fail_if_out_of_attempts(
    shared: &Shared,
    id: flow_domain::ids::ExecutionId,
) -> anyhow::Result<Option<ExecutionStatus>> {
    let now = shared.clock.now();
    let Some(execution) = shared.executions.get(id).await? else { return Ok(None) };
    let waiting = execution.status == ExecutionStatus::Queued
        || (execution.status == ExecutionStatus::Running
            && execution.lease_until.is_none_or(|until| until <= now));
    if !waiting || shared.config.max_attempts.allows_another(execution.attempts) {
        tracing::debug!(execution_id = %id, status = %execution.status, "execution not claimable (ended or running elsewhere)");
        return Ok(None);
    }
    let reason = process_died(execution.attempts);
    tracing::warn!(
        flow_id = %execution.flow_id, execution_id = %id, attempts = execution.attempts,
        "execution out of attempts: the process running it kept dying; failed"
    );
    fail(shared, execution, &reason).await.map(Some)
}

/// Clears the steps and counters of an execution that ran before (its worker died): it is run
/// again from the trigger, so step counts stay those of one complete run.
fn restart_from_trigger(execution: &mut Execution) {
    if !execution.steps.is_empty() || execution.counters != Counters::default() {
        tracing::info!(
            flow_id = %execution.flow_id, execution_id = %execution.id,
            "execution resumed by re-running from the trigger"
        );
        execution.steps.clear();
        execution.counters = Counters::default();
    }
}

/// Logs how a run ended.
fn log_end(
    flow_id: flow_domain::ids::FlowId,
    execution_id: flow_domain::ids::ExecutionId,
    started: Instant,
    status: &anyhow::Result<ExecutionStatus>,
) {
    match status {
        Ok(status) => tracing::info!(
            %flow_id, %execution_id, %status,
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "execution ended"
        ),
        Err(err) => tracing::warn!(
            %flow_id, %execution_id, error = format!("{err:#}"),
            "execution stopped on a storage error; recovery will take it over"
        ),
    }
}

async fn start(shared: &Shared, mut execution: Execution) -> anyhow::Result<ExecutionStatus> {
    if execution.unreadable {
        let reason = execution.error.clone().unwrap_or_default();
        return fail(shared, execution, &reason).await;
    }
    let Some(flow) = shared.flows.get_shared(execution.flow_id).await? else {
        return fail(shared, execution, "The flow was deleted.").await;
    };
    let Some(trigger) = flow.spec.graph.trigger().map(|n| n.id.clone()) else {
        return fail(shared, execution, "The flow has no trigger node.").await;
    };
    restart_from_trigger(&mut execution);
    let graph = shared.graphs.get(&flow);
    let input = execution.input.clone();
    let computes_only = super::computes_only(&flow);
    let mut walk = Walk::new(shared, flow, graph, execution);
    if computes_only {
        // Nothing outside the execution and nothing that waits: run it in memory and save
        // once, ended (one write instead of one per step). A worker dying meanwhile leaves the
        // claim to expire and the run to be repeated, as for any run.
        walk.sequential = true;
        walk.dispatch(&trigger, input);
        walk.run_queued().await;
        return walk.finish().await;
    }
    walk.dispatch(&trigger, input);
    walk.drive().await
}

/// Takes the queued `execution` for an inline run by this process (see
/// [`flow_domain::ports::InlineRunner::claim_inline`]): `running`, started now, its first run
/// counted, leased to this process like a claim.
pub(super) fn claim_inline(shared: &Shared, execution: &mut Execution) {
    let now = shared.clock.now();
    let input = ExecutionInput::Claim { attempts: execution.attempts, limit: shared.config.max_attempts };
    match transition(execution.status, &input) {
        Ok(step) => {
            execution.status = step.status;
            apply_effects(execution, &step.effects, now);
            if execution.status == ExecutionStatus::Running {
                execution.started_at.get_or_insert(now);
                execution.lease_owner = Some(shared.config.process.owner().to_owned());
                let lease = chrono::Duration::from_std(shared.config.lease).unwrap_or(chrono::Duration::MAX);
                execution.lease_until = now.checked_add_signed(lease);
            }
        }
        Err(err) => {
            tracing::warn!(execution_id = %execution.id, error = %err, "inline claim of an execution that is not queued");
        }
    }
}

/// Runs the `execution` of `flow` taken by [`claim_inline`] to its end in memory (see the
/// module documentation) and returns it ended, its lease released.
pub(super) async fn run_inline(shared: &Shared, flow: Arc<Flow>, mut execution: Execution) -> Execution {
    if execution.status != ExecutionStatus::Running {
        tracing::warn!(execution_id = %execution.id, status = %execution.status, "inline run of an execution that was not claimed");
        return execution;
    }
    let Some(trigger) = flow.spec.graph.trigger().map(|n| n.id.clone()) else {
        end_in_memory(shared, &mut execution, ExecutionInput::Fail("The flow has no trigger node.".into()));
        return execution;
    };
    let graph = shared.graphs.get(&flow);
    let input = execution.input.clone();
    let mut walk = Walk::new(shared, flow, graph, execution);
    walk.persist = false;
    walk.sequential = true;
    walk.dispatch(&trigger, input);
    if let Err(err) = walk.drive_inline().await {
        tracing::warn!(execution_id = %walk.execution.id, error = format!("{err:#}"), "inline run failed");
    }
    let mut execution = walk.execution;
    if !execution.status.is_terminal() {
        // Abandoned at shutdown: it is stored ended, never as running without a lease.
        end_in_memory(
            shared,
            &mut execution,
            ExecutionInput::Fail("The process stopped during the run.".into()),
        );
    }
    execution
}

/// Applies `input`'s transition and effects to an execution held in memory.
fn end_in_memory(shared: &Shared, execution: &mut Execution, input: ExecutionInput) {
    if let Ok(step) = transition(execution.status, &input) {
        execution.status = step.status;
        apply_effects(execution, &step.effects, shared.clock.now());
    }
}

/// Fails the execution as a whole (it cannot run at all).
async fn fail(shared: &Shared, mut execution: Execution, reason: &str) -> anyhow::Result<ExecutionStatus> {
    tracing::info!(flow_id = %execution.flow_id, execution_id = %execution.id, reason, "execution cannot run");
    let step = transition(execution.status, &ExecutionInput::Fail(reason.into()))?;
    execution.status = step.status;
    apply_effects(&mut execution, &step.effects, shared.clock.now());
    match shared.executions.save(&execution, &[]).await {
        Ok(()) => Ok(execution.status),
        Err(PortError::Conflict | PortError::NotFound) => {
            Ok(shared.executions.get(execution.id).await?.map_or(execution.status, |e| e.status))
        }
        Err(err) => Err(err.into()),
    }
}

/// The state of one run, owned by its driver loop.
/// How often a running execution looks for a cancel between lease renewals.
const CANCEL_LOOK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

struct Walk<'a> {
    shared: &'a Shared,
    flow: Arc<Flow>,
    graph: Arc<CompiledGraph>,
    execution: Execution,
    /// Given to components; cancelled when the execution is cancelled or the engine stops.
    cancel: CancellationToken,
    tasks: JoinSet<Outcome>,
    /// The node each running task serves.
    nodes: HashMap<Id, String>,
    /// Invocations running per node.
    in_flight: HashMap<String, usize>,
    /// Invocations started so far.
    runs: usize,
    /// Set when the run hit `max_step_runs`.
    overflow: Option<String>,
    /// Whether progress is saved (a claimed execution) or kept in memory (an inline run).
    persist: bool,
    /// Whether invocations run one after the other in the driver's task ([`Walk::run_queued`])
    /// instead of as tasks of their own (flows whose components only compute).
    sequential: bool,
    /// The invocations waiting to run when `sequential`, in order.
    queued: VecDeque<(String, Value)>,
}

impl<'a> Walk<'a> {
    fn new(shared: &'a Shared, flow: Arc<Flow>, graph: Arc<CompiledGraph>, execution: Execution) -> Self {
        Self {
            cancel: shared.hard_stop.child_token(),
            shared,
            flow,
            graph,
            execution,
            tasks: JoinSet::new(),
            nodes: HashMap::new(),
            in_flight: HashMap::new(),
            runs: 0,
            overflow: None,
            persist: true,
            sequential: false,
            queued: VecDeque::new(),
        }
    }

    /// The driver loop: collects finished invocations, routes their output, saves, renews the
    /// lease, and ends the execution once nothing runs any more.
    async fn drive(&mut self) -> anyhow::Result<ExecutionStatus> {
        let period = (self.shared.config.lease / 3).max(std::time::Duration::from_millis(10));
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A cheap read between renewals notices a cancel during a long step within a second.
        let look = period.min(CANCEL_LOOK_EVERY);
        let mut watch = tokio::time::interval_at(tokio::time::Instant::now() + look, look);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.tasks.is_empty() && self.overflow.is_none() {
            tokio::select! {
                biased;
                () = self.shared.hard_stop.cancelled() => {
                    self.cancel.cancel();
                    self.tasks.abort_all();
                    tracing::info!(execution_id = %self.execution.id, "execution abandoned at shutdown; its lease will expire");
                    return Ok(ExecutionStatus::Running);
                }
                Some(joined) = self.tasks.join_next_with_id() => {
                    let (id, outcome) = match joined {
                        Ok((id, outcome)) => (id, outcome),
                        Err(err) => (err.id(), Err(format!("The step crashed: {err}"))),
                    };
                    self.complete(id, outcome).await;
                    if let Saved::Lost(status) = self.save().await? {
                        return Ok(status);
                    }
                }
                _ = renew.tick(), if self.persist => {
                    if let Saved::Lost(status) = self.save().await? {
                        return Ok(status);
                    }
                }
                _ = watch.tick(), if self.persist => {
                    if self.cancelled_in_store().await {
                        self.cancel.cancel();
                        self.tasks.abort_all();
                        tracing::info!(execution_id = %self.execution.id, "execution cancelled; stopping");
                        return Ok(ExecutionStatus::Cancelled);
                    }
                }
            }
        }
        self.finish().await
    }

    /// The driver loop of an inline run: runs the queued invocations one after the other in
    /// this task (every component of an inline flow computes without waiting), then ends
    /// (saved only when `persist` is set).
    async fn drive_inline(&mut self) -> anyhow::Result<ExecutionStatus> {
        self.run_queued().await;
        self.finish().await
    }

    /// Runs the queued invocations (and those they queue) one after the other in this task.
    async fn run_queued(&mut self) {
        while self.overflow.is_none() {
            let Some((node_id, msg)) = self.queued.pop_front() else { break };
            let ctx = self.call_context(&node_id);
            let outcome = invoke(
                Arc::clone(&self.shared.components),
                Arc::clone(&self.flow),
                node_id.clone(),
                msg,
                ctx,
            )
            .await;
            self.complete_node(node_id, outcome).await;
        }
    }

    fn call_context(&self, node_id: &str) -> CallContext {
        CallContext {
            flow_id: self.flow.id.to_string(),
            step_id: node_id.to_owned(),
            cancel: self.cancel.clone(),
            allow_private_networks: self.shared.config.allow_private_networks,
            sandbox: Arc::clone(self.shared.components.sandbox()),
        }
    }

    /// Starts one invocation of `node_id` on `msg`.
    fn dispatch(&mut self, node_id: &str, msg: Value) {
        if self.overflow.is_some() {
            return;
        }
        let max = self.shared.config.max_step_runs;
        if self.runs >= max {
            self.overflow = Some(format!(
                "The execution ran more than {max} steps and was stopped (a loop through many messages?)."
            ));
            return;
        }
        self.runs += 1;
        let now = self.shared.clock.now();
        let Some(node) = self.flow.spec.graph.node(node_id) else {
            self.edge_failure(node_id, format!("The flow has no node `{node_id}`."));
            return;
        };
        let step = self
            .execution
            .steps
            .entry(node_id.to_owned())
            .or_insert_with(|| StepRecord::started(&node.component_id, now));
        step.in_count += 1;
        step.status = StepStatus::Running;
        self.execution.counters.started += 1;
        *self.in_flight.entry(node_id.to_owned()).or_default() += 1;

        if self.sequential {
            self.queued.push_back((node_id.to_owned(), msg));
            return;
        }
        let ctx = self.call_context(node_id);
        let invocation =
            invoke(Arc::clone(&self.shared.components), Arc::clone(&self.flow), node_id.to_owned(), msg, ctx);
        let handle = self.tasks.spawn(invocation);
        self.nodes.insert(handle.id(), node_id.to_owned());
    }

    /// Records a finished invocation task and sends its output on.
    async fn complete(&mut self, task: Id, outcome: Outcome) {
        if let Some(node_id) = self.nodes.remove(&task) {
            self.complete_node(node_id, outcome).await;
        }
    }

    /// Records a finished invocation of `node_id` and sends its output on.
    async fn complete_node(&mut self, node_id: String, outcome: Outcome) {
        let now = self.shared.clock.now();
        let left = self.in_flight.get_mut(&node_id).map_or(0, |n| {
            *n = n.saturating_sub(1);
            *n
        });
        let counters = &mut self.execution.counters;
        let Some(step) = self.execution.steps.get_mut(&node_id) else {
            return;
        };
        step.finished_at = Some(now);
        let outputs = match outcome {
            Ok(outputs) => {
                counters.succeeded += 1;
                outputs.iter().for_each(|m| step.record_output(m));
                tracing::debug!(execution_id = %self.execution.id, step = %node_id, out = outputs.len(), "step succeeded");
                outputs
            }
            Err(reason) => {
                counters.errors += 1;
                step.errors += 1;
                tracing::debug!(execution_id = %self.execution.id, step = %node_id, error = %reason, "step failed");
                step.last_error = Some(reason);
                Vec::new()
            }
        };
        if left == 0 {
            step.status = if step.errors > 0 { StepStatus::Failed } else { StepStatus::Succeeded };
        }
        let graph = Arc::clone(&self.graph);
        let sandbox = Arc::clone(self.shared.components.sandbox());
        for message in &outputs {
            for (target, delivery) in graph.route(&node_id, message, &sandbox, &self.cancel).await {
                match delivery {
                    Ok(msg) => self.dispatch(&target, msg),
                    Err(reason) => self.edge_failure(&target, reason),
                }
            }
        }
    }

    /// A message that could not reach `node_id` (its edge's condition or mapper failed) counts
    /// as a failed invocation of that node.
    fn edge_failure(&mut self, node_id: &str, reason: String) {
        let now = self.shared.clock.now();
        let component =
            self.flow.spec.graph.node(node_id).map(|n| n.component_id.clone()).unwrap_or_default();
        let running = self.in_flight.get(node_id).copied().unwrap_or(0) > 0;
        let step = self
            .execution
            .steps
            .entry(node_id.to_owned())
            .or_insert_with(|| StepRecord::started(&component, now));
        step.in_count += 1;
        step.errors += 1;
        step.finished_at = Some(now);
        step.last_error = Some(reason);
        if !running {
            step.status = StepStatus::Failed;
        }
        self.execution.counters.started += 1;
        self.execution.counters.errors += 1;
    }

    /// Ends the run: failed when the step limit was hit, else succeeded or failed by the steps.
    async fn finish(&mut self) -> anyhow::Result<ExecutionStatus> {
        self.tasks.abort_all();
        let input = match self.overflow.take() {
            Some(reason) => ExecutionInput::Fail(reason),
            None => ExecutionInput::Finish { ok: self.execution.counters.errors == 0 },
        };
        let step = transition(self.execution.status, &input)?;
        self.execution.status = step.status;
        apply_effects(&mut self.execution, &step.effects, self.shared.clock.now());
        match self.save().await? {
            Saved::Kept => Ok(self.execution.status),
            Saved::Lost(status) => Ok(status),
        }
    }

    /// Whether a user cancelled the execution meanwhile (read errors count as no).
    async fn cancelled_in_store(&self) -> bool {
        matches!(
            self.shared.executions.get(self.execution.id).await,
            Ok(Some(stored)) if stored.status == ExecutionStatus::Cancelled
        )
    }

    /// Saves the execution (extending the lease while it runs); on a lost race, finds out why
    /// and cancels the running components when the execution was cancelled.
    async fn save(&mut self) -> anyhow::Result<Saved> {
        if !self.persist {
            return Ok(Saved::Kept);
        }
        if self.execution.status == ExecutionStatus::Running {
            let lease = chrono::Duration::from_std(self.shared.config.lease)?;
            self.execution.lease_until = Some(self.shared.clock.now() + lease);
        }
        match self.shared.executions.save(&self.execution, &[]).await {
            Ok(()) => {
                self.execution.revision += 1;
                Ok(Saved::Kept)
            }
            Err(PortError::Conflict | PortError::NotFound) => {
                let stored = self.shared.executions.get(self.execution.id).await?;
                let status = stored.as_ref().map_or(ExecutionStatus::Cancelled, |e| e.status);
                self.cancel.cancel();
                self.tasks.abort_all();
                if status == ExecutionStatus::Cancelled {
                    tracing::info!(execution_id = %self.execution.id, "execution cancelled; stopping");
                } else {
                    tracing::warn!(
                        execution_id = %self.execution.id, %status,
                        lease_owner = stored.as_ref().and_then(|e| e.lease_owner.as_deref()).unwrap_or(""),
                        "execution taken over (lease lost); stopping"
                    );
                }
                Ok(Saved::Lost(status))
            }
            Err(err) if self.execution.status == ExecutionStatus::Running => {
                // The next save carries this state too; a long outage costs the lease.
                tracing::warn!(execution_id = %self.execution.id, error = %err, "cannot save execution progress");
                Ok(Saved::Kept)
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// One invocation of `node_id` of `flow` on `msg`.
async fn invoke(
    components: Arc<crate::components::ComponentRegistry>,
    flow: Arc<Flow>,
    node_id: String,
    msg: Value,
    ctx: CallContext,
) -> Outcome {
    let Some(node) = flow.spec.graph.node(&node_id) else {
        return Err(format!("The flow has no node `{node_id}`."));
    };
    let component = match components.resolve(&node.component_id, flow.tenant).await {
        Ok(Some(component)) => component,
        Ok(None) => return Err(format!("unknown component `{}`", node.component_id)),
        Err(err) => return Err(err.message),
    };
    let outputs = component.call(&node.function, &node.fields, &msg, &ctx).await.map_err(|e| e.message)?;
    // Whatever a component returns (an HTTP response, an external component's reply) is stored
    // with the execution and must read back: its data no deeper than a body may be (the
    // message around it is one level more).
    let max = ctx.sandbox.config().max_output_nesting;
    if outputs.iter().any(|output| flow_domain::limits::value_exceeds(output, max + 1)) {
        return Err(format!("nesting deeper than {max} levels"));
    }
    Ok(outputs)
}
