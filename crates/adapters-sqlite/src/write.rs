//! The write side shared by every port: group commit on the single writer connection, and the
//! outbox append and processed-event mark that go into a write.
//!
//! Every write of the adapter is a *job*: an async closure over the writer connection, sent to
//! one writer task ([`GroupCommit`]) by [`SqliteStore::write`]. The task takes every job waiting
//! (up to [`MAX_BATCH`], with no artificial delay: a batch forms while the previous one commits),
//! opens one `BEGIN IMMEDIATE` transaction, runs each job in its own `SAVEPOINT` (a failing job is
//! rolled back to its savepoint and affects no other job), commits once, and only then answers
//! every job. So N concurrent writes cost one commit (one WAL fsync) instead of N, while each
//! port method stays one atomic operation whose caller hears back only once it is durable.
//!
//! The writer task is the only writer: no other code writes through the writer pool. It acquires
//! the pool's single connection for the first batch and keeps it (no acquire, release and
//! liveness ping per batch); only when a failed `ROLLBACK` leaves the connection in doubt is it
//! closed and a fresh one acquired for the next batch. Stopping the task returns it to the pool.

use crate::error::port_error;
use crate::sql::millis;
use crate::store::SqliteStore;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// The writer connection as a job sees it: inside the batch's transaction and the job's own
/// savepoint. Everything a job executes here commits with the batch when the job returns `Ok`,
/// and is rolled back (alone) when it returns `Err`.
pub(crate) type Tx = SqliteConnection;

/// The most jobs committed by one transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// Jobs that may wait for the writer task before senders wait too (back-pressure).
const QUEUE_CAPACITY: usize = 4 * MAX_BATCH;

impl SqliteStore {
    /// Runs `job` as one atomic write: in its own savepoint inside the next group-commit batch.
    /// Returns the job's result once the batch has committed; when the commit fails, the
    /// commit's error instead (the job's changes are then lost with the rest of the batch).
    /// `appends_events` says whether the job may append outbox events, to wake the relay after
    /// the commit.
    ///
    /// Call sites write `self.write(true, move |tx| Box::pin(async move { ... })).await`; the
    /// closure is `'static`, so it owns (clones) what it needs.
    ///
    /// Once sent, a job runs and commits even when the caller stops waiting for it.
    ///
    /// # Errors
    /// The job's own error; the batch's error when the transaction could not be begun or
    /// committed; `Unavailable` when the store is closed.
    pub(crate) async fn write<T, F>(&self, appends_events: bool, job: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Tx) -> BoxFuture<'c, Result<T, PortError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let pending = Box::new(Typed { job: Some(job), result: None, reply });
        self.writes
            .jobs
            .send(Job { appends_events, pending })
            .await
            .map_err(|_| PortError::Unavailable("the database is closed".into()))?;
        answer.await.unwrap_or_else(|_| Err(PortError::Unavailable("the database writer stopped".into())))
    }
}

/// A job in the queue, its result type erased.
struct Job {
    /// Whether it may append outbox events.
    appends_events: bool,
    /// The job and the channel back to its caller.
    pending: Box<dyn Pending>,
}

/// What the writer task does with a job, whatever its result type.
trait Pending: Send {
    /// Runs the job on `tx`, keeping its result; `true` when it succeeded.
    fn run<'c>(&'c mut self, tx: &'c mut Tx) -> BoxFuture<'c, bool>;

    /// Answers the caller: with `failure` when given, else with the kept result.
    fn answer(self: Box<Self>, failure: Option<PortError>);
}

/// A job with result type `T`.
struct Typed<T, F> {
    /// Taken when run.
    job: Option<F>,
    /// Set when run to completion.
    result: Option<Result<T, PortError>>,
    /// Where the caller waits.
    reply: oneshot::Sender<Result<T, PortError>>,
}

