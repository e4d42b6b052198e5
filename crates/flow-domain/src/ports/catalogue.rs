//! The component catalogue: which components and functions nodes may name.

use crate::ids::TenantId;
use crate::model::ExternalComponent;
use crate::query::Visibility;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

/// Whether a component starts executions or acts on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    /// Starts executions (webhook, scheduler).
    Trigger,
    /// Processes messages.
    Action,
}

/// One function of a component with the JSON Schema of its `fields`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ComponentFunction {
    /// Function name (`request`).
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of the node's `fields`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config_schema: Value,
}

/// A component as listed by `GET /components`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// The id nodes name in `componentId` (`http`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Trigger or action.
    pub kind: ComponentKind,
    /// Built in, or registered over HTTP.
    pub builtin: bool,
    /// Its functions.
    pub functions: Vec<ComponentFunction>,
}

impl ComponentSpec {
    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&ComponentFunction> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// Lists and finds components: the built-ins, and the external components of a tenant.
#[async_trait]
pub trait ComponentCatalogue: Send + Sync {
    /// Every component `visibility` allows, built-ins first.
    ///
    /// # Errors
    /// When registered components cannot be read.
    async fn list(&self, visibility: &Visibility) -> anyhow::Result<Vec<ComponentSpec>>;

    /// The component with `id` usable by a flow of `tenant` (a built-in, or an external
    /// component registered by that tenant).
    ///
    /// # Errors
    /// When registered components cannot be read.
    async fn find(&self, id: &str, tenant: Option<TenantId>) -> anyhow::Result<Option<ComponentSpec>>;
}

impl From<&ExternalComponent> for ComponentSpec {
    fn from(component: &ExternalComponent) -> Self {
        ComponentSpec {
            id: component.name.clone(),
            name: component.name.clone(),
            description: format!("External component at {}", component.url),
            kind: ComponentKind::Action,
            builtin: false,
            functions: component
                .functions
                .iter()
                .map(|f| ComponentFunction {
                    name: f.name.clone(),
                    description: f.description.clone(),
                    config_schema: serde_json::json!({ "type": "object" }),
                })
                .collect(),
        }
    }
}
