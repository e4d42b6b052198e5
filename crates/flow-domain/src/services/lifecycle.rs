//! The imperative shell around [`crate::lifecycle::transition`]: performs its effects, applies
//! engine events on the flows side, and runs the watchdog for flows stuck in transition.

use crate::error::{PortError, ServiceError, ServiceResult};
use crate::event::{Consumed, Event, names};
use crate::ids::{FlowId, UserId};
use crate::lifecycle::{Effect, LifecycleInput, transition};
use crate::model::{Flow, FlowStatus};
use crate::ports::{BusMonitor, FlowRepository, TemplateRepository};
use crate::time::Clock;
use std::sync::Arc;

/// Attempts to re-apply an input after losing an optimistic-concurrency race.
const MAX_RACE_RETRIES: usize = 5;

/// Applies `input` to `flow`, saving the new state and the events of its effects atomically.
/// Losing a race reloads the flow and re-applies the input; a refused input is a 409.
pub(crate) async fn drive(
    repo: &dyn FlowRepository,
    clock: &dyn Clock,
    mut flow: Flow,
    input: &LifecycleInput,
    started_by: Option<UserId>,
    consumed: Option<&Consumed>,
) -> ServiceResult<Flow> {
    for _ in 0..MAX_RACE_RETRIES {
        let step = transition(flow.status, input).map_err(|r| ServiceError::Conflict(r.to_string()))?;
        if step.is_noop(flow.status) {
            return Ok(flow);
        }
        let now = clock.now();
        let mut next = flow.clone();
        if step.status != flow.status {
            next.status = step.status;
            next.status_changed_at = now;
            next.lifecycle_attempts = 0;
        }
        next.updated_at = now;
        let mut events = Vec::new();
        for effect in &step.effects {
            match effect {
                Effect::PublishStarting => events.push(Event::flow_starting(&next, started_by, now)),
                Effect::PublishStopping => events.push(Event::flow_stopping(&next, now)),
                Effect::RecordReason(reason) => next.status_reason = Some(reason.clone()),
                Effect::ClearReason => next.status_reason = None,
                Effect::CountAttempt => {
                    next.lifecycle_attempts += 1;
                    next.status_changed_at = now;
                }
            }
        }
        match repo.save(&next, &events, consumed).await {
            Ok(()) => {
                next.revision += 1;
                return Ok(next);
            }
            Err(PortError::Conflict) => {
                flow =
                    repo.get(flow.id).await?.ok_or_else(|| ServiceError::NotFound("No flow found".into()))?;
            }
            Err(PortError::AlreadyProcessed) => return Ok(flow),
            Err(PortError::NotFound) => return Err(ServiceError::NotFound("No flow found".into())),
            Err(other) => return Err(other.into()),
        }
    }
    Err(ServiceError::Conflict("The flow is being changed concurrently; retry.".into()))
}

/// The flows side's consumer of engine confirmations and identity events.
pub struct LifecycleListener {
    flows: Arc<dyn FlowRepository>,
    templates: Arc<dyn TemplateRepository>,
    clock: Arc<dyn Clock>,
}

/// The consumer group of the flows side.
pub const FLOWS_CONSUMER: &str = "flow-repository";

