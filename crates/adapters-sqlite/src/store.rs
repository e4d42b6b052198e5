//! Opening the database: configuration, the writer pool and its group-commit task, the reader
//! pool, the checkpoint task, migrations, health, closing.

use crate::checkpoint::Checkpointer;
use crate::error::port_error;
use crate::write::GroupCommit;
use anyhow::Context;
use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::ports::{Health, ReportedOnce};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The schema, embedded at build time from `migrations/`.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How to open the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; created (with its schema) when missing.
    pub path: PathBuf,
    /// Size of the reader pool (at least 1). Writes always use one dedicated connection, owned
    /// by the group-commit writer task.
    pub max_read_connections: u32,
    /// `synchronous = FULL` (durable across power loss) instead of `NORMAL` (durable across
    /// process crashes, faster).
    pub synchronous_full: bool,
    /// How long a statement waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// How long a claimed outbox event is withheld from other relays before it can be claimed
    /// again (when its relay died before marking it published).
    pub claim_ttl: Duration,
}

impl SqliteConfig {
    /// Defaults for the file at `path`: 4 readers, `synchronous = NORMAL`, 5 s busy timeout,
    /// 30 s outbox claims.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_read_connections: 4,
            synchronous_full: false,
            busy_timeout: Duration::from_secs(5),
            claim_ttl: Duration::from_secs(30),
        }
    }
}

/// Every storage port on one SQLite file. Cheap to clone: clones share the pools and the
/// writer task.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection, used only by the writer task of `writes`: every write
    /// transaction (a group-commit batch) runs there, one at a time.
    pub(crate) writer: SqlitePool,
    /// The writer task and its queue; see [`crate::write`].
    pub(crate) writes: Arc<GroupCommit>,
    /// Read-only queries.
    pub(crate) reader: SqlitePool,
    /// Checkpoints the WAL mostly off the write path; see [`crate::checkpoint`].
    checkpointer: Arc<Checkpointer>,
    /// Signalled after a commit that appended outbox events.
    pub(crate) outbox_signal: Arc<Notify>,
    /// See [`SqliteConfig::claim_ttl`].
    pub(crate) claim_ttl: Duration,
    /// The rows already reported as unreadable (see `rows::decode_each`).
    pub(crate) unreadable: Arc<ReportedOnce>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `config.path` in WAL mode with foreign keys
    /// on, applies pending migrations, and spawns the group-commit writer task on the current
    /// tokio runtime (so the store is used within that runtime).
    ///
    /// # Errors
    /// When the file cannot be opened or created, or a migration fails.
    pub async fn connect(config: SqliteConfig) -> anyhow::Result<Self> {
        let synchronous =
            if config.synchronous_full { SqliteSynchronous::Full } else { SqliteSynchronous::Normal };
        let base = SqliteConnectOptions::new()
            .filename(&config.path)
            .foreign_keys(true)
            .busy_timeout(config.busy_timeout)
            .synchronous(synchronous)
            // Savepoint sub-journals (one per group-commit job) stay in memory, not temp files.
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            // The writer task holds the connection; a local file connection does not go stale.
            .test_before_acquire(false)
            .connect_with(base.clone().create_if_missing(true).journal_mode(SqliteJournalMode::Wal))
            .await
            .with_context(|| format!("opening SQLite database {}", config.path.display()))?;
        MIGRATOR.run(&writer).await.context("applying SQLite migrations")?;
        let checkpoints =
            SqlitePoolOptions::new().max_connections(1).connect_with(base.clone()).await.with_context(
                || format!("opening the SQLite checkpoint connection on {}", config.path.display()),
            )?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.max_read_connections.max(1))
            // No `SELECT 1` round trip to the connection's thread before each read: a local
            // file connection does not go stale, and a broken one fails the read itself.
            .test_before_acquire(false)
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .with_context(|| format!("opening SQLite reader pool on {}", config.path.display()))?;
        let outbox_signal = Arc::new(Notify::new());
        let writes = Arc::new(GroupCommit::start(writer.clone(), Arc::clone(&outbox_signal)));
        let checkpointer = Arc::new(Checkpointer::start(checkpoints, writes.commit_counter()));
        tracing::info!(path = %config.path.display(), "SQLite store ready");
        let unreadable = Arc::default();
        Ok(Self {
            writer,
            writes,
            reader,
            checkpointer,
            outbox_signal,
            claim_ttl: config.claim_ttl,
            unreadable,
        })
    }

    /// Stops the writer task once the writes already queued are committed and answered (later
    /// writes fail with `Unavailable`) and the checkpoint task, then closes the pools, waiting
    /// for connections in use to be returned.
    pub async fn close(&self) {
        self.writes.stop().await;
        self.checkpointer.stop().await;
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Diagnostic: how many write transactions this store (all its clones) has committed since
    /// it was opened. With group commit one transaction carries every write that was waiting
    /// when it began, so under concurrent load this grows more slowly than the number of writes.
    /// Not part of any port; cheap (one atomic load).
    pub fn commits(&self) -> u64 {
        self.writes.commits()
    }

    /// `SELECT 1` on the reader pool.
    pub(crate) async fn ping_reader(&self) -> Result<(), PortError> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map(|_| ()).map_err(port_error)
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn check(&self) -> Result<(), String> {
        self.ping_reader().await.map_err(|e| e.to_string())
    }
}
