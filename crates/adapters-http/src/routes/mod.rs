//! The handlers, one module per resource. Each handler parses, calls one use case and renders;
//! each module's `router()` registers its handlers with their OpenAPI description.

pub mod auth;
pub mod components;
pub mod executions;
pub mod flow_control;
pub mod flows;
pub mod health;
pub mod templates;
pub mod tenants;
pub mod users;
pub mod webhooks;

/// The name of the bearer security scheme in the OpenAPI document.
pub const BEARER: &str = "bearerAuth";