impl<T, F> Pending for Typed<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut Tx) -> BoxFuture<'c, Result<T, PortError>> + Send + 'static,
{
    fn run<'c>(&'c mut self, tx: &'c mut Tx) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let Some(job) = self.job.take() else { return false };
            let result = job(tx).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn answer(self: Box<Self>, failure: Option<PortError>) {
        let result = match (failure, self.result) {
            (Some(failure), _) => Err(failure),
            (None, Some(result)) => result,
            (None, None) => Err(PortError::Other(anyhow::anyhow!("the write job panicked"))),
        };
        // The caller may have stopped waiting; its write is committed (or not) all the same.
        let _ = self.reply.send(result);
    }
}

/// The writer task and the queue to it; shared by every clone of a store.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    /// The queue of jobs.
    jobs: mpsc::Sender<Job>,
    /// Tells the task to stop taking new jobs, finish the queued ones and end.
    stop: Arc<Notify>,
    /// The task, until `stop` awaits it.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Transactions committed so far.
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("appends_events", &self.appends_events).finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Spawns the writer task on the current tokio runtime. It writes through `pool` (whose
    /// only connection it then owns in practice) and signals `outbox_signal` after committing a
    /// batch in which a job that may append events succeeded.
    pub(crate) fn start(pool: SqlitePool, outbox_signal: Arc<Notify>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let stop = Arc::new(Notify::new());
        let commits = Arc::new(AtomicU64::new(0));
        let writer = Writer { pool, outbox_signal, commits: Arc::clone(&commits) };
        let task = tokio::spawn(writer.run(queue, Arc::clone(&stop)));
        Self { jobs, stop, task: Mutex::new(Some(task)), commits }
    }

    /// Stops taking jobs (later writes fail with `Unavailable`), lets the task commit and answer
    /// the jobs already queued, and waits for it to end. Only the first call waits.
    pub(crate) async fn stop(&self) {
        // `notify_one` stores a permit, so the task sees it even when busy with a batch.
        self.stop.notify_one();
        let task = self.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the SQLite writer task failed");
        }
    }

    /// Transactions committed so far.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// The writer task's state.
struct Writer {
    /// The single-connection writer pool.
    pool: SqlitePool,
    /// See [`SqliteStore::outbox_signal`].
    outbox_signal: Arc<Notify>,
    /// See [`GroupCommit::commits`].
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Commits batches of queued jobs until the queue is closed (by `stop`) and empty, or every
    /// sender is gone.
    async fn run(self, mut queue: mpsc::Receiver<Job>, stop: Arc<Notify>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut held = None;
        let mut stopping = false;
        loop {
            tokio::select! {
                biased;
                () = stop.notified(), if !stopping => {
                    // Queued jobs are still received, then `recv_many` returns 0.
                    queue.close();
                    stopping = true;
                }
                received = queue.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    match self.connection(&mut held).await {
                        Ok(conn) => {
                            if !self.commit_batch(conn, batch.drain(..)).await {
                                // Closed on drop; the next batch acquires a fresh one.
                                held = None;
                            }
                        }
                        Err(e) => fail_all(batch.drain(..), &e),
                    }
                }
            }
        }
        // Dropping `held` returns the connection to the pool, which `close` then closes.
    }

    /// The writer connection, acquired from the pool when not held yet.
    async fn connection<'h>(
        &self,
        held: &'h mut Option<PoolConnection<Sqlite>>,
    ) -> Result<&'h mut PoolConnection<Sqlite>, PortError> {
        if held.is_none() {
            *held = Some(self.pool.acquire().await.map_err(port_error)?);
        }
        held.as_mut().ok_or_else(|| PortError::Unavailable("no writer connection".into()))
    }

    /// Runs `batch` in one transaction, one savepoint per job, commits, then answers every job.
    /// Returns `false` when `conn` must not be used again.
    async fn commit_batch(
        &self,
        conn: &mut PoolConnection<Sqlite>,
        batch: impl ExactSizeIterator<Item = Job>,
    ) -> bool {
        // Savepoint statements ride along with the statement before them (one round trip to
        // the connection's thread instead of two): `BEGIN IMMEDIATE; SAVEPOINT job`, then after
        // each job `RELEASE job; SAVEPOINT job` (or `ROLLBACK TO job; ...` when it failed),
        // and finally `RELEASE job; COMMIT`.
        if batch.len() == 0 {
            return true;
        }
        if let Err(e) = execute(conn, "BEGIN IMMEDIATE; SAVEPOINT job").await {
            // Either `BEGIN` failed (nothing to undo) or the savepoint did (undo the begin).
            let usable = rollback(conn).await;
            fail_all(batch, &e);
            return usable;
        }
        let mut ran = Vec::with_capacity(batch.len());
        let mut appended = false;
        let mut batch = batch.into_iter().peekable();
        while let Some(mut job) = batch.next() {
            let succeeded = run_job(conn, &mut job).await;
            appended |= succeeded && job.appends_events;
            let last = batch.peek().is_none();
            let close = match (succeeded, last) {
                (true, false) => "RELEASE job; SAVEPOINT job",
                (false, false) => "ROLLBACK TO job; RELEASE job; SAVEPOINT job",
                (true, true) => "RELEASE job; COMMIT",
                (false, true) => "ROLLBACK TO job; RELEASE job; COMMIT",
            };
            ran.push(job);
            if let Err(e) = execute(conn, close).await {
                // The transaction is gone or unusable (or the commit failed): nothing of the
                // batch is kept.
                tracing::error!(error = %e, "SQLite savepoint or commit failed; the whole batch is rolled back");
                let usable = rollback(conn).await;
                fail_all(ran.into_iter().chain(batch), &e);
                return usable;
            }
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        if appended {
            // `notify_one` stores a permit when nobody waits, so the wake-up is never lost.
            self.outbox_signal.notify_one();
        }
        for job in ran {
            job.pending.answer(None);
        }
        true
    }
}

