//! The cron scheduler (SPEC §7): on each tick, every active flow with a `cron` fires for the
//! most recent due time not yet fired, exactly once across all running instances.
//!
//! - Due time D: the latest cron occurrence at or before now. Only D is considered, so after
//!   downtime the flow fires once for the latest missed time (no backfill storm).
//! - No fire for a D before the flow became active (`status_changed_at`).
//! - Exactly once: the execution carries the idempotency key `cron:<D>` and is stored with
//!   [`ExecutionRepository::insert_idempotent`], so of several instances firing D only one
//!   inserts. Each instance also remembers the last D it handled per flow, to spare the store a
//!   write per flow and tick.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use flow_domain::event::Event;
use flow_domain::ids::FlowId;
use flow_domain::model::{Execution, Flow, TriggerInfo, TriggerType};
use flow_domain::ports::{ExecutionRepository, FlowRepository};
use flow_domain::time::{Clock, format_timestamp};
use flow_domain::validate::parse_cron;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How far back `insert_idempotent` looks for an execution holding a due time's key.
const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// Fires the executions of scheduled flows; see the module docs.
pub struct Scheduler {
    flows: Arc<dyn FlowRepository>,
    executions: Arc<dyn ExecutionRepository>,
    clock: Arc<dyn Clock>,
    /// Flow -> the last due time this instance fired or saw fired.
    handled: Mutex<HashMap<FlowId, DateTime<Utc>>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

/// What one flow's turn in a tick did.
enum Fired {
    Created,
    Skipped,
}

impl Scheduler {
    /// A scheduler reading flows from `flows`, storing executions in `executions`, at the time
    /// `clock` tells.
    pub fn new(
        flows: Arc<dyn FlowRepository>,
        executions: Arc<dyn ExecutionRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { flows, executions, clock, handled: Mutex::new(HashMap::new()) }
    }

    /// Fires every scheduled flow whose latest due time has not been fired yet, and returns how
    /// many executions this call created. A flow that cannot be fired (bad cron, store error)
    /// is logged and skipped; the others still fire.
    ///
    /// # Errors
    /// When the scheduled flows cannot be listed.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let flows = self.flows.list_scheduled().await?;
        self.forget_unscheduled(&flows);
        let mut created = 0;
        for flow in &flows {
            match self.fire(flow, now).await {
                Ok(Fired::Created) => created += 1,
                Ok(Fired::Skipped) => {}
                Err(err) => tracing::warn!(flow = %flow.id, error = %err, "scheduled fire failed"),
            }
        }
        Ok(created)
    }

    async fn fire(&self, flow: &Flow, now: DateTime<Utc>) -> anyhow::Result<Fired> {
        let Some(due) = due_time(flow, now)? else {
            return Ok(Fired::Skipped);
        };
        if due < flow.status_changed_at || self.last_handled(flow.id) >= Some(due) {
            return Ok(Fired::Skipped);
        }
        let due_at = format_timestamp(&due);
        let trigger = TriggerInfo { trigger_type: TriggerType::Scheduler, request_id: Some(due_at.clone()) };
        let mut execution = Execution::queued(
            flow.id,
            flow.tenant,
            flow.owners.clone(),
            trigger,
            scheduler_message(&due_at),
            now,
        );
        execution.idempotency_key = Some(format!("cron:{due_at}"));
        let events = [Event::flow_execute(flow.id, execution.id, now)];
        let existing =
            self.executions.insert_idempotent(&execution, &events, due - IDEMPOTENCY_WINDOW).await?;
        self.remember(flow.id, due);
        match existing {
            None => {
                tracing::info!(flow = %flow.id, execution = %execution.id, due = %due_at, "scheduled execution queued");
                Ok(Fired::Created)
            }
            Some(other) => {
                tracing::debug!(flow = %flow.id, execution = %other.id, due = %due_at, "due time already fired");
                Ok(Fired::Skipped)
            }
        }
    }

    fn last_handled(&self, flow: FlowId) -> Option<DateTime<Utc>> {
        self.handled.lock().unwrap_or_else(|e| e.into_inner()).get(&flow).copied()
    }

    fn remember(&self, flow: FlowId, due: DateTime<Utc>) {
        self.handled.lock().unwrap_or_else(|e| e.into_inner()).insert(flow, due);
    }

    /// Drops the memory of flows no longer scheduled (stopped, deleted, cron removed).
    fn forget_unscheduled(&self, scheduled: &[Flow]) {
        let mut handled = self.handled.lock().unwrap_or_else(|e| e.into_inner());
        handled.retain(|id, _| scheduled.iter().any(|f| f.id == *id));
    }
}

/// The latest occurrence of the flow's cron at or before `now`, if any.
fn due_time(flow: &Flow, now: DateTime<Utc>) -> anyhow::Result<Option<DateTime<Utc>>> {
    let Some(expr) = flow.spec.cron.as_deref().map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let cron = parse_cron(expr).map_err(|e| anyhow::anyhow!("cron \"{expr}\": {e}"))?;
    // croner works in whole seconds; an occurrence at exactly `now` counts.
    let at = now.trunc_subsecs(0);
    Ok(cron.find_previous_occurrence(&at, true).ok())
}

/// The message a scheduled execution starts with.
fn scheduler_message(due_at: &str) -> Value {
    json!({
        "id": Uuid::now_v7(),
        "data": {},
        "attachments": {},
        "metadata": { "source": { "name": "scheduler", "type": "scheduler", "dueAt": due_at } },
        "headers": {},
        "query": {},
        "method": null,
        "url": null,
        "pathSuffix": null
    })
}

/// Runs `scheduler.tick()` every `every` until `cancel` is cancelled; tick errors are logged.
pub fn spawn_scheduler(
    scheduler: Arc<Scheduler>,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = interval.tick() => {}
            }
            if let Err(err) = scheduler.tick().await {
                tracing::warn!(error = %err, "scheduler tick failed");
            }
        }
    })
}
