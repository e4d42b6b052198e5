//! Flow templates: reusable blueprints, `draft` until published, from which flows are generated.

use super::Owner;
use crate::ids::{TemplateId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::str::FromStr;

/// Publication state of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TemplateStatus {
    /// Editable, deletable, cannot generate flows.
    #[default]
    Draft,
    /// Frozen (only its status may change); generates flows.
    Published,
}

impl TemplateStatus {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TemplateStatus::Draft => "draft",
            TemplateStatus::Published => "published",
        }
    }
}

impl FromStr for TemplateStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "draft" | "0" => Ok(TemplateStatus::Draft),
            "published" | "1" => Ok(TemplateStatus::Published),
            _ => Err(()),
        }
    }
}

/// The editable part of a template. Its graph is kept as JSON because a template may leave
/// variable parts open; it is validated as a flow only when a flow is generated from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// `ordinary` or `realtime`.
    #[serde(rename = "type", default)]
    pub flow_type: super::FlowType,
    /// Cron expression for generated flows.
    #[serde(default)]
    pub cron: Option<String>,
    /// The graph blueprint (`{nodes, edges}`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub graph: Value,
    /// Settings copied into generated flows.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub flow_settings: Map<String, Value>,
    /// Free tags used by the `tags` list filter.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `draft` or `published`.
    #[serde(default)]
    pub status: TemplateStatus,
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: TemplateId,
    /// Name, graph, tags, status.
    #[serde(flatten)]
    pub spec: TemplateSpec,
    /// The tenant it belongs to.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub tenant: Option<TenantId>,
    /// Who may see and act on it.
    pub owners: Vec<Owner>,
    /// Creation time.
    #[serde(with = "super::millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "super::millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency revision, incremented by every save; internal.
    #[serde(skip)]
    pub revision: i64,
}
