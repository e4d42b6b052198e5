//! The flow: a named graph with owners, a lifecycle status and optional cron trigger.

use super::{Graph, Owner};
use crate::ids::{FlowId, TemplateId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// Where a flow is in its lifecycle (see [`crate::lifecycle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FlowStatus {
    /// Not running; may be edited, deleted and started.
    Inactive,
    /// Start requested; waiting for the engine's `flow.started`.
    Starting,
    /// Triggers are live.
    Active,
    /// Stop requested; waiting for the engine's `flow.stopped`.
    Stopping,
}

impl FlowStatus {
    /// Every status.
    pub const ALL: [FlowStatus; 4] =
        [FlowStatus::Inactive, FlowStatus::Starting, FlowStatus::Active, FlowStatus::Stopping];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            FlowStatus::Inactive => "inactive",
            FlowStatus::Starting => "starting",
            FlowStatus::Active => "active",
            FlowStatus::Stopping => "stopping",
        }
    }
    /// `starting` or `stopping`: waiting for the engine.
    pub fn is_transitional(&self) -> bool {
        matches!(self, FlowStatus::Starting | FlowStatus::Stopping)
    }
}

impl fmt::Display for FlowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FlowStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        FlowStatus::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

/// The flow type (informational; both run the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FlowType {
    /// The default.
    #[default]
    Ordinary,
    /// Long-running / streaming flows.
    Realtime,
}

impl FlowType {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            FlowType::Ordinary => "ordinary",
            FlowType::Realtime => "realtime",
        }
    }
}

impl FromStr for FlowType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ordinary" => Ok(FlowType::Ordinary),
            "realtime" | "long_running" => Ok(FlowType::Realtime),
            _ => Err(()),
        }
    }
}

/// The user-editable part of a flow, valid by construction
/// (built only by [`crate::validate::flow::parse_flow_spec`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FlowSpec {
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// `ordinary` or `realtime`.
    #[serde(rename = "type", default)]
    pub flow_type: FlowType,
    /// Cron expression; when set, the scheduler triggers the flow.
    #[serde(default)]
    pub cron: Option<String>,
    /// The nodes and edges.
    pub graph: Graph,
    /// Free-form settings (`webhooks` auth among them).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub flow_settings: Map<String, Value>,
}

/// A stored flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: FlowId,
    /// Name, graph and settings.
    #[serde(flatten)]
    pub spec: FlowSpec,
    /// The tenant the flow belongs to (`None` for flows of tenant-less users).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub tenant: Option<TenantId>,
    /// Who may see and act on it.
    pub owners: Vec<Owner>,
    /// Lifecycle status.
    pub status: FlowStatus,
    /// Why the flow last fell back to `inactive` (engine refusal or watchdog), if it did.
    pub status_reason: Option<String>,
    /// The template it was generated from.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub from_template: Option<TemplateId>,
    /// Creation time.
    #[serde(with = "super::millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// Last change of any field, status included.
    #[serde(with = "super::millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<Utc>,
    /// When the status last changed (drives the watchdog).
    #[serde(skip)]
    pub status_changed_at: DateTime<Utc>,
    /// How many times the watchdog re-published the pending lifecycle event.
    #[serde(skip)]
    pub lifecycle_attempts: u32,
    /// Optimistic-concurrency revision, incremented by every save; internal.
    #[serde(skip)]
    pub revision: i64,
}

impl Flow {
    /// A new flow as created: inactive, not from a template, revision 0, every timestamp `now`.
    pub fn new(spec: FlowSpec, tenant: Option<TenantId>, owners: Vec<Owner>, now: DateTime<Utc>) -> Self {
        Self {
            id: FlowId::new(),
            spec,
            tenant,
            owners,
            status: FlowStatus::Inactive,
            status_reason: None,
            from_template: None,
            created_at: now,
            updated_at: now,
            status_changed_at: now,
            lifecycle_attempts: 0,
            revision: 0,
        }
    }

    /// Whether `owner_id` (a user or tenant id) is listed among the owners.
    pub fn is_owned_by(&self, owner_id: uuid::Uuid) -> bool {
        self.owners.iter().any(|o| o.id == owner_id)
    }
}
