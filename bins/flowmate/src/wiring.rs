//! Wiring: configuration -> backends -> services -> background workers -> router. The binary
//! and the tests build the application through [`start`], so both run exactly the same thing.
//! The role decides what runs here: `api` serves the HTTP API and the flows-side consumers,
//! `worker` runs the engine (deployments, executions, cron, recovery), `all` both; every role
//! relays the outbox it writes to.

use crate::backends::{Buses, Stores, open_bus, open_storage};
use crate::backlog::spawn_backlog_sampler;
use crate::config::{Config, Role};
use adapters_crypto::{Argon2Hasher, RandomTokenMinter};
use adapters_http::{AppState, HttpConfig};
use anyhow::bail;
use flow_domain::actor::Actor;
use flow_domain::cache::FlowCache;
use flow_domain::event::names;
use flow_domain::ids::UserId;
use flow_domain::model::ProcessIdentity;
use flow_domain::permission::{Permission, PermissionSet};
use flow_domain::ports::{ComponentCatalogue, InlineRunner};
use flow_domain::services::{
    AuthService, ComponentService, ExecutionBacklog, ExecutionService, FirstAdmin, FlowService,
    LifecycleListener, LoginThrottle, TemplateService, TenantService, ThrottleConfig, UserService, Watchdog,
    WatchdogConfig, WebhookService,
};
use flow_domain::time::{Clock, SystemClock};
use flow_domain::token_cache::TokenCache;
use flow_engine::components::HttpConfig as ComponentHttpConfig;
use flow_engine::orchestrator::Orchestrator;
use flow_engine::runtime::{LifecycleHandler, spawn_consumer, spawn_relay, spawn_watchdog};
use flow_engine::sandbox::{Sandbox, SandboxConfig};
use flow_engine::{
    Catalogue, ComponentRegistry, ENGINE_CONSUMER, EXECUTOR_CONSUMER, Executor, ExecutorConfig, Scheduler,
    spawn_leftover_recovery, spawn_recovery, spawn_scheduler,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running application: the router to serve and the background workers behind it.
pub struct App {
    /// The HTTP application (a worker serves only `/healthcheck` and `/metrics`).
    pub router: axum::Router,
    /// What start-up did about the first admin.
    pub first_admin: FirstAdmin,
    buses: Buses,
    executor: Option<Arc<Executor>>,
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
        if let Some(executor) = &self.executor {
            executor.shutdown(self.grace).await;
        }
        self.buses.close().await;
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn auth_service(
    config: &Config,
    stores: &Stores,
    hasher: Arc<Argon2Hasher>,
    clock: Arc<dyn Clock>,
) -> AuthService {
    AuthService::new(
        stores.users.clone(),
        stores.tokens.clone(),
        hasher,
        Arc::new(RandomTokenMinter),
        clock,
        LoginThrottle::new(ThrottleConfig::default()),
        chrono::Duration::seconds(i64::try_from(config.token_ttl_secs).unwrap_or(i64::MAX / 1000)),
    )
}

/// Builds and starts everything `config` asks for.
///
/// # Errors
/// Invalid configuration, unreachable storage or broker, failed migrations.
pub async fn start(config: &Config) -> anyhow::Result<App> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stores = open_storage(config).await?;
    let flow_cache_ttl = chrono::Duration::milliseconds(i64::try_from(config.flow_cache_ttl_ms).unwrap_or(0));
    let flow_cache = FlowCache::new(stores.flows.clone(), clock.clone(), flow_cache_ttl);
    let token_cache_ttl =
        chrono::Duration::milliseconds(i64::try_from(config.token_cache_ttl_ms).unwrap_or(0));
    let token_cache =
        TokenCache::new(stores.tokens.clone(), stores.users.clone(), clock.clone(), token_cache_ttl);
    let stores = stores.with_flow_cache(&flow_cache).with_token_cache(&token_cache);
    let buses = open_bus(config).await?;
    let hasher = Arc::new(Argon2Hasher::with_cost(config.argon2_memory_kib, config.argon2_iterations)?);
    let auth = Arc::new(auth_service(config, &stores, hasher.clone(), clock.clone()));
    let first_admin = match config.role {
        Role::Worker => FirstAdmin::AlreadyPresent,
        Role::All | Role::Api => {
            auth.ensure_first_admin(&config.admin_username, config.admin_password.as_deref()).await?
        }
    };
    let catalogue: Arc<dyn ComponentCatalogue> =
        Arc::new(Catalogue::new().with_externals(stores.components.clone()));
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    let serves_api = config.role != Role::Worker;
    let runs_engine = config.role != Role::Api;
    // Consumers subscribe before the relay starts, so no pending outbox event is missed.
    if serves_api {
        let listener =
            Arc::new(LifecycleListener::new(stores.flows.clone(), stores.templates.clone(), clock.clone()));
        tasks.push(
            spawn_consumer(
                buses.subscriber.clone(),
                flow_domain::services::lifecycle::FLOWS_CONSUMER,
                &LifecycleListener::EVENTS,
                Arc::new(LifecycleHandler(listener)),
                cancel.clone(),
            )
            .await?,
        );
        let watchdog = Arc::new(
            Watchdog::new(
                stores.flows.clone(),
                clock.clone(),
                WatchdogConfig {
                    deadline: chrono::Duration::seconds(
                        i64::try_from(config.watchdog_deadline_secs).unwrap_or(60),
                    ),
                    max_attempts: config.watchdog_max_attempts,
                },
            )
            .with_bus_monitor(buses.monitor.clone()),
        );
        let every = Duration::from_secs((config.watchdog_deadline_secs / 4).clamp(1, 15));
        tasks.push(spawn_watchdog(watchdog, every, cancel.clone()));
    }
    // Leases and outbox claims are held in the name of this process incarnation.
    let process = config.process_identity();
    tracing::info!(process = %process, "process identity");
    // Every role runs synchronous webhook calls to side-effect-free flows inline; only the
    // engine roles also consume `flow.execute`.
    let executor = Arc::new(executor(config, &stores, clock.clone(), process.clone())?);
    let engine = if runs_engine {
        let orchestrator =
            Arc::new(Orchestrator::new(catalogue.clone(), stores.outbox.clone(), clock.clone()));
        tasks.push(
            spawn_consumer(
                buses.subscriber.clone(),
                ENGINE_CONSUMER,
                &[names::FLOW_STARTING, names::FLOW_STOPPING],
                orchestrator,
                cancel.clone(),
            )
            .await?,
        );
        tasks.push(
            spawn_consumer(
                buses.subscriber.clone(),
                EXECUTOR_CONSUMER,
                &Executor::EVENTS,
                executor.clone(),
                cancel.clone(),
            )
            .await?,
        );
        let recovery_every = Duration::from_secs((config.execution_lease_secs / 3).clamp(1, 10));
        tasks.push(spawn_recovery(executor.clone(), recovery_every, cancel.clone()));
        let scheduler =
            Arc::new(Scheduler::new(stores.flows.clone(), stores.executions.clone(), clock.clone()));
        let tick = Duration::from_millis(config.scheduler_tick_ms.max(10));
        tasks.push(spawn_scheduler(scheduler, tick, cancel.clone()));
        let retention = config.execution_retention;
        tasks.extend(crate::retention::spawn_purge(
            retention,
            stores.retention.clone(),
            clock.clone(),
            cancel.clone(),
        ));
        Some(executor.clone())
    } else {
        // No recovery passes here, but what this process's inline runs left before a restart
        // is handed back to the workers at once.
        tasks.push(spawn_leftover_recovery(executor.clone(), Duration::from_secs(5), cancel.clone()));
        None
    };
    tasks.push(spawn_relay(stores.outbox.clone(), buses.publisher.clone(), process, cancel.clone()));
    let metrics = crate::telemetry::metrics_handle();
    tasks.push(crate::telemetry::spawn_metrics_upkeep(metrics.clone(), cancel.clone()));
    let router = if serves_api {
        let backlog = Arc::new(ExecutionBacklog::new(config.max_queued_executions));
        tasks.push(spawn_backlog_sampler(backlog.clone(), stores.executions.clone(), cancel.clone()));
        let services = ApiServices { auth, hasher, catalogue, inline: executor, backlog };
        let state = app_state(config, &stores, &buses, services, clock);
        adapters_http::router(state)
    } else {
        adapters_http::health_router(stores.health.clone(), buses.health.clone(), buses.monitor.clone())
    };
    let router = router.route("/metrics", axum::routing::get(move || async move { metrics.render() }));
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    Ok(App { router, first_admin, buses, executor: engine, grace, cancel, tasks })
}

fn executor(
    config: &Config,
    stores: &Stores,
    clock: Arc<dyn Clock>,
    process: ProcessIdentity,
) -> anyhow::Result<Executor> {
    let registry = ComponentRegistry::builtin(ComponentHttpConfig::default())
        .map_err(|err| anyhow::anyhow!("cannot build the HTTP client: {err}"))?
        .with_externals(stores.components.clone())
        .with_sandbox(Arc::new(Sandbox::new(sandbox_config(config))));
    Ok(Executor::new(
        stores.executions.clone(),
        stores.cached_flows.clone(),
        Arc::new(registry),
        clock,
        ExecutorConfig {
            process,
            lease: Duration::from_secs(config.execution_lease_secs.max(1)),
            max_concurrent: config.max_concurrent_executions.max(1),
            max_per_flow: config.max_concurrent_per_flow.max(1),
            max_attempts: config.execution_max_attempts,
            // The in-process bus loses published `flow.execute` events with the process.
            events_die_with_process: config.bus() == crate::config::Bus::InProcess,
            allow_private_networks: config.allow_private_networks,
            ..ExecutorConfig::default()
        },
    ))
}

/// Where user programs run: sandbox processes started from this executable (or the configured
/// program) with `sandbox`.
fn sandbox_config(config: &Config) -> SandboxConfig {
    let defaults = SandboxConfig::default();
    SandboxConfig {
        program: config.sandbox_program.clone().unwrap_or(defaults.program),
        args: defaults.args,
        // mimalloc (this binary's allocator) reserves 1 GiB of address space at start, which
        // would count against the sandbox's memory limit.
        env: vec![("MIMALLOC_ARENA_RESERVE".into(), "0".into())],
        processes: config.sandbox_processes.unwrap_or(defaults.processes).max(1),
        memory_bytes: config.sandbox_memory_mib.max(16).saturating_mul(1024 * 1024),
        max_step_time: Duration::from_millis(config.max_step_time_ms.max(1)),
        // Outputs nest as deep as bodies may: both are stored and read back the same way.
        max_output_nesting: config.limits().max_depth,
    }
}

/// The shared services the API state is assembled from, besides the stores.
struct ApiServices {
    auth: Arc<AuthService>,
    hasher: Arc<Argon2Hasher>,
    catalogue: Arc<dyn ComponentCatalogue>,
    inline: Arc<dyn InlineRunner>,
    backlog: Arc<ExecutionBacklog>,
}

fn app_state(
    config: &Config,
    stores: &Stores,
    buses: &Buses,
    services: ApiServices,
    clock: Arc<dyn Clock>,
) -> AppState {
    let ApiServices { auth, hasher, catalogue, inline, backlog } = services;
    let flows = Arc::new(
        FlowService::new(stores.flows.clone(), clock.clone())
            .with_cached_reads(stores.cached_flows.clone())
            .with_limits(config.limits()),
    );
    AppState {
        users: Arc::new(UserService::new(
            stores.users.clone(),
            stores.tenants.clone(),
            hasher,
            clock.clone(),
        )),
        tenants: Arc::new(TenantService::new(stores.tenants.clone(), clock.clone())),
        templates: Arc::new(TemplateService::new(stores.templates.clone(), flows.clone(), clock.clone())),
        webhooks: Arc::new(
            WebhookService::new(
                stores.cached_flows.clone(),
                stores.executions.clone(),
                auth.clone(),
                clock.clone(),
            )
            .with_inline_runner(inline)
            .with_backlog(backlog),
        ),
        executions: Arc::new(ExecutionService::new(
            stores.executions.clone(),
            stores.flows.clone(),
            clock.clone(),
        )),
        components: Arc::new(ComponentService::new(stores.components.clone(), catalogue, clock)),
        auth,
        flows,
        database: stores.health.clone(),
        event_bus: buses.health.clone(),
        bus_monitor: buses.monitor.clone(),
        config: HttpConfig {
            body_limit_bytes: config.body_limit_bytes,
            webhook_sync_timeout: Duration::from_secs(config.webhook_sync_timeout_secs),
            limits: config.limits(),
        },
    }
}

/// Opens the storage and applies the pending migrations (even with
/// `FLOWMATE_DATABASE_MIGRATE=false`, which only stops `serve` from applying them).
///
/// # Errors
/// Storage failures.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.database_migrate = true;
    open_storage(&config).await.map(|_| ())
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
    let stores = open_storage(config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hasher = Arc::new(Argon2Hasher::with_cost(config.argon2_memory_kib, config.argon2_iterations)?);
    let users = UserService::new(stores.users, stores.tenants, hasher, clock);
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