/// Runs `job` on the open savepoint; returns whether it succeeded (a panic counts as failed).
async fn run_job(conn: &mut PoolConnection<Sqlite>, job: &mut Job) -> bool {
    AssertUnwindSafe(job.pending.run(conn)).catch_unwind().await.unwrap_or_else(|_| {
        tracing::error!("a SQLite write job panicked; its changes are rolled back");
        false
    })
}

/// Runs one fixed statement on the writer connection.
async fn execute(conn: &mut PoolConnection<Sqlite>, sql: &'static str) -> Result<(), PortError> {
    sqlx::raw_sql(sql).execute(&mut **conn).await.map(|_| ()).map_err(port_error)
}

/// Rolls the batch's transaction back. SQLite may already have rolled it back itself (after an
/// I/O error, say), which makes `ROLLBACK` fail harmlessly. Any other failure leaves the
/// connection in doubt: it is then marked to be closed instead of returned to the pool, and
/// `false` is returned.
async fn rollback(conn: &mut PoolConnection<Sqlite>) -> bool {
    let Err(e) = sqlx::raw_sql("ROLLBACK").execute(&mut **conn).await else { return true };
    if e.as_database_error().is_some_and(|db| db.message().contains("no transaction is active")) {
        return true;
    }
    tracing::error!(error = %e, "SQLite rollback failed; the writer connection is replaced");
    conn.close_on_drop();
    false
}

/// Answers every job of `jobs` with (a copy of) `error`.
fn fail_all(jobs: impl Iterator<Item = Job>, error: &PortError) {
    for job in jobs {
        job.pending.answer(Some(copy_error(error)));
    }
}

/// A copy of `error` for one more caller (`PortError` is not `Clone`: an `Other` is copied as its
/// message with its cause chain).
fn copy_error(error: &PortError) -> PortError {
    match error {
        PortError::NotFound => PortError::NotFound,
        PortError::Conflict => PortError::Conflict,
        PortError::Duplicate(key) => PortError::Duplicate(key),
        PortError::AlreadyProcessed => PortError::AlreadyProcessed,
        PortError::Unavailable(message) => PortError::Unavailable(message.clone()),
        PortError::Other(e) => PortError::Other(anyhow::anyhow!("{e:#}")),
    }
}

