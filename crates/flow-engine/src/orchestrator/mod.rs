//! The engine's side of the flow lifecycle (SPEC §5, §7): on `flow.starting` it checks the
//! flow against the component catalogue, registers its trigger and confirms with
//! `flow.started` (or refuses with `flow.failed`); on `flow.stopping` it removes the trigger
//! and confirms with `flow.stopped`. Confirmations go to the outbox together with the
//! consumed-event mark, so a redelivered event has no second effect.

mod deploy;
#[cfg(test)]
mod tests;

use crate::handler::EventHandler;
use crate::triggers::TriggerRegistry;
use async_trait::async_trait;
use deploy::{FlowPayload, check_flow};
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event, names};
use flow_domain::ids::FlowId;
use flow_domain::ports::{ComponentCatalogue, Outbox};
use flow_domain::time::Clock;
use std::sync::Arc;

/// The consumer group (and consumed-event marker) of the engine.
pub const ENGINE_CONSUMER: &str = "flow-engine";

/// Starts and stops flows on lifecycle events.
pub struct Orchestrator {
    catalogue: Arc<dyn ComponentCatalogue>,
    outbox: Arc<dyn Outbox>,
    clock: Arc<dyn Clock>,
    triggers: Arc<TriggerRegistry>,
}

impl Orchestrator {
    /// The events the orchestrator handles.
    pub const EVENTS: [&'static str; 2] = [names::FLOW_STARTING, names::FLOW_STOPPING];

    /// An orchestrator with an empty trigger registry of its own.
    pub fn new(
        catalogue: Arc<dyn ComponentCatalogue>,
        outbox: Arc<dyn Outbox>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { catalogue, outbox, clock, triggers: Arc::new(TriggerRegistry::new()) }
    }

    /// Uses `triggers` (shared with the webhook handler and the scheduler) as the registry.
    pub fn with_triggers(mut self, triggers: Arc<TriggerRegistry>) -> Self {
        self.triggers = triggers;
        self
    }

    /// The registry of live triggers this orchestrator maintains.
    pub fn triggers(&self) -> Arc<TriggerRegistry> {
        Arc::clone(&self.triggers)
    }

    /// Handles one lifecycle event; other names are ignored. Idempotent.
    ///
    /// # Errors
    /// When the catalogue or the outbox fails (the event should be redelivered); a flow that
    /// cannot be deployed is not an error but a `flow.failed` confirmation.
    pub async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        match event.name.as_str() {
            names::FLOW_STARTING => self.start(event).await,
            names::FLOW_STOPPING => self.stop(event).await,
            _ => Ok(()),
        }
    }

    async fn start(&self, event: &Event) -> anyhow::Result<()> {
        let Some(flow_id) = event.flow_id() else {
            tracing::warn!(event_id = %event.id, "flow.starting without a flow id; ignored");
            return Ok(());
        };
        let outcome = match serde_json::from_value::<FlowPayload>(event.payload.clone()) {
            Ok(flow) => check_flow(self.catalogue.as_ref(), &flow).await?,
            Err(err) => Err(format!("Invalid flow document: {err}")),
        };
        let now = self.clock.now();
        let reply = match outcome {
            Ok(registration) => {
                tracing::info!(flow_id = %flow_id, trigger = ?registration.kind, "flow deployed");
                self.triggers.register(registration);
                Event::engine_confirmation(names::FLOW_STARTED, flow_id, now)
            }
            Err(reason) => {
                tracing::info!(flow_id = %flow_id, %reason, "flow refused");
                self.triggers.unregister(flow_id);
                Event::flow_failed(flow_id, &reason, now)
            }
        };
        self.confirm(event, reply).await
    }

    async fn stop(&self, event: &Event) -> anyhow::Result<()> {
        let Some(flow_id) = event.flow_id() else {
            tracing::warn!(event_id = %event.id, "flow.stopping without a flow id; ignored");
            return Ok(());
        };
        self.undeploy(flow_id);
        let reply = Event::engine_confirmation(names::FLOW_STOPPED, flow_id, self.clock.now());
        self.confirm(event, reply).await
    }

    fn undeploy(&self, flow_id: FlowId) {
        if self.triggers.unregister(flow_id).is_some() {
            tracing::info!(flow_id = %flow_id, "flow undeployed");
        }
    }

    /// Appends `reply` with the consumed mark of `event`; an already-consumed event is done.
    async fn confirm(&self, event: &Event, reply: Event) -> anyhow::Result<()> {
        let consumed = Consumed { consumer: ENGINE_CONSUMER.into(), event_id: event.id };
        match self.outbox.append(&[reply], Some(&consumed)).await {
            Ok(()) | Err(PortError::AlreadyProcessed) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

#[async_trait]
impl EventHandler for Orchestrator {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        Orchestrator::handle(self, event).await
    }
}
