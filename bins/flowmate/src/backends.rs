//! The backends chosen by configuration, as the domain's ports: one storage (SQLite file, or
//! PostgreSQL) and one event bus (in-process, or Kafka). The rest of the wiring only sees the
//! trait objects, so every backend combination runs the same services and workers.

use crate::config::{Bus, Config, SqliteSync, Storage};
use adapters_inprocess::InProcessBus;
use adapters_kafka::{KafkaBus, KafkaConfig};
use adapters_postgres::{PostgresConfig, PostgresStore};
use adapters_sqlite::{SqliteConfig, SqliteStore};
use anyhow::Context;
use flow_domain::cache::FlowCache;
use flow_domain::ports::{
    BusMonitor, ComponentRepository, EventPublisher, EventSubscriber, ExecutionRepository,
    ExecutionRetention, FlowRepository, Health, Outbox, TemplateRepository, TenantRepository,
    TokenRepository, UserRepository,
};
use flow_domain::token_cache::TokenCache;
use std::sync::Arc;
use std::time::Duration;

/// Every storage port of one store.
#[derive(Clone)]
pub struct Stores {
    /// Flows, for everything that writes them or needs the latest state.
    pub flows: Arc<dyn FlowRepository>,
    /// Flows, read through the flow cache (the webhook and execution paths).
    pub cached_flows: Arc<dyn FlowRepository>,
    /// Templates.
    pub templates: Arc<dyn TemplateRepository>,
    /// Users.
    pub users: Arc<dyn UserRepository>,
    /// Tenants.
    pub tenants: Arc<dyn TenantRepository>,
    /// Tokens.
    pub tokens: Arc<dyn TokenRepository>,
    /// The transactional outbox.
    pub outbox: Arc<dyn Outbox>,
    /// Executions.
    pub executions: Arc<dyn ExecutionRepository>,
    /// Deleting executions past their retention.
    pub retention: Arc<dyn ExecutionRetention>,
    /// External components.
    pub components: Arc<dyn ComponentRepository>,
    /// Readiness, for `/healthcheck`.
    pub health: Arc<dyn Health>,
}

impl Stores {
    /// Puts `cache` in front of the flows: every writer forgets what it changes, and the
    /// webhook and execution paths read through it.
    #[must_use]
    pub fn with_flow_cache(mut self, cache: &FlowCache) -> Self {
        self.flows = cache.writer();
        self.cached_flows = cache.reader();
        self
    }

    /// Puts `cache` in front of the tokens and users: token lookups are cached, and every
    /// token or user write forgets what it may have changed.
    #[must_use]
    pub fn with_token_cache(mut self, cache: &TokenCache) -> Self {
        self.tokens = cache.tokens();
        self.users = cache.users();
        self
    }

    /// The ports of `store`, which implements them all.
    pub fn of<S>(store: Arc<S>) -> Self
    where
        S: FlowRepository
            + TemplateRepository
            + UserRepository
            + TenantRepository
            + TokenRepository
            + Outbox
            + ExecutionRepository
            + ExecutionRetention
            + ComponentRepository
            + Health
            + 'static,
    {
        Self {
            flows: store.clone(),
            cached_flows: store.clone(),
            templates: store.clone(),
            users: store.clone(),
            tenants: store.clone(),
            tokens: store.clone(),
            outbox: store.clone(),
            executions: store.clone(),
            retention: store.clone(),
            components: store.clone(),
            health: store,
        }
    }
}

/// The event bus ports and how to close the bus.
#[derive(Clone)]
pub struct Buses {
    /// Publishes (the outbox relay).
    pub publisher: Arc<dyn EventPublisher>,
    /// Subscribes consumer groups.
    pub subscriber: Arc<dyn EventSubscriber>,
    /// Readiness, for `/healthcheck`.
    pub health: Arc<dyn Health>,
    /// This process's consumer group members, for `/healthcheck` and the watchdog.
    pub monitor: Arc<dyn BusMonitor>,
    closer: BusCloser,
}

#[derive(Clone)]
enum BusCloser {
    InProcess(InProcessBus),
    Kafka(KafkaBus),
}

impl Buses {
    /// Ends every subscription (consumers see the end of their streams).
    pub async fn close(&self) {
        match &self.closer {
            BusCloser::InProcess(bus) => bus.close(),
            BusCloser::Kafka(bus) => bus.shutdown().await,
        }
    }
}

/// Opens the configured storage (applying migrations).
///
/// # Errors
/// Invalid configuration, unreachable or unmigratable storage.
pub async fn open_storage(config: &Config) -> anyhow::Result<Stores> {
    let (storage, _bus) = config.validate()?;
    match storage {
        Storage::Sqlite(path) => {
            let mut sqlite = SqliteConfig::new(path.clone());
            sqlite.synchronous_full = config.sqlite_synchronous == SqliteSync::Full;
            let store = SqliteStore::connect(sqlite)
                .await
                .with_context(|| format!("cannot open the SQLite database {}", path.display()))?;
            Ok(Stores::of(Arc::new(store)))
        }
        Storage::Postgres(url) => {
            let postgres = PostgresConfig {
                max_connections: config.database_max_connections.max(1),
                acquire_timeout: Duration::from_millis(config.database_acquire_timeout_ms.max(1)),
                run_migrations: config.database_migrate,
                ..PostgresConfig::new(url)
            };
            let store =
                PostgresStore::connect(postgres).await.context("cannot open the PostgreSQL database")?;
            Ok(Stores::of(Arc::new(store)))
        }
    }
}

/// Connects the configured event bus.
///
/// # Errors
/// Invalid configuration, unreachable broker.
pub async fn open_bus(config: &Config) -> anyhow::Result<Buses> {
    match config.bus() {
        Bus::InProcess => {
            let bus = InProcessBus::new();
            Ok(Buses {
                publisher: Arc::new(bus.clone()),
                subscriber: Arc::new(bus.clone()),
                health: Arc::new(bus.clone()),
                monitor: Arc::new(bus.clone()),
                closer: BusCloser::InProcess(bus),
            })
        }
        Bus::Kafka(brokers) => {
            let kafka = KafkaConfig {
                topic_prefix: config.kafka_topic_prefix.clone(),
                partitions: config.kafka_partitions.max(1),
                replication: config.kafka_replication.max(1),
                timeout: Duration::from_millis(config.kafka_timeout_ms.max(1)),
                fetch_wait_max: Duration::from_millis(config.kafka_fetch_wait_ms),
                stall_after: Duration::from_secs(config.kafka_stall_after_secs.max(1)),
                properties: config.kafka_properties.clone(),
                client_id: format!("flowmate-{:?}", config.role).to_lowercase(),
                ..KafkaConfig::new(brokers)
            };
            let bus = KafkaBus::connect(kafka).await.context("cannot connect to the Kafka brokers")?;
            Ok(Buses {
                publisher: Arc::new(bus.clone()),
                subscriber: Arc::new(bus.clone()),
                health: Arc::new(bus.clone()),
                monitor: Arc::new(bus.clone()),
                closer: BusCloser::Kafka(bus),
            })
        }
    }
}
