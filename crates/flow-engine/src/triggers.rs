//! The triggers of the flows this engine runs: which flows accept webhooks and which fire on a
//! cron schedule. Written by the orchestrator on start and stop; read by the webhook handler
//! and the scheduler.

use flow_domain::ids::FlowId;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// How a running flow is triggered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerKind {
    /// Executions start on requests to the flow's webhook URL.
    Webhook,
    /// Executions start at each due time of this cron expression.
    Cron(String),
}

/// A live trigger of one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRegistration {
    /// The flow.
    pub flow_id: FlowId,
    /// Webhook or cron.
    pub kind: TriggerKind,
    /// Id of the graph's trigger node (where executions start).
    pub trigger_node: String,
}

/// The live triggers, by flow id. Shared (`Arc`) between the orchestrator and the components
/// that start executions.
#[derive(Debug, Default)]
pub struct TriggerRegistry {
    triggers: RwLock<HashMap<FlowId, TriggerRegistration>>,
}

impl TriggerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) the trigger of `registration.flow_id`.
    pub fn register(&self, registration: TriggerRegistration) {
        let mut triggers = self.triggers.write().unwrap_or_else(PoisonError::into_inner);
        triggers.insert(registration.flow_id, registration);
    }

    /// Removes the trigger of `flow_id`, returning it if there was one.
    pub fn unregister(&self, flow_id: FlowId) -> Option<TriggerRegistration> {
        self.triggers.write().unwrap_or_else(PoisonError::into_inner).remove(&flow_id)
    }

    /// The trigger of `flow_id`, if the flow runs here.
    pub fn get(&self, flow_id: FlowId) -> Option<TriggerRegistration> {
        self.triggers.read().unwrap_or_else(PoisonError::into_inner).get(&flow_id).cloned()
    }

    /// Every flow triggered by webhook.
    pub fn webhooks(&self) -> Vec<TriggerRegistration> {
        self.matching(|kind| matches!(kind, TriggerKind::Webhook))
    }

    /// Every flow triggered by a cron schedule.
    pub fn crons(&self) -> Vec<TriggerRegistration> {
        self.matching(|kind| matches!(kind, TriggerKind::Cron(_)))
    }

    /// How many flows have a live trigger.
    pub fn len(&self) -> usize {
        self.triggers.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no flow has a live trigger.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn matching(&self, keep: impl Fn(&TriggerKind) -> bool) -> Vec<TriggerRegistration> {
        let triggers = self.triggers.read().unwrap_or_else(PoisonError::into_inner);
        triggers.values().filter(|r| keep(&r.kind)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_replaces_and_unregisters() {
        let registry = TriggerRegistry::new();
        let (a, b) = (FlowId::new(), FlowId::new());
        registry.register(TriggerRegistration {
            flow_id: a,
            kind: TriggerKind::Webhook,
            trigger_node: "t".into(),
        });
        registry.register(TriggerRegistration {
            flow_id: b,
            kind: TriggerKind::Cron("* * * * *".into()),
            trigger_node: "t".into(),
        });
        registry.register(TriggerRegistration {
            flow_id: a,
            kind: TriggerKind::Webhook,
            trigger_node: "u".into(),
        });
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.get(a).map(|r| r.trigger_node), Some("u".into()));
        assert_eq!(registry.webhooks().len(), 1);
        assert_eq!(registry.crons().first().map(|r| r.flow_id), Some(b));
        assert!(registry.unregister(a).is_some());
        assert!(registry.unregister(a).is_none());
        assert!(registry.get(a).is_none());
        assert!(!registry.is_empty());
    }
}
