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
    AuthService, FirstAdmin, FlowService, LifecycleListener, LoginThrottle, TemplateService, TenantService,
    ThrottleConfig, UserService, Watchdog, WatchdogConfig,
};
use flow_domain::time::{Clock, SystemClock};
use flow_engine::catalogue::BuiltinCatalogue;
use flow_engine::orchestrator::Orchestrator;
use flow_engine::runtime::{LifecycleHandler, spawn_consumer, spawn_relay, spawn_watchdog};
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
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl App {
    /// Stops the workers (between batches) and waits for them.
    pub async fn shutdown(self) {
        self.cancel.cancel();
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
    let catalogue: Arc<dyn ComponentCatalogue> = Arc::new(BuiltinCatalogue::new());
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
        auth,
        users: Arc::new(UserService::new(store.clone(), store.clone(), hasher, clock.clone())),
        tenants: Arc::new(TenantService::new(store.clone(), clock.clone())),
        templates: Arc::new(TemplateService::new(store.clone(), flows.clone(), clock.clone())),
        flows,
        components: catalogue,
        database: store.clone() as Arc<dyn Health>,
        event_bus: Arc::new(bus.clone()) as Arc<dyn Health>,
        config: HttpConfig { body_limit_bytes: config.body_limit_bytes },
    };
    let metrics = crate::telemetry::metrics_handle();
    let router = adapters_http::router(state)
        .route("/metrics", axum::routing::get(move || async move { metrics.render() }));
    Ok(App { router, first_admin, bus, cancel, tasks })
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
