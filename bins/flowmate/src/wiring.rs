//! Wiring: configuration -> adapters -> services -> background workers -> router. The binary and
//! the tests build the application through [`start`], so both run exactly the same thing.

use crate::config::{Config, SqliteSync, Storage};
use adapters_crypto::{Argon2Hasher, RandomTokenMinter};
use adapters_http::{AppState, HttpConfig};
use adapters_inprocess::InProcessBus;
use adapters_sqlite::{SqliteConfig, SqliteStore};
use anyhow::{Context, bail};
use flow_domain::actor::Actor;
use flow_domain::event::names;
use flow_domain::ids::UserId;
use flow_domain::permission::{Permission, PermissionSet};
use flow_domain::ports::{ComponentCatalogue, Health};
use flow_domain::services::{
    AuthService, ComponentService, ExecutionService, FirstAdmin, FlowService, LifecycleListener,
    LoginThrottle, TemplateService, TenantService, ThrottleConfig, UserService, Watchdog, WatchdogConfig,
    WebhookService,
};
use flow_domain::time::{Clock, SystemClock};
use flow_engine::components::HttpConfig as ComponentHttpConfig;
use flow_engine::orchestrator::Orchestrator;
use flow_engine::runtime::{LifecycleHandler, spawn_consumer, spawn_relay, spawn_watchdog};
use flow_engine::{
    Catalogue, ComponentRegistry, EXECUTOR_CONSUMER, Executor, ExecutorConfig, Scheduler, spawn_recovery,
    spawn_scheduler,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running application: the router to serve and the background workers behind it.
pub struct App {
    /// The HTTP application.
    pub router: axum::Router,
    /// What start-up did about the first admin.
    pub first_admin: FirstAdmin,
    bus: InProcessBus,
    executor: Arc<Executor>,
    grace: Duration,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl App {
    /// Stops the workers (between batches), lets running executions finish within the grace
    /// period (what outlives it is resumed by another worker once its lease runs out) and waits
    /// for the workers.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.executor.shutdown(self.grace).await;
        self.bus.close();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<SqliteStore> {
    let (storage, _bus) = config.validate()?;
    let Storage::Sqlite(path) = storage else { bail!("only SQLite storage is available in this build") };
    let mut sqlite = SqliteConfig::new(path.clone());
    sqlite.synchronous_full = config.sqlite_synchronous == SqliteSync::Full;
    SqliteStore::connect(sqlite)
        .await
        .with_context(|| format!("cannot open the SQLite database {}", path.display()))
}

/// Builds and starts everything for `config`.
///
/// # Errors
/// Invalid configuration, unreachable storage, failed migrations.
pub async fn start(config: &Config) -> anyhow::Result<App> {
    let store = Arc::new(open_store(config).await?);
    let bus = InProcessBus::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hasher = Arc::new(Argon2Hasher::with_cost(config.argon2_memory_kib, config.argon2_iterations)?);
    let auth = Arc::new(AuthService::new(
        store.clone(),
        store.clone(),
        hasher.clone(),
        Arc::new(RandomTokenMinter),
        clock.clone(),
        LoginThrottle::new(ThrottleConfig::default()),
        chrono::Duration::seconds(i64::try_from(config.token_ttl_secs).unwrap_or(i64::MAX / 1000)),
    ));
    let first_admin =
        auth.ensure_first_admin(&config.admin_username, config.admin_password.as_deref()).await?;
    let flows = Arc::new(FlowService::new(store.clone(), clock.clone()));
    let catalogue: Arc<dyn ComponentCatalogue> = Arc::new(Catalogue::new().with_externals(store.clone()));
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    // Consumers subscribe before the relay starts, so no pending outbox event is missed.
    let listener = Arc::new(LifecycleListener::new(store.clone(), store.clone(), clock.clone()));
    tasks.push(
        spawn_consumer(
            Arc::new(bus.clone()),
            flow_domain::services::lifecycle::FLOWS_CONSUMER,
            &LifecycleListener::EVENTS,
            Arc::new(LifecycleHandler(listener)),
            cancel.clone(),
        )
        .await?,
    );
    let orchestrator = Arc::new(Orchestrator::new(catalogue.clone(), store.clone(), clock.clone()));
    tasks.push(
        spawn_consumer(
            Arc::new(bus.clone()),
            "flow-engine",
            &[names::FLOW_STARTING, names::FLOW_STOPPING],
            orchestrator,
            cancel.clone(),
        )
        .await?,
    );
    let registry = ComponentRegistry::builtin(ComponentHttpConfig::default())
        .map_err(|err| anyhow::anyhow!("cannot build the HTTP client: {err}"))?
        .with_externals(store.clone());
    let executor = Arc::new(Executor::new(
        store.clone(),
        store.clone(),
        Arc::new(registry),
        clock.clone(),
        ExecutorConfig {
            lease: Duration::from_secs(config.execution_lease_secs.max(1)),
            max_concurrent: config.max_concurrent_executions.max(1),
            max_per_flow: config.max_concurrent_per_flow.max(1),
            max_lease_attempts: config.execution_max_attempts,
            allow_private_networks: config.allow_private_networks,
            ..ExecutorConfig::default()
        },
    ));
    tasks.push(
        spawn_consumer(
            Arc::new(bus.clone()),
            EXECUTOR_CONSUMER,
            &Executor::EVENTS,
            executor.clone(),
            cancel.clone(),
        )
        .await?,
    );
    let recovery_every = Duration::from_secs((config.execution_lease_secs / 3).clamp(1, 10));
    tasks.push(spawn_recovery(executor.clone(), recovery_every, cancel.clone()));
    let scheduler = Arc::new(Scheduler::new(store.clone(), store.clone(), clock.clone()));
    tasks.push(spawn_scheduler(
        scheduler,
        Duration::from_millis(config.scheduler_tick_ms.max(10)),
        cancel.clone(),
    ));
    tasks.push(spawn_relay(store.clone(), Arc::new(bus.clone()), cancel.clone()));
    let watchdog = Arc::new(Watchdog::new(
        store.clone(),
        clock.clone(),
        WatchdogConfig {
            deadline: chrono::Duration::seconds(i64::try_from(config.watchdog_deadline_secs).unwrap_or(60)),
            max_attempts: config.watchdog_max_attempts,
        },
    ));
    let every = Duration::from_secs((config.watchdog_deadline_secs / 4).clamp(1, 15));
    tasks.push(spawn_watchdog(watchdog, every, cancel.clone()));
    let state = AppState {
        users: Arc::new(UserService::new(store.clone(), store.clone(), hasher, clock.clone())),
        tenants: Arc::new(TenantService::new(store.clone(), clock.clone())),
        templates: Arc::new(TemplateService::new(store.clone(), flows.clone(), clock.clone())),
        webhooks: Arc::new(WebhookService::new(store.clone(), store.clone(), auth.clone(), clock.clone())),
        executions: Arc::new(ExecutionService::new(store.clone(), store.clone(), clock.clone())),
        components: Arc::new(ComponentService::new(store.clone(), catalogue, clock.clone())),
        auth,
        flows,
        database: store.clone() as Arc<dyn Health>,
        event_bus: Arc::new(bus.clone()) as Arc<dyn Health>,
        config: HttpConfig {
            body_limit_bytes: config.body_limit_bytes,
            webhook_sync_timeout: Duration::from_secs(config.webhook_sync_timeout_secs),
        },
    };
    let metrics = crate::telemetry::metrics_handle();
    let router = adapters_http::router(state)
        .route("/metrics", axum::routing::get(move || async move { metrics.render() }));
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    Ok(App { router, first_admin, bus, executor, grace, cancel, tasks })
}

/// Opens the storage, which applies the migrations.
///
/// # Errors
/// Storage failures.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    open_store(config).await.map(|_| ())
}

/// Creates a user who can log in, as the system.
///
/// # Errors
/// Validation failures, duplicate usernames, storage failures.
pub async fn create_user(
    config: &Config,
    username: &str,
    password: &str,
    permissions: &[String],
    tenant: Option<&str>,
) -> anyhow::Result<String> {
    let store = Arc::new(open_store(config).await?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hasher = Arc::new(Argon2Hasher::with_cost(config.argon2_memory_kib, config.argon2_iterations)?);
    let users = UserService::new(store.clone(), store, hasher, clock);
    let system = Actor {
        user_id: UserId::new(),
        tenant: None,
        permissions: PermissionSet::new(vec![Permission::All]),
        token_id: None,
    };
    let body = serde_json::json!({
        "username": username, "password": password, "permissions": permissions, "tenant": tenant,
    });
    match users.create(&system, &body).await {
        Ok(user) => Ok(user.id.to_string()),
        Err(flow_domain::error::ServiceError::Validation(errors)) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field.as_deref().unwrap_or("-"), e.message))
                .collect();
            bail!("invalid user: {}", lines.join("; "))
        }
        Err(other) => Err(anyhow::Error::new(other)),
    }
}
