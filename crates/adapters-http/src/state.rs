//! What every handler can reach: the use-case services, the component catalogue, the health
//! probes of the backing services, and the HTTP settings.

use flow_domain::ports::{ComponentCatalogue, Health};
use flow_domain::services::{AuthService, FlowService, TemplateService, TenantService, UserService};
use std::sync::Arc;

/// Settings of the HTTP layer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest accepted request body; larger bodies are answered 413.
    pub body_limit_bytes: usize,
}

/// The default body limit: 10 MiB.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 10 * 1024 * 1024;

impl Default for HttpConfig {
    fn default() -> Self {
        Self { body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES }
    }
}

/// The router's state: cheap to clone (everything is behind an `Arc`).
#[derive(Clone)]
pub struct AppState {
    /// Login, logout, token authentication, impersonation.
    pub auth: Arc<AuthService>,
    /// User administration.
    pub users: Arc<UserService>,
    /// Tenant administration.
    pub tenants: Arc<TenantService>,
    /// Flows and their lifecycle.
    pub flows: Arc<FlowService>,
    /// Templates and flow generation.
    pub templates: Arc<TemplateService>,
    /// The components nodes may use.
    pub components: Arc<dyn ComponentCatalogue>,
    /// Readiness of the database, for `/healthcheck`.
    pub database: Arc<dyn Health>,
    /// Readiness of the event bus, for `/healthcheck`.
    pub event_bus: Arc<dyn Health>,
    /// HTTP settings.
    pub config: HttpConfig,
}
