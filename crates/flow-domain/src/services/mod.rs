//! Use cases. Each service checks permission and ownership, applies the rules, and persists
//! through the ports; handlers call exactly one method and render its result.

pub mod admission;
pub mod components;
pub mod executions;
pub mod flows;
pub mod identity;
pub mod lifecycle;
mod ownership;
pub mod retention;
pub mod templates;
pub mod throttle;
pub mod users;
pub mod webhook_auth;
pub mod webhooks;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod webhook_tests;

pub use admission::ExecutionBacklog;
pub use components::ComponentService;
pub use executions::ExecutionService;
pub use flows::FlowService;
pub use identity::{AuthService, FirstAdmin, IssuedToken};
pub use lifecycle::{LifecycleListener, Watchdog, WatchdogConfig, WatchdogPass};
pub use retention::{ExecutionPurge, RetentionConfig};
pub use templates::TemplateService;
pub use throttle::{LoginThrottle, ThrottleConfig};
pub use users::{TenantService, UserService};
pub use webhooks::{AdmittedCall, WebhookAccepted, WebhookCall, WebhookMethod, WebhookService};

use crate::error::ServiceError;
use crate::validate::Errors;
use serde_json::{Map, Value};

/// The body as an object, or a 400.
pub(crate) fn body_object(body: &Value, what: &str) -> Result<Map<String, Value>, ServiceError> {
    match body {
        Value::Object(obj) => Ok(obj.clone()),
        _ => {
            let mut errors = Errors::default();
            errors.general(format!("The {what} must be a JSON object."));
            Err(ServiceError::Validation(errors.finish(()).err().unwrap_or_default()))
        }
    }
}

/// Largest number of items accepted by one bulk request.
pub const MAX_BULK_ITEMS: usize = 100;
