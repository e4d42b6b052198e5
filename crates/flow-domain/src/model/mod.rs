//! The model: flows, graphs, templates, users, tenants, owners, tokens, executions.

mod component;
mod execution;
mod flow;
mod graph;
mod identity;
mod owner;
mod process;
mod template;

pub use component::{ExternalComponent, ExternalFunction};
pub use execution::{
    Counters, Execution, ExecutionStatus, SAMPLE_OUTPUT_LIMIT, StepRecord, StepStatus, TriggerInfo,
    TriggerType, unreadable_message,
};
pub use flow::{Flow, FlowSpec, FlowStatus, FlowType};
pub use graph::{Edge, EdgeConfig, Graph, Node};
pub use identity::{AccessToken, NewUser, Tenant, TokenRevocation, User, UserStatus};
pub(crate) use owner::add_owner as add_owner_pub;
pub use owner::{Owner, OwnerType};
pub use process::ProcessIdentity;
pub use template::{Template, TemplateSpec, TemplateStatus};

/// Serde helpers for API timestamps (RFC 3339, UTC, milliseconds).
pub mod millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `2026-05-01T12:00:00.000Z`.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::format_timestamp(at))
    }
    /// Accepts any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers for optional API timestamps (as [`millis`], `null` when absent).
pub mod millis_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `2026-05-01T12:00:00.000Z` or `null`.
    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&crate::time::format_timestamp(at)),
            None => s.serialize_none(),
        }
    }
    /// Accepts any RFC 3339 timestamp or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| {
                DateTime::parse_from_rfc3339(&raw)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}
