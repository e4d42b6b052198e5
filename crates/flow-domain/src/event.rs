//! Event envelopes of the bus (SPEC §5) and the constructors of each event.

use crate::ids::{EventId, ExecutionId, FlowId, TemplateId, TenantId, UserId};
use crate::model::Flow;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Event names.
pub mod names {
    /// API: start requested (payload: whole flow + `startedBy`).
    pub const FLOW_STARTING: &str = "flow.starting";
    /// Engine: triggers live (payload `{id}`).
    pub const FLOW_STARTED: &str = "flow.started";
    /// Engine: a node cannot be deployed (payload `{id, reason}`).
    pub const FLOW_FAILED: &str = "flow.failed";
    /// API: stop requested, or after `flow.failed` (payload: whole flow).
    pub const FLOW_STOPPING: &str = "flow.stopping";
    /// Engine: triggers removed (payload `{id}`).
    pub const FLOW_STOPPED: &str = "flow.stopped";
    /// Webhooks and scheduler: run the flow (payload `{flowId, executionId}`).
    pub const FLOW_EXECUTE: &str = "flow.execute";
    /// API: a flow was created.
    pub const FLOW_CREATED: &str = "flowrepo.flow.created";
    /// API: a flow was modified.
    pub const FLOW_MODIFIED: &str = "flowrepo.flow.modified";
    /// API: a flow was deleted.
    pub const FLOW_DELETED: &str = "flowrepo.flow.deleted";
    /// API: a template was created.
    pub const TEMPLATE_CREATED: &str = "templaterepo.template.created";
    /// API: a template was modified.
    pub const TEMPLATE_MODIFIED: &str = "templaterepo.template.modified";
    /// API: a template was deleted.
    pub const TEMPLATE_DELETED: &str = "templaterepo.template.deleted";
    /// API: a user was created.
    pub const USER_CREATED: &str = "iam.user.created";
    /// API: a user was deleted.
    pub const USER_DELETED: &str = "iam.user.deleted";
}

