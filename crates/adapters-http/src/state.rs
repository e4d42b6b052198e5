//! What every handler can reach: the use-case services, the health probes of the backing
//! services, and the HTTP settings.

use flow_domain::limits::Limits;
use flow_domain::ports::{BusMonitor, Health};
use flow_domain::services::{
    AuthService, ComponentService, ExecutionService, FlowService, TemplateService, TenantService,
    UserService, WebhookService,
};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the HTTP layer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest accepted request body; larger bodies are answered 413.
    pub body_limit_bytes: usize,
    /// How long a `?sync=true` webhook call waits for its execution to end before answering
    /// 504 (the execution goes on).
    pub webhook_sync_timeout: Duration,
    /// The nesting limit of webhook bodies (the node limit is the flow service's business).
    pub limits: Limits,
}

/// The default body limit: 10 MiB.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 10 * 1024 * 1024;

/// The default wait of a `?sync=true` webhook call: 30 s.
pub const DEFAULT_WEBHOOK_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            webhook_sync_timeout: DEFAULT_WEBHOOK_SYNC_TIMEOUT,
            limits: Limits::default(),
        }
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
    /// The component catalogue and the registration of external components.
    pub components: Arc<ComponentService>,
    /// Incoming webhook calls.
    pub webhooks: Arc<WebhookService>,
    /// Executions: list, get, cancel, retry, step logs, usage.
    pub executions: Arc<ExecutionService>,
    /// Readiness of the database, for `/healthcheck`.
    pub database: Arc<dyn Health>,
    /// Readiness of the event bus, for `/healthcheck`.
    pub event_bus: Arc<dyn Health>,
    /// This process's consumer group members, for `/healthcheck`.
    pub bus_monitor: Arc<dyn BusMonitor>,
    /// HTTP settings.
    pub config: HttpConfig,
}
