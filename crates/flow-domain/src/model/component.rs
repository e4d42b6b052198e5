//! External components: registered over the API (`POST /components`) with a URL the engine
//! calls with `{function, fields, msg}`. They belong to the registering tenant.

use super::Owner;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One function of an external component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalFunction {
    /// Function name, as nodes name it in `function`.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
}

/// A component registered over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalComponent {
    /// The id nodes name in `componentId`; unique over every tenant and never a built-in's.
    pub name: String,
    /// Where the engine POSTs `{function, fields, msg}`.
    pub url: String,
    /// Its functions.
    pub functions: Vec<ExternalFunction>,
    /// The registering tenant (only its flows may use it).
    pub tenant: Option<TenantId>,
    /// Who may see it.
    pub owners: Vec<Owner>,
    /// When it was registered.
    #[serde(with = "super::millis")]
    pub created_at: DateTime<Utc>,
}