/// The envelope `{id, name, createdAt, source, payload}`; `key` orders events per flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique id; consumers deduplicate on it.
    pub id: EventId,
    /// One of [`names`].
    pub name: String,
    /// Partitioning key (the flow id for per-flow events); not part of the envelope.
    #[serde(skip)]
    pub key: Option<String>,
    /// When the event was created.
    #[serde(with = "crate::model::millis")]
    pub created_at: DateTime<Utc>,
    /// Which component emitted it (`flow-repository`, `flow-engine`, `iam`, ...).
    pub source: String,
    /// Event-specific data.
    pub payload: Value,
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(name: &str, key: Option<String>, source: &str, payload: Value, now: DateTime<Utc>) -> Self {
        Self { id: EventId::new(), name: name.into(), key, created_at: now, source: source.into(), payload }
    }

    /// The `flowId`/`id` of a per-flow event's payload, if present and well formed.
    pub fn flow_id(&self) -> Option<FlowId> {
        self.payload
            .get("id")
            .or_else(|| self.payload.get("flowId"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    }

    /// `flow.starting`: the whole flow (without its webhook secret) plus `startedBy`.
    pub fn flow_starting(flow: &Flow, started_by: Option<UserId>, now: DateTime<Utc>) -> Self {
        let mut payload = flow_payload(flow);
        if let (Some(obj), Some(by)) = (payload.as_object_mut(), started_by) {
            obj.insert("startedBy".into(), json!(by));
        }
        Self::new(names::FLOW_STARTING, Some(flow.id.to_string()), FLOWS_SOURCE, payload, now)
    }

    /// `flow.stopping`: the whole flow (without its webhook secret).
    pub fn flow_stopping(flow: &Flow, now: DateTime<Utc>) -> Self {
        let payload = flow_payload(flow);
        Self::new(names::FLOW_STOPPING, Some(flow.id.to_string()), FLOWS_SOURCE, payload, now)
    }

    /// An engine confirmation: `flow.started` / `flow.stopped` with `{id}`.
    pub fn engine_confirmation(name: &str, flow: FlowId, now: DateTime<Utc>) -> Self {
        Self::new(name, Some(flow.to_string()), ENGINE_SOURCE, json!({ "id": flow }), now)
    }

    /// `flow.failed` with `{id, reason}`.
    pub fn flow_failed(flow: FlowId, reason: &str, now: DateTime<Utc>) -> Self {
        Self::new(
            names::FLOW_FAILED,
            Some(flow.to_string()),
            ENGINE_SOURCE,
            json!({ "id": flow, "reason": reason }),
            now,
        )
    }

    /// `flowrepo.flow.*` audit events `{tenant, user, flowId}`.
    pub fn flow_repo(
        name: &str,
        flow: FlowId,
        tenant: Option<TenantId>,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Self {
        let payload = json!({ "tenant": tenant, "user": user, "flowId": flow });
        Self::new(name, Some(flow.to_string()), FLOWS_SOURCE, payload, now)
    }

    /// `templaterepo.template.*` audit events `{tenant, user, templateId}`.
    pub fn template_repo(
        name: &str,
        template: TemplateId,
        tenant: Option<TenantId>,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Self {
        let payload = json!({ "tenant": tenant, "user": user, "templateId": template });
        Self::new(name, Some(template.to_string()), TEMPLATES_SOURCE, payload, now)
    }

    /// `flow.execute` with `{flowId, executionId}` (the message is stored with the execution).
    ///
    /// Keyed by the execution, not the flow: executions of one flow run concurrently anyway,
    /// so no order is lost, and a busy flow's executions spread over every partition and so
    /// over every worker (keyed by flow, one flow's executions all went to one worker).
    pub fn flow_execute(flow: FlowId, execution: ExecutionId, now: DateTime<Utc>) -> Self {
        Self::new(
            names::FLOW_EXECUTE,
            Some(execution.to_string()),
            EXECUTIONS_SOURCE,
            json!({ "flowId": flow, "executionId": execution }),
            now,
        )
    }

    /// The `executionId` of a `flow.execute` payload, if well formed.
    pub fn execution_id(&self) -> Option<ExecutionId> {
        self.payload.get("executionId").and_then(Value::as_str).and_then(|s| s.parse().ok())
    }

    /// `iam.user.*` events `{id}`.
    pub fn user_event(name: &str, user: UserId, now: DateTime<Utc>) -> Self {
        Self::new(name, Some(user.to_string()), IAM_SOURCE, json!({ "id": user }), now)
    }
}

/// A flow as an event payload: the whole flow but its write-only webhook secret (no consumer
/// needs it; the webhook use case reads it from storage).
fn flow_payload(flow: &Flow) -> Value {
    let mut payload = serde_json::to_value(flow).unwrap_or(Value::Null);
    if let Some(Value::Object(settings)) = payload.get_mut("flowSettings") {
        crate::services::webhook_auth::redact_secret(settings);
    }
    payload
}

/// Source of events published by the flows use cases.
pub const FLOWS_SOURCE: &str = "flow-repository";
/// Source of `flow.execute` events (webhooks, scheduler, retries).
pub const EXECUTIONS_SOURCE: &str = "executions";
/// Source of events published by the engine.
pub const ENGINE_SOURCE: &str = "flow-engine";
/// Source of events published by the template use cases.
pub const TEMPLATES_SOURCE: &str = "template-repository";
/// Source of events published by the identity use cases.
pub const IAM_SOURCE: &str = "iam";

/// Marks an event as handled by one consumer. Written in the same transaction as the
/// consumer's effect so a redelivered event has no second effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The consumer (group) name.
    pub consumer: String,
    /// The event handled.
    pub event_id: EventId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::flow::parse_flow_document;

    #[test]
    fn lifecycle_events_carry_the_flow_without_its_webhook_secret() {
        let doc = json!({
            "name": "signed",
            "flowSettings": {"webhooks": {"requireWebhookAuth": true, "secret": "s3cret", "hmacAuthSecret": "old"}},
            "graph": {"nodes": [{"id": "a", "componentId": "webhook", "function": "receive"}]}
        });
        let spec = parse_flow_document(&doc, &crate::limits::Limits::default())
            .map(|d| d.spec)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let flow = Flow::new(spec, None, Vec::new(), Utc::now());
        for event in [Event::flow_starting(&flow, None, Utc::now()), Event::flow_stopping(&flow, Utc::now())]
        {
            assert_eq!(event.payload["flowSettings"], json!({"webhooks": {"requireWebhookAuth": true}}));
            assert!(!event.payload.to_string().contains("s3cret"), "{}", event.name);
            assert_eq!(event.flow_id(), Some(flow.id));
        }
        assert_eq!(flow.spec.flow_settings["webhooks"]["secret"], "s3cret", "the flow keeps it");
    }
}