impl LifecycleListener {
    /// The events this listener handles.
    pub const EVENTS: [&'static str; 4] =
        [names::FLOW_STARTED, names::FLOW_STOPPED, names::FLOW_FAILED, names::USER_DELETED];

    /// A listener over the flow and template stores.
    pub fn new(
        flows: Arc<dyn FlowRepository>,
        templates: Arc<dyn TemplateRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { flows, templates, clock }
    }

    /// Applies one event. Idempotent: a redelivered event changes nothing.
    ///
    /// # Errors
    /// Storage failures (the event should then be redelivered).
    pub async fn handle(&self, event: &Event) -> ServiceResult<()> {
        let consumed = Consumed { consumer: FLOWS_CONSUMER.into(), event_id: event.id };
        let input = match event.name.as_str() {
            names::FLOW_STARTED => LifecycleInput::Started,
            names::FLOW_STOPPED => LifecycleInput::Stopped,
            names::FLOW_FAILED => {
                let reason = event.payload.get("reason").and_then(|r| r.as_str()).unwrap_or("unknown reason");
                LifecycleInput::Failed(reason.to_string())
            }
            names::USER_DELETED => return self.remove_user(event).await,
            _ => return Ok(()),
        };
        let Some(id) = event.flow_id() else { return Ok(()) };
        let Some(flow) = self.flows.get(id).await? else { return Ok(()) };
        drive(self.flows.as_ref(), self.clock.as_ref(), flow, &input, None, Some(&consumed)).await?;
        Ok(())
    }

    /// `iam.user.deleted`: removes the user from every owners list; stops active flows left
    /// with no owner.
    async fn remove_user(&self, event: &Event) -> ServiceResult<()> {
        let Some(user) =
            event.payload.get("id").and_then(|v| v.as_str()).and_then(|s| s.parse::<UserId>().ok())
        else {
            return Ok(());
        };
        for mut flow in self.flows.list_owned_by(user.0).await? {
            flow.owners.retain(|o| o.id != user.0);
            flow.updated_at = self.clock.now();
            match self.flows.save(&flow, &[], None).await {
                Ok(()) => flow.revision += 1,
                Err(PortError::Conflict | PortError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
            if flow.owners.is_empty() && matches!(flow.status, FlowStatus::Active | FlowStatus::Starting) {
                drive(self.flows.as_ref(), self.clock.as_ref(), flow, &LifecycleInput::Stop, None, None)
                    .await
                    .ok();
            }
        }
        for mut template in self.templates.list_owned_by(user.0).await? {
            template.owners.retain(|o| o.id != user.0);
            template.updated_at = self.clock.now();
            match self.templates.save(&template, &[]).await {
                Ok(()) | Err(PortError::Conflict | PortError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Watchdog settings.
#[derive(Debug, Clone, Copy)]
pub struct WatchdogConfig {
    /// How long a flow may wait in `starting` or `stopping` before the event is re-published.
    pub deadline: chrono::Duration,
    /// Re-publications before giving up and marking the flow `inactive`.
    pub max_attempts: u32,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self { deadline: chrono::Duration::seconds(60), max_attempts: 3 }
    }
}

/// Re-publishes the pending event of flows stuck in transition; gives up after a few tries.
pub struct Watchdog {
    flows: Arc<dyn FlowRepository>,
    clock: Arc<dyn Clock>,
    config: WatchdogConfig,
    bus: Option<Arc<dyn BusMonitor>>,
}

/// What one [`Watchdog::pass`] did.
#[derive(Debug, Default, PartialEq)]
pub struct WatchdogPass {
    /// The flows it acted on.
    pub acted: Vec<FlowId>,
    /// The flows it could not handle, with why.
    pub skipped: Vec<(FlowId, String)>,
}

impl Watchdog {
    /// A watchdog over `flows`.
    pub fn new(flows: Arc<dyn FlowRepository>, clock: Arc<dyn Clock>, config: WatchdogConfig) -> Self {
        Self { flows, clock, config, bus: None }
    }

    /// Names the stall of this process's consumer groups, when `bus` reports one, in the reason
    /// of a flow given up on.
    #[must_use]
    pub fn with_bus_monitor(mut self, bus: Arc<dyn BusMonitor>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// One pass: handles every flow past its deadline; returns the ids it acted on.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tick(&self) -> ServiceResult<Vec<FlowId>> {
        Ok(self.pass().await?.acted)
    }

    /// One pass, each flow alone: a flow that cannot be handled (other than during a storage
    /// outage) is skipped with why, and the others are still handled.
    ///
    /// # Errors
    /// Storage outages (listing, or handling a flow).
    pub async fn pass(&self) -> ServiceResult<WatchdogPass> {
        let before = self.clock.now() - self.config.deadline;
        let mut pass = WatchdogPass::default();
        let stalled = self.flows.list_stalled(before, 100).await?;
        let bus_stall = match &self.bus {
            Some(bus) if !stalled.is_empty() => bus.stall_reason(),
            _ => None,
        };
        for flow in stalled {
            let input = LifecycleInput::DeadlinePassed {
                attempts: flow.lifecycle_attempts,
                max_attempts: self.config.max_attempts,
                bus_stall: bus_stall.clone(),
            };
            let id = flow.id;
            match drive(self.flows.as_ref(), self.clock.as_ref(), flow, &input, None, None).await {
                Ok(_) => pass.acted.push(id),
                Err(ServiceError::NotFound(_) | ServiceError::Conflict(_)) => {}
                Err(e @ ServiceError::Unavailable(_)) => return Err(e),
                Err(e) => pass.skipped.push((id, e.to_string())),
            }
        }
        Ok(pass)
    }
}
