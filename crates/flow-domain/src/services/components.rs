//! Component use cases: the catalogue (`GET /components`) and the registration of external
//! components (`POST /components`), which belong to the caller's tenant.

use super::body_object;
use crate::actor::Actor;
use crate::error::{FieldError, PortError, ServiceError, ServiceResult};
use crate::model::{ExternalComponent, ExternalFunction, Owner};
use crate::permission::Permission;
use crate::ports::{ComponentCatalogue, ComponentRepository, ComponentSpec};
use crate::time::Clock;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// The 409 for a name already used by a built-in or another registration.
pub const NAME_TAKEN: &str = "A component with this name already exists.";

/// Component use cases.
pub struct ComponentService {
    components: Arc<dyn ComponentRepository>,
    catalogue: Arc<dyn ComponentCatalogue>,
    clock: Arc<dyn Clock>,
}

impl ComponentService {
    /// A service over the external-component store and the catalogue.
    pub fn new(
        components: Arc<dyn ComponentRepository>,
        catalogue: Arc<dyn ComponentCatalogue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { components, catalogue, clock }
    }

    /// `GET /components`: the built-ins and the external components the caller may see.
    ///
    /// # Errors
    /// `Unexpected` when registered components cannot be read.
    pub async fn list(&self, actor: &Actor) -> ServiceResult<Vec<ComponentSpec>> {
        Ok(self.catalogue.list(&actor.visibility()).await?)
    }

    /// `POST /components` with `{name, url, functions: [{name, description}]}`.
    ///
    /// # Errors
    /// `Forbidden` without `flows.write`; `Validation` with every problem; `Conflict` when the
    /// name is taken.
    pub async fn register(&self, actor: &Actor, body: &Value) -> ServiceResult<ComponentSpec> {
        actor.require(Permission::FlowsWrite)?;
        let (name, url, functions) = parse_registration(body)?;
        if self.catalogue.find(&name, None).await?.is_some_and(|c| c.builtin) {
            return Err(ServiceError::Conflict(NAME_TAKEN.into()));
        }
        let mut owners = vec![Owner::user(actor.user_id.0)];
        if let Some(tenant) = actor.tenant {
            owners.push(Owner::tenant(tenant.0));
        }
        let component = ExternalComponent {
            name,
            url,
            functions,
            tenant: actor.tenant,
            owners,
            created_at: self.clock.now(),
        };
        match self.components.insert(&component).await {
            Ok(()) => Ok(ComponentSpec::from(&component)),
            Err(PortError::Duplicate(_)) => Err(ServiceError::Conflict(NAME_TAKEN.into())),
            Err(err) => Err(err.into()),
        }
    }
}

fn is_component_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 63
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

fn parse_registration(body: &Value) -> ServiceResult<(String, String, Vec<ExternalFunction>)> {
    let obj = body_object(body, "component")?;
    let mut errors: Vec<FieldError> = Vec::new();
    for key in obj.keys() {
        if !["name", "url", "functions", "description"].contains(&key.as_str()) {
            errors.push(FieldError::at(key, format!("Unknown field \"{key}\".")));
        }
    }
    let name = obj.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if !is_component_name(&name) {
        errors.push(FieldError::at(
            "name",
            "A component needs a name of 1 to 63 characters: lowercase letters, digits, '-', '_' or '.', starting with a letter.",
        ));
    }
    let url = obj.get("url").and_then(Value::as_str).unwrap_or_default().to_string();
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.len() > 2048 || url.contains(char::is_whitespace) {
        errors.push(FieldError::at("url", "A component needs an http:// or https:// url."));
    }
    let mut functions = Vec::new();
    match obj.get("functions") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                match serde_json::from_value::<ExternalFunction>(item.clone()) {
                    Ok(f) if !f.name.trim().is_empty() && seen.insert(f.name.clone()) => functions.push(f),
                    Ok(_) => errors.push(FieldError::at(
                        format!("functions[{i}].name"),
                        "Function names must be non-empty and unique.",
                    )),
                    Err(err) => errors.push(FieldError::at(format!("functions[{i}]"), err.to_string())),
                }
            }
        }
        _ => errors.push(FieldError::at("functions", "A component needs at least one function.")),
    }
    if errors.is_empty() { Ok((name, url, functions)) } else { Err(ServiceError::Validation(errors)) }
}
