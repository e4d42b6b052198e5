//! Builders of sample data for the storage contracts. Names carry a unique marker so the
//! suite can share a database with other runs; timestamps are whole milliseconds (the storage
//! precision every adapter guarantees).

use chrono::{DateTime, TimeZone, Utc};
use flow_domain::event::{Event, names};
use flow_domain::ids::{FlowId, TemplateId, TenantId, TokenId, UserId};
use flow_domain::model::{
    AccessToken, Edge, EdgeConfig, Flow, FlowSpec, FlowStatus, FlowType, Graph, NewUser, Node, Owner,
    Template, TemplateSpec, TemplateStatus, Tenant, User, UserStatus,
};
use flow_domain::permission::Permission;
use flow_domain::ports::{Outbox, StoredEvent};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// A unique marker for names, so searches find only this run's rows.
pub fn marker() -> String {
    format!("m{}", Uuid::new_v4().simple())
}

/// `at` truncated to whole milliseconds.
pub fn ms(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// Now, in whole milliseconds.
pub fn now() -> DateTime<Utc> {
    ms(Utc::now())
}

/// A fixed instant long ago, plus `offset_ms` (for rows whose times must not interleave with
/// other rows' times).
pub fn long_ago(offset_ms: i64) -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).single().unwrap_or_default();
    base + chrono::Duration::milliseconds(offset_ms)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A two-node graph using every node and edge field.
pub fn graph() -> Graph {
    Graph {
        nodes: vec![
            Node {
                id: "trigger".into(),
                component_id: "webhook".into(),
                function: "receive".into(),
                name: Some("Incoming".into()),
                description: Some("Webhook trigger".into()),
                credentials_id: None,
                fields: object(json!({ "path": "/in" })),
                node_settings: Map::new(),
            },
            Node {
                id: "send".into(),
                component_id: "http".into(),
                function: "request".into(),
                name: None,
                description: None,
                credentials_id: Some("cred-1".into()),
                fields: object(json!({ "url": "https://example.com/hook", "headers": { "x-a": "1" } })),
                node_settings: object(json!({ "retries": 3 })),
            },
        ],
        edges: vec![Edge {
            id: Some("e1".into()),
            source: "trigger".into(),
            target: "send".into(),
            config: EdgeConfig { condition: Some(".ok == true".into()), mapper: Some("{a: .b}".into()) },
        }],
    }
}

/// A flow named `name` of `tenant` owned by `owners`, inactive, created now.
pub fn flow(name: &str, tenant: Option<TenantId>, owners: Vec<Owner>) -> Flow {
    let at = now();
    Flow {
        id: FlowId::new(),
        spec: FlowSpec {
            name: name.into(),
            description: None,
            flow_type: FlowType::Ordinary,
            cron: None,
            graph: graph(),
            flow_settings: Map::new(),
        },
        tenant,
        owners,
        status: FlowStatus::Inactive,
        status_reason: None,
        from_template: None,
        created_at: at,
        updated_at: at,
        status_changed_at: at,
        lifecycle_attempts: 0,
        revision: 0,
    }
}

/// A draft template named `name` of `tenant` owned by `owners`, with `tags`.
pub fn template(name: &str, tenant: Option<TenantId>, owners: Vec<Owner>, tags: &[&str]) -> Template {
    let at = now();
    Template {
        id: TemplateId::new(),
        spec: TemplateSpec {
            name: name.into(),
            description: None,
            flow_type: FlowType::Ordinary,
            cron: None,
            graph: json!({ "nodes": [{ "id": "a", "componentId": "http", "function": "{{fn}}" }], "edges": [] }),
            flow_settings: Map::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            status: TemplateStatus::Draft,
        },
        tenant,
        owners,
        created_at: at,
        updated_at: at,
        revision: 0,
    }
}

/// An active user (`can_login`) or end user (`!can_login`) of `tenant`.
pub fn user(username: &str, tenant: Option<TenantId>, can_login: bool) -> User {
    let at = now();
    User {
        id: UserId::new(),
        username: username.into(),
        firstname: Some("Ada".into()),
        lastname: Some("Lovelace".into()),
        status: UserStatus::Active,
        tenant,
        permissions: vec![Permission::FlowsRead, Permission::FlowsWrite],
        can_login,
        created_at: at,
        updated_at: at,
    }
}

/// `user` with `hash` as its password hash (`None` for end users).
pub fn new_user(user: &User, hash: Option<&str>) -> NewUser {
    NewUser { user: user.clone(), password_hash: hash.map(String::from) }
}

/// A tenant named `name`, created now.
pub fn tenant(name: &str) -> Tenant {
    let at = now();
    Tenant { id: TenantId::new(), name: name.into(), created_at: at, updated_at: at }
}

/// A token of `user` with `hash`, expiring at `expires_at`.
pub fn token(user: UserId, hash: &str, expires_at: DateTime<Utc>) -> AccessToken {
    AccessToken { id: TokenId::new(), user_id: user, hash: hash.into(), created_at: now(), expires_at }
}

/// A `flow.started` event for a random flow.
pub fn event() -> Event {
    Event::engine_confirmation(names::FLOW_STARTED, FlowId::new(), now())
}

/// A per-flow event with the whole flow as payload.
pub fn flow_event(flow: &Flow) -> Event {
    Event::flow_stopping(flow, now())
}

/// Claims every pending event, marks them published, and returns them in order.
///
/// # Panics
/// When the outbox fails.
pub async fn drain(outbox: &dyn Outbox) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    loop {
        let batch = outbox.claim("relay#1", 1000).await.expect("claim");
        if batch.is_empty() {
            return all;
        }
        let seqs: Vec<i64> = batch.iter().map(|e| e.seq).collect();
        outbox.mark_published(&seqs).await.expect("mark published");
        all.extend(batch);
    }
}

/// The events among `stored` (in order), without their positions.
pub fn events_of(stored: &[StoredEvent]) -> Vec<Event> {
    stored.iter().map(|s| s.event.clone().expect("a readable event")).collect()
}