/// Records that `consumed.consumer` handled `consumed.event_id`.
///
/// # Errors
/// `AlreadyProcessed` when it was already recorded; the job then fails and its savepoint is
/// rolled back.
pub(crate) async fn record_consumed(tx: &mut Tx, consumed: Option<&Consumed>) -> Result<(), PortError> {
    let Some(consumed) = consumed else { return Ok(()) };
    let inserted = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?) \
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(consumed.consumer.clone())
    .bind(consumed.event_id.to_string())
    .bind(millis(Utc::now()))
    .execute(&mut *tx)
    .await
    .map_err(port_error)?;
    if inserted.rows_affected() == 0 { Err(PortError::AlreadyProcessed) } else { Ok(()) }
}

/// Appends `events` to the outbox, in order.
pub(crate) async fn append_events(tx: &mut Tx, events: &[Event]) -> Result<(), PortError> {
    for event in events {
        let payload = serde_json::to_string(&event.payload)
            .map_err(|e| crate::error::unserializable("event payload", e))?;
        sqlx::query(
            "INSERT INTO outbox (event_id, name, key, created_at, source, payload) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(event.id.to_string())
        .bind(event.name.clone())
        .bind(event.key.clone())
        .bind(millis(event.created_at))
        .bind(event.source.clone())
        .bind(payload)
        .execute(&mut *tx)
        .await
        .map_err(port_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteConfig;
    use std::time::Duration;
    use tokio::time::Instant;

    /// A job inserting `k` into the test table.
    async fn insert(store: &SqliteStore, k: i64) -> Result<(), PortError> {
        store
            .write(false, move |tx| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (k) VALUES (?)")
                        .bind(k)
                        .execute(&mut *tx)
                        .await
                        .map(|_| ())
                        .map_err(crate::error::unique_as("k"))
                })
            })
            .await
    }

    /// Jobs queued while a batch runs form the next batch, committed once; within it a failing
    /// job and a panicking job are rolled back alone.
    #[tokio::test]
    async fn queued_jobs_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::connect(SqliteConfig::new(dir.path().join("t.db"))).await.expect("connect");
        store
            .write(false, |tx| {
                Box::pin(async move {
                    sqlx::raw_sql("CREATE TABLE t (k INTEGER PRIMARY KEY)")
                        .execute(&mut *tx)
                        .await
                        .map(|_| ())
                        .map_err(port_error)
                })
            })
            .await
            .expect("create table");

        // A job that holds its batch open until told to finish.
        let (started_tx, started) = oneshot::channel::<()>();
        let (finish, gate) = oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write(false, move |_tx| {
                        Box::pin(async move {
                            let _ = started_tx.send(());
                            let _ = gate.await;
                            Ok(())
                        })
                    })
                    .await
            }
        });
        started.await.expect("the blocker runs");
        let before = store.commits();

        let first = tokio::spawn({
            let store = store.clone();
            async move { insert(&store, 1).await }
        });
        let duplicate = tokio::spawn({
            let store = store.clone();
            async move { insert(&store, 1).await }
        });
        let panicking = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write::<(), _>(false, |tx| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO t (k) VALUES (3)")
                                .execute(&mut *tx)
                                .await
                                .map_err(port_error)?;
                            panic!("a job that panics after writing");
                        })
                    })
                    .await
            }
        });
        let second = tokio::spawn({
            let store = store.clone();
            async move { insert(&store, 2).await }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.writes.jobs.max_capacity() - store.writes.jobs.capacity() < 4 {
            assert!(Instant::now() < deadline, "the four jobs were never queued");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        finish.send(()).expect("the blocker waits");

        blocker.await.expect("task").expect("blocker");
        first.await.expect("task").expect("first insert");
        second.await.expect("task").expect("second insert");
        let duplicate = duplicate.await.expect("task");
        assert!(matches!(duplicate, Err(PortError::Duplicate("k"))), "got {duplicate:?}");
        let panicked = panicking.await.expect("task");
        assert!(matches!(panicked, Err(PortError::Other(_))), "got {panicked:?}");
        assert_eq!(store.commits() - before, 2, "the blocker's batch, then one batch of four");
        let keys: Vec<i64> =
            sqlx::query_scalar("SELECT k FROM t ORDER BY k").fetch_all(&store.reader).await.expect("read");
        assert_eq!(keys, vec![1, 2], "the failed and the panicked jobs left nothing");
    }
}
