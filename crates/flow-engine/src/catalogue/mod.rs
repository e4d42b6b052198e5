//! The component catalogue: the built-in components of SPEC §7 with the JSON Schema of each
//! function's `fields`, the composite [`Catalogue`] adding registered external components, and
//! the checker the orchestrator applies to a node's configuration.

mod builtin;
mod composite;
mod schema;

pub use builtin::builtin_components;
pub use composite::Catalogue;
pub use schema::check_fields;

use async_trait::async_trait;
use flow_domain::ids::TenantId;
use flow_domain::ports::{ComponentCatalogue, ComponentSpec};
use flow_domain::query::Visibility;

/// The catalogue of built-in components (`webhook`, `scheduler`, `http`, `jq`, `filter`,
/// `code`, `log`, `delay`).
#[derive(Debug, Clone)]
pub struct BuiltinCatalogue {
    components: Vec<ComponentSpec>,
}

impl BuiltinCatalogue {
    /// The catalogue of every built-in component.
    pub fn new() -> Self {
        Self { components: builtin_components() }
    }

    /// The components, in listing order.
    pub fn components(&self) -> &[ComponentSpec] {
        &self.components
    }
}

impl Default for BuiltinCatalogue {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ComponentCatalogue for BuiltinCatalogue {
    async fn list(&self, _visibility: &Visibility) -> anyhow::Result<Vec<ComponentSpec>> {
        Ok(self.components.clone())
    }

    async fn find(&self, id: &str, _tenant: Option<TenantId>) -> anyhow::Result<Option<ComponentSpec>> {
        Ok(self.components.iter().find(|c| c.id == id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_domain::ports::ComponentKind;

    #[tokio::test]
    async fn lists_every_builtin_with_its_functions() {
        let catalogue = BuiltinCatalogue::new();
        let listed = catalogue.list(&Visibility::All).await.expect("list");
        let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["webhook", "scheduler", "http", "jq", "filter", "code", "log", "delay"]);
        let expected_functions = [
            ("webhook", "receive"),
            ("scheduler", "schedule"),
            ("http", "request"),
            ("jq", "transform"),
            ("filter", "filter"),
            ("code", "run"),
            ("log", "info"),
            ("delay", "wait"),
        ];
        for (component, function) in expected_functions {
            let spec = catalogue.find(component, None).await.expect("find").expect("exists");
            assert!(spec.builtin);
            assert!(spec.function(function).is_some(), "{component}.{function}");
        }
        for spec in &listed {
            let trigger = matches!(spec.id.as_str(), "webhook" | "scheduler");
            assert_eq!(spec.kind == ComponentKind::Trigger, trigger, "{}", spec.id);
        }
        assert!(catalogue.find("nosuch", None).await.expect("find").is_none());
    }

    #[test]
    fn every_schema_is_an_object_schema_with_properties_and_required() {
        for spec in builtin_components() {
            for function in &spec.functions {
                let schema = &function.config_schema;
                assert_eq!(schema["type"], "object", "{}.{}", spec.id, function.name);
                assert!(schema["properties"].is_object(), "{}.{}", spec.id, function.name);
                let required = schema["required"].as_array().expect("required array");
                for key in required {
                    let key = key.as_str().expect("string key");
                    assert!(schema["properties"].get(key).is_some(), "{}.{} {key}", spec.id, function.name);
                }
            }
        }
    }
}
