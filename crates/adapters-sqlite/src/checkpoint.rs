//! WAL checkpoints mostly off the write path. SQLite checkpoints inside the commit that finds
//! the WAL past 1,000 pages: that commit copies the pages into the database file and syncs it
//! before it returns, and every write of its group-commit batch waits (the slowest answers of a
//! busy webhook). This task checkpoints from a connection of its own shortly after commits
//! happened, with `PRAGMA wal_checkpoint(PASSIVE)`, which neither waits for nor blocks the writer
//! or the readers. When the writer's own checkpoint comes due, the pages are mostly copied
//! already, so it has little left to do; it still runs, because only a checkpoint on the writer
//! (with no commit going on) lets the next write start the WAL over, which keeps the file small.

use sqlx::SqlitePool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::AbortHandle;

/// How often the task looks whether commits happened since its last checkpoint.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// The checkpoint task; stopped when dropped (with the last clone of the store) or by `stop`.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    task: AbortHandle,
    pool: SqlitePool,
}

impl Checkpointer {
    /// Spawns the task on the current tokio runtime: it checkpoints through `pool` (one
    /// connection of its own) whenever `commits` moved since its last look.
    pub(crate) fn start(pool: SqlitePool, commits: Arc<AtomicU64>) -> Self {
        let task = tokio::spawn(run(pool.clone(), commits)).abort_handle();
        Self { task, pool }
    }

    /// Stops the task and closes its connection.
    pub(crate) async fn stop(&self) {
        self.task.abort();
        self.pool.close().await;
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checkpoints (passively) after commits, every [`CHECKPOINT_EVERY`] at most.
async fn run(pool: SqlitePool, commits: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = commits.load(Ordering::Relaxed);
    loop {
        tick.tick().await;
        let now = commits.load(Ordering::Relaxed);
        if now == seen {
            continue;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            Ok(_) => seen = now,
            // Tried again on the next tick; meanwhile the writer's own checkpoints go on.
            Err(e) => tracing::warn!(error = %e, "SQLite WAL checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::error::port_error;
    use crate::store::{SqliteConfig, SqliteStore};
    use std::time::Duration;
    use tokio::time::Instant;

    /// Pages of a commit too small for the writer's own checkpoint (1,000 pages) reach the
    /// database file while the store stays open: the checkpoint task copies them.
    #[tokio::test]
    async fn committed_pages_reach_the_database_file_while_the_store_is_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.db");
        let store = SqliteStore::connect(SqliteConfig::new(&path)).await.expect("connect");
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        store
            .write(false, |tx| {
                Box::pin(async move {
                    sqlx::raw_sql(
                        "CREATE TABLE filler (b BLOB); \
                         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                         INSERT INTO filler SELECT randomblob(3000) FROM n",
                    )
                    .execute(&mut *tx)
                    .await
                    .map(|_| ())
                    .map_err(port_error)
                })
            })
            .await
            .expect("write ~600 KB");
        let deadline = Instant::now() + Duration::from_secs(10);
        while size() < before + 500_000 {
            assert!(Instant::now() < deadline, "the database file stayed at {} bytes", size());
            tokio::time::sleep(super::CHECKPOINT_EVERY).await;
        }
        store.close().await;
    }
}
