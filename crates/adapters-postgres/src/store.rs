//! Opening the database: configuration, the pool, migrations, the outbox listener, health.

use crate::batch::{Batcher, insert_batch, save_batch};
use crate::error::port_error;
use crate::listener::{OUTBOX_CHANNEL, spawn_listener, spawn_notifier};
use anyhow::Context;
use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::ports::{Health, ReportedOnce};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;

/// The schema, embedded at build time from `migrations/`.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How to open the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database?...`.
    pub url: String,
    /// Size of the connection pool.
    pub max_connections: u32,
    /// How long an operation waits for a connection before answering `Unavailable` (short, so
    /// an outage answers fast).
    pub acquire_timeout: Duration,
    /// Apply pending migrations in [`PostgresStore::connect`].
    pub run_migrations: bool,
    /// How long a claimed outbox event is withheld from other relays before it can be claimed
    /// again (when its relay died before marking it published).
    pub claim_ttl: Duration,
}

impl PostgresConfig {
    /// Defaults for the database at `url`: 10 connections, 3 s acquire timeout, migrations
    /// applied at connect, 30 s outbox claims.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            run_migrations: true,
            claim_ttl: Duration::from_secs(30),
        }
    }
}

/// Stops a background task of the store (listener, notifier) when the last clone is dropped.
#[derive(Debug)]
struct ListenerTask(AbortHandle);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every storage port on one PostgreSQL database. Cheap to clone: clones share the pool and
/// the outbox listener.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// Every statement runs on this pool.
    pub(crate) pool: PgPool,
    /// Signalled after a local commit that appended outbox events, and by the listener on a
    /// `NOTIFY` from any process.
    pub(crate) outbox_signal: Arc<Notify>,
    /// See [`PostgresConfig::claim_ttl`].
    pub(crate) claim_ttl: Duration,
    /// Signalled after a local commit that appended outbox events: the notifier then tells
    /// the relays of other processes.
    pub(crate) notify_request: Arc<Notify>,
    /// Gathers concurrent execution inserts into one statement each (see `batch`).
    pub(crate) inserts: Arc<Batcher>,
    /// Gathers concurrent execution saves without events into one statement each.
    pub(crate) saves: Arc<Batcher>,
    /// The same for inline runs' claims, on connections with `synchronous_commit = off`: they
    /// need only survive a crash of this process (see
    /// [`flow_domain::ports::InsertDurability`]), which a commit does before PostgreSQL has
    /// flushed its WAL.
    pub(crate) claims: Arc<Batcher>,
    /// The rows already reported as unreadable (see `rows::decode_each`).
    pub(crate) unreadable: Arc<ReportedOnce>,
    /// Whether the listener currently listens.
    listening: watch::Receiver<bool>,
    _listener: Arc<ListenerTask>,
    _notifier: Arc<ListenerTask>,
}

/// The connections that write inline runs' claims (besides `max_connections`).
const CLAIM_CONNECTIONS: u32 = 2;

/// How long a pooled connection may sit idle before it is pinged on its next acquire.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(10);

impl PostgresStore {
    /// Creates the pool for `config.url` (connections are opened on demand), applies pending
    /// migrations when `config.run_migrations`, and starts the outbox listener (`LISTEN
    /// flowmate_outbox`, reconnecting on its own). Must be called within a tokio runtime.
    ///
    /// # Errors
    /// When the URL is invalid, or migrations are asked for and fail (the database is
    /// unreachable, or a migration fails).
    pub async fn connect(config: PostgresConfig) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(&config.url).context("parsing the PostgreSQL URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            // A connection is pinged before use only after it sat idle for a while (the server
            // or a middlebox may have dropped it meanwhile), not on every acquire: that was one
            // more round trip to PostgreSQL per statement. A connection that breaks in use
            // fails that statement, and the pool replaces it.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options.clone());
        let outbox_signal = Arc::new(Notify::new());
        let (listening_tx, listening) = watch::channel(false);
        let task = spawn_listener(pool.clone(), OUTBOX_CHANNEL, outbox_signal.clone(), listening_tx);
        let notify_request = Arc::new(Notify::new());
        let notifier = spawn_notifier(pool.clone(), OUTBOX_CHANNEL, notify_request.clone());
        let inserts = Arc::new(Batcher::start(pool.clone(), insert_batch));
        let saves = Arc::new(Batcher::start(pool.clone(), save_batch));
        let claims_pool = PgPoolOptions::new()
            .max_connections(CLAIM_CONNECTIONS)
            .acquire_timeout(config.acquire_timeout)
            .test_before_acquire(false)
            .connect_lazy_with(options.options([("synchronous_commit", "off")]));
        let claims = Arc::new(Batcher::start(claims_pool, insert_batch));
        let store = Self {
            inserts,
            saves,
            claims,
            unreadable: Arc::default(),
            pool,
            outbox_signal,
            claim_ttl: config.claim_ttl,
            notify_request,
            listening,
            _listener: Arc::new(ListenerTask(task)),
            _notifier: Arc::new(ListenerTask(notifier)),
        };
        if config.run_migrations {
            store.migrate().await?;
        }
        tracing::info!("PostgreSQL store ready");
        Ok(store)
    }

    /// Applies pending migrations (safe to run from several processes at once: sqlx takes an
    /// advisory lock).
    ///
    /// # Errors
    /// When the database is unreachable or a migration fails.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("applying PostgreSQL migrations")
    }

    /// Waits up to `max_wait` until the outbox listener listens; whether it does. A `NOTIFY`
    /// sent before that may be missed (the relay's next claim still finds the events).
    pub async fn wait_until_listening(&self, max_wait: Duration) -> bool {
        let mut listening = self.listening.clone();
        tokio::time::timeout(max_wait, listening.wait_for(|on| *on)).await.is_ok_and(|r| r.is_ok())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        self.claims.close().await;
    }

    /// `SELECT 1`.
    pub(crate) async fn ping_reader(&self) -> Result<(), PortError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(port_error)
    }
}

#[async_trait]
impl Health for PostgresStore {
    async fn check(&self) -> Result<(), String> {
        self.ping_reader().await.map_err(|e| e.to_string())
    }
}
