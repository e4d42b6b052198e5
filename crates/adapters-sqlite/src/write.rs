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
//! A job whose changes are one statement ([`SqliteStore::write_one`]: an execution insert,
//! claim or save without events, the hot path of every run) needs no savepoint: SQLite undoes a
//! failed statement by itself and keeps the transaction. It costs one round trip to the
//! connection's thread instead of two. After such a job fails, one statement checks that the
//! transaction survived the error (`RELEASE batch; SAVEPOINT batch` on the savepoint that spans
//! the batch); when a job of this kind panics, the whole batch is rolled back and fails.
//!
//! A plain execution insert or a save without events is queued as a row instead of a closure
//! ([`SqliteStore::insert_row`], [`SqliteStore::save_row`]): the writer runs the rows of a
//! batch first, one job per kind of multi-row statements (see `gather`). All jobs of a batch
//! are answered only after its commit, so they are concurrent and running the rows first is
//! one valid order among others.
//!
//! The writer task is the only writer: no other code writes through the writer pool. It acquires
//! the pool's single connection for the first batch and keeps it (no acquire, release and
//! liveness ping per batch); only when a failed `ROLLBACK` leaves the connection in doubt is it
//! closed and a fresh one acquired for the next batch. Stopping the task returns it to the pool.

use crate::error::port_error;
use crate::gather::{Gathered, GatheredRow, QueuedRow, Reply, STATEMENT_ROWS, chunks, insert_sql};
use crate::insert_batch::NewRow;
use crate::save_batch::SaveRow;
use crate::sql::millis;
use crate::store::SqliteStore;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, SqlitePool};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
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
        self.send_job(appends_events, true, job).await
    }

    /// [`SqliteStore::write`] for a job that changes the database with *one* statement and,
    /// when it answers `Err`, has changed nothing (its statement failed, or matched no row). It
    /// runs without a savepoint of its own: one round trip to the writer connection less.
    ///
    /// # Errors
    /// As [`SqliteStore::write`]; when the job panics, its whole batch fails.
    pub(crate) async fn write_one<T, F>(&self, appends_events: bool, job: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Tx) -> BoxFuture<'c, Result<T, PortError>> + Send + 'static,
    {
        self.send_job(appends_events, false, job).await
    }

    /// The write of a row with its events: `job` is one statement followed by the outbox
    /// appends of `events_appended` events, so without events it is a one-statement job
    /// ([`SqliteStore::write_one`]), with events a job of its own savepoint.
    ///
    /// # Errors
    /// As [`SqliteStore::write`].
    pub(crate) async fn write_with_events<T, F>(&self, events_appended: bool, job: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Tx) -> BoxFuture<'c, Result<T, PortError>> + Send + 'static,
    {
        self.send_job(events_appended, events_appended, job).await
    }

    /// Queues `job` for the writer task and waits for its answer.
    async fn send_job<T, F>(&self, appends_events: bool, savepoint: bool, job: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Tx) -> BoxFuture<'c, Result<T, PortError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let pending = Box::new(Typed { job: Some(job), result: None, reply });
        self.queue(Queued::Job(Job { appends_events, savepoint, pending })).await?;
        answer.await.unwrap_or_else(|_| Err(PortError::Unavailable("the database writer stopped".into())))
    }

    /// Inserts the plain execution `row` (no idempotency key) with its events, gathered with
    /// the other rows of the next batch into multi-row statements (see `insert_batch`).
    ///
    /// # Errors
    /// As [`SqliteStore::write`]; `Duplicate` when the id exists.
    pub(crate) async fn insert_row(&self, row: NewRow) -> Result<(), PortError> {
        self.queue_row(|reply| QueuedRow::Insert(row, reply)).await
    }

    /// Saves the execution `row` (no events) if its revision is still the stored one, gathered
    /// with the other saves of the next batch into multi-row statements (see `save_batch`).
    ///
    /// # Errors
    /// As [`SqliteStore::write`]; `NotFound` or `Conflict` when no row matched.
    pub(crate) async fn save_row(&self, row: SaveRow) -> Result<(), PortError> {
        self.queue_row(|reply| QueuedRow::Save(row, reply)).await
    }

    /// Queues the row that `row` makes with its reply channel, and waits for its result.
    async fn queue_row(&self, row: impl FnOnce(Reply) -> QueuedRow) -> Result<(), PortError> {
        let (reply, answer) = oneshot::channel();
        self.queue(Queued::Row(row(reply))).await?;
        answer.await.unwrap_or_else(|_| Err(PortError::Unavailable("the database writer stopped".into())))
    }

    /// Sends `item` to the writer task.
    async fn queue(&self, item: Queued) -> Result<(), PortError> {
        self.writes.jobs.send(item).await.map_err(|_| PortError::Unavailable("the database is closed".into()))
    }
}

/// What the writer's queue holds.
enum Queued {
    /// A job of its own.
    Job(Job),
    /// A row, gathered with the others of its kind in its batch.
    Row(QueuedRow),
}

/// A job in the queue, its result type erased.
struct Job {
    /// Whether it may append outbox events.
    appends_events: bool,
    /// Whether it runs in a savepoint of its own (see [`SqliteStore::write_one`]).
    savepoint: bool,
    /// The job and the channel back to its caller.
    pending: Box<dyn Pending>,
}

/// What the writer task does with a job, whatever its result type.
pub(crate) trait Pending: Send {
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
    /// The queue of jobs and rows.
    jobs: mpsc::Sender<Queued>,
    /// Tells the task to stop taking new jobs, finish the queued ones and end.
    stop: Arc<Notify>,
    /// The task, until `stop` awaits it.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Transactions committed so far.
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("appends_events", &self.appends_events)
            .field("savepoint", &self.savepoint)
            .finish_non_exhaustive()
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

    /// The counter behind [`GroupCommit::commits`], for the checkpoint task.
    pub(crate) fn commit_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.commits)
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
    async fn run(self, mut queue: mpsc::Receiver<Queued>, stop: Arc<Notify>) {
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
                    let jobs = gather(batch.drain(..));
                    match self.connection(&mut held).await {
                        Ok(conn) => {
                            if !self.commit_batch(conn, jobs.into_iter()).await {
                                // Closed on drop; the next batch acquires a fresh one.
                                held = None;
                            }
                        }
                        Err(e) => fail_all(jobs.into_iter(), &e),
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

    /// Runs `batch` in one transaction (a savepoint per job that needs one), commits, then
    /// answers every job. Returns `false` when `conn` must not be used again.
    async fn commit_batch(
        &self,
        conn: &mut PoolConnection<Sqlite>,
        batch: impl ExactSizeIterator<Item = Job>,
    ) -> bool {
        // Savepoint statements ride along with the statement before them (one round trip to
        // the connection's thread instead of two); see `closing`.
        let mut batch = batch.peekable();
        let Some(first) = batch.peek() else { return true };
        let begin = if first.savepoint {
            "BEGIN IMMEDIATE; SAVEPOINT batch; SAVEPOINT job"
        } else {
            "BEGIN IMMEDIATE; SAVEPOINT batch"
        };
        if let Err(e) = execute(conn, begin).await {
            // Either `BEGIN` failed (nothing to undo) or a savepoint did (undo the begin).
            let usable = rollback(conn).await;
            fail_all(batch, &e);
            return usable;
        }
        let mut ran = Vec::with_capacity(batch.len());
        let mut appended = false;
        while let Some(mut job) = batch.next() {
            let outcome = run_job(conn, &mut job).await;
            appended |= outcome == Outcome::Succeeded && job.appends_events;
            let savepoint = job.savepoint;
            ran.push(job);
            let failure = if outcome == Outcome::Panicked && !savepoint {
                // Its changes cannot be undone alone.
                Some(PortError::Other(anyhow::anyhow!("a write of the same batch panicked")))
            } else {
                let next = batch.peek().map(|next| next.savepoint);
                match closing(savepoint, outcome == Outcome::Succeeded, next) {
                    Some(sql) => execute(conn, sql).await.err(),
                    None => None,
                }
            };
            if let Some(e) = failure {
                // The transaction is gone or unusable (or the commit failed): nothing of the
                // batch is kept.
                tracing::error!(error = %e, "SQLite write batch failed; the whole batch is rolled back");
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

/// The jobs of one batch: the inserts gathered into one job and the saves into another, which
/// run first (without a savepoint of the writer's: they keep their own), then the other jobs
/// in the order they came.
fn gather(batch: impl Iterator<Item = Queued>) -> Vec<Job> {
    let (mut inserts, mut saves, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for item in batch {
        match item {
            Queued::Job(job) => others.push(job),
            Queued::Row(QueuedRow::Insert(row, reply)) => inserts.push((row, reply)),
            Queued::Row(QueuedRow::Save(row, reply)) => saves.push((row, reply)),
        }
    }
    let mut jobs = Vec::with_capacity(others.len() + 2);
    jobs.extend(gathered_job(inserts));
    jobs.extend(gathered_job(saves));
    jobs.extend(others);
    jobs
}

/// The job of the gathered `rows`, if any.
fn gathered_job<R: GatheredRow>(rows: Vec<(R, Reply)>) -> Option<Job> {
    if rows.is_empty() {
        return None;
    }
    let gathered = Gathered::new(rows);
    Some(Job { appends_events: gathered.appends_events(), savepoint: false, pending: Box::new(gathered) })
}

/// How a job ended on the writer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Panicked,
}

/// What to run after a job: close its savepoint (releasing it, or rolling back to it first when
/// the job failed), or after a failed job without one check that the transaction survived;
/// then open the next job's savepoint (`next` is whether the next job wants one) or, after the
/// last job, commit. `None` when nothing needs to run (a job without savepoint succeeded and
/// the next one wants none either).
fn closing(savepoint: bool, succeeded: bool, next: Option<bool>) -> Option<&'static str> {
    Some(match (savepoint, succeeded, next) {
        (true, true, Some(true)) => "RELEASE job; SAVEPOINT job",
        (true, true, Some(false)) => "RELEASE job",
        (true, true, None) => "RELEASE job; COMMIT",
        (true, false, Some(true)) => "ROLLBACK TO job; RELEASE job; SAVEPOINT job",
        (true, false, Some(false)) => "ROLLBACK TO job; RELEASE job",
        (true, false, None) => "ROLLBACK TO job; RELEASE job; COMMIT",
        (false, true, Some(true)) => "SAVEPOINT job",
        (false, true, Some(false)) => return None,
        (false, true, None) => "COMMIT",
        // `RELEASE batch` fails when an error rolled the whole transaction back.
        (false, false, Some(true)) => "RELEASE batch; SAVEPOINT batch; SAVEPOINT job",
        (false, false, Some(false)) => "RELEASE batch; SAVEPOINT batch",
        (false, false, None) => "RELEASE batch; COMMIT",
    })
}

/// Runs `job` (on its open savepoint, when it has one).
async fn run_job(conn: &mut PoolConnection<Sqlite>, job: &mut Job) -> Outcome {
    match AssertUnwindSafe(job.pending.run(conn)).catch_unwind().await {
        Ok(true) => Outcome::Succeeded,
        Ok(false) => Outcome::Failed,
        Err(_) => {
            tracing::error!("a SQLite write job panicked");
            Outcome::Panicked
        }
    }
}

/// Runs one fixed statement on the writer connection.
pub(crate) async fn execute(tx: &mut Tx, sql: &'static str) -> Result<(), PortError> {
    sqlx::raw_sql(sql).execute(&mut *tx).await.map(|_| ()).map_err(port_error)
}

/// Checks, after a statement of a job without a savepoint failed, that the batch's
/// transaction survived the error (some errors make SQLite roll it back whole): `RELEASE batch`
/// fails when it did not. Only for gathered jobs, which run on the batch's own savepoint.
///
/// # Errors
/// When the transaction is gone, or the check could not run.
pub(crate) async fn check_transaction(tx: &mut Tx) -> Result<(), PortError> {
    execute(tx, "RELEASE batch; SAVEPOINT batch").await
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
        job.pending.answer(Some(error.copied()));
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

/// The outbox inserts of each size of [`STATEMENT_ROWS`], each followed by `after`.
pub(crate) fn outbox_inserts(after: &str) -> Vec<String> {
    let into = "outbox (event_id, name, key, created_at, source, payload)";
    STATEMENT_ROWS
        .iter()
        .map(|&rows| format!("{}{after}", insert_sql(into, "(?, ?, ?, ?, ?, ?)", rows)))
        .collect()
}

/// Outbox inserts of each size of [`STATEMENT_ROWS`].
pub(crate) static OUTBOX_INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| outbox_inserts(""));

/// Binds the values of `events`, one outbox row after the other.
pub(crate) fn bind_events<'q>(
    mut query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    events: &[&Event],
) -> Result<sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>, PortError> {
    for event in events {
        let payload = serde_json::to_string(&event.payload)
            .map_err(|e| crate::error::unserializable("event payload", e))?;
        query = query
            .bind(event.id.to_string())
            .bind(event.name.clone())
            .bind(event.key.clone())
            .bind(millis(event.created_at))
            .bind(event.source.clone())
            .bind(payload);
    }
    Ok(query)
}

/// Appends `events` to the outbox, in order.
pub(crate) async fn append_events(tx: &mut Tx, events: &[Event]) -> Result<(), PortError> {
    let events: Vec<&Event> = events.iter().collect();
    for (size, chunk) in chunks(&events) {
        bind_events(sqlx::query(AssertSqlSafe(OUTBOX_INSERTS[size].as_str())), chunk)?
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
        store.write(false, insert_job(k)).await
    }

    /// The same as a one-statement job (no savepoint).
    async fn insert_one(store: &SqliteStore, k: i64) -> Result<(), PortError> {
        store.write_one(false, insert_job(k)).await
    }

    fn insert_job(k: i64) -> impl for<'c> FnOnce(&'c mut Tx) -> BoxFuture<'c, Result<(), PortError>> {
        move |tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (k) VALUES (?)")
                    .bind(k)
                    .execute(&mut *tx)
                    .await
                    .map(|_| ())
                    .map_err(crate::error::unique_as("k"))
            })
        }
    }

    /// A store with the test table `t (k INTEGER PRIMARY KEY)`.
    async fn store_with_table(dir: &tempfile::TempDir) -> SqliteStore {
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
        store
    }

    /// Holds the writer in a batch until the returned sender is used (or dropped), so that the
    /// jobs queued meanwhile form the next batch together.
    async fn hold_writer(store: &SqliteStore) -> (oneshot::Sender<()>, JoinHandle<Result<(), PortError>>) {
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
        (finish, blocker)
    }

    /// Waits until `queued` jobs wait behind the writer that `held` holds (see `hold_writer`),
    /// then lets it go and waits for the blocker's batch to commit.
    async fn release(
        store: &SqliteStore,
        queued: usize,
        (finish, blocker): (oneshot::Sender<()>, JoinHandle<Result<(), PortError>>),
    ) {
        wait_queued(store, queued).await;
        finish.send(()).expect("the blocker waits");
        blocker.await.expect("task").expect("blocker");
    }

    /// The results of `tasks`, in order.
    async fn joined<T>(
        tasks: impl IntoIterator<Item = JoinHandle<Result<T, PortError>>>,
    ) -> Vec<Result<T, PortError>> {
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        results
    }

    /// Waits until `n` jobs wait in the writer's queue.
    async fn wait_queued(store: &SqliteStore, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.writes.jobs.max_capacity() - store.writes.jobs.capacity() < n {
            assert!(Instant::now() < deadline, "the {n} jobs were never queued");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The keys in the test table.
    async fn keys(store: &SqliteStore) -> Vec<i64> {
        sqlx::query_scalar("SELECT k FROM t ORDER BY k").fetch_all(&store.reader).await.expect("read")
    }

    /// Spawns `job(store)`.
    fn spawn<T: Send + 'static>(
        store: &SqliteStore,
        job: impl FnOnce(SqliteStore) -> BoxFuture<'static, Result<T, PortError>>,
    ) -> JoinHandle<Result<T, PortError>> {
        tokio::spawn(job(store.clone()))
    }

    /// Execution inserts and saves queued while a batch runs are gathered into multi-row
    /// statements of the next batch, and each still gets its own result: a duplicate id fails
    /// alone (the others are inserted row by row with their events), a stale or unknown save
    /// fails alone, and only one of two saves of one execution from the same revision wins.
    #[tokio::test]
    async fn gathered_rows_fail_alone_in_one_batch() {
        use flow_domain::ids::FlowId;
        use flow_domain::ports::{ExecutionRepository, Outbox};
        use port_contracts::storage::executions::execution;
        use port_contracts::storage::fixtures::{event, now};

        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_table(&dir).await;
        let new = || execution(FlowId::new(), None, vec![], now());
        let stored: Vec<_> = (0..3).map(|_| new()).collect();
        for e in &stored {
            store.insert(e, &[]).await.expect("insert");
        }
        let (fresh, with_event, unknown) = (new(), new(), new());
        let mut stale = stored[1].clone();
        stale.revision += 5;

        let held = hold_writer(&store).await;
        let before = store.commits();
        let inserts = [fresh.clone(), fresh.clone(), with_event.clone()].map(|e| {
            let events = if e.id == with_event.id { vec![event()] } else { vec![] };
            spawn(&store, move |s| Box::pin(async move { s.insert(&e, &events).await }))
        });
        let saves = [stored[0].clone(), stored[0].clone(), stale, unknown, stored[2].clone()]
            .map(|e| spawn(&store, move |s| Box::pin(async move { s.save(&e, &[]).await })));
        release(&store, 8, held).await;

        let inserted = joined(inserts).await;
        let duplicates = inserted[..2].iter().filter(|r| matches!(r, Err(PortError::Duplicate(_)))).count();
        assert_eq!(duplicates, 1, "one of the two inserts of one id fails: {inserted:?}");
        assert!(inserted[2].is_ok(), "the insert with an event: {:?}", inserted[2]);
        let saved = joined(saves).await;
        let won = saved[..2].iter().filter(|r| r.is_ok()).count();
        let lost = saved[..2].iter().filter(|r| matches!(r, Err(PortError::Conflict))).count();
        assert_eq!((won, lost), (1, 1), "of two saves from one revision one wins: {saved:?}");
        assert!(matches!(saved[2], Err(PortError::Conflict)), "stale save: {:?}", saved[2]);
        assert!(matches!(saved[3], Err(PortError::NotFound)), "unknown save: {:?}", saved[3]);
        assert!(saved[4].is_ok(), "save: {:?}", saved[4]);
        assert_eq!(store.commits() - before, 2, "the blocker's batch, then one batch of eight");

        for (e, revision) in
            [(&fresh, 1), (&with_event, 1), (&stored[0], 2), (&stored[1], 1), (&stored[2], 2)]
        {
            let got = store.get(e.id).await.expect("get").expect("stored");
            assert_eq!(got.revision, e.revision + revision - 1, "revision of {}", e.id);
        }
        let claimed = Outbox::claim(&store, "relay#1", 10).await.expect("claim");
        assert_eq!(claimed.len(), 1, "the one event, appended with its execution");
    }

    /// More inserts without events than one statement holds (64 rows, then the rest in a
    /// padded statement), one of them a duplicate: it alone fails, the others are stored, in
    /// one commit.
    #[tokio::test]
    async fn gathered_inserts_without_events_fail_alone_across_statements() {
        use flow_domain::ids::FlowId;
        use flow_domain::ports::ExecutionRepository;
        use port_contracts::storage::executions::execution;
        use port_contracts::storage::fixtures::now;

        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_table(&dir).await;
        let new = || execution(FlowId::new(), None, vec![], now());
        let existing = new();
        store.insert(&existing, &[]).await.expect("insert");
        let mut rows: Vec<_> = (0..69).map(|_| new()).collect();
        rows.insert(40, existing.clone());

        let held = hold_writer(&store).await;
        let before = store.commits();
        let inserts: Vec<_> = rows
            .iter()
            .cloned()
            .map(|e| spawn(&store, move |s| Box::pin(async move { s.insert(&e, &[]).await })))
            .collect();
        release(&store, rows.len(), held).await;

        let results = joined(inserts).await;
        for (i, result) in results.iter().enumerate() {
            if i == 40 {
                assert!(matches!(result, Err(PortError::Duplicate(_))), "the duplicate: {result:?}");
            } else {
                assert!(result.is_ok(), "row {i}: {result:?}");
            }
        }
        assert_eq!(store.commits() - before, 2, "the blocker's batch, then one batch of 70");
        for e in rows.iter().filter(|e| e.id != existing.id) {
            assert_eq!(store.get(e.id).await.expect("get").expect("stored").id, e.id);
        }
    }

    /// Jobs queued while a batch runs form the next batch, committed once; within it a failing
    /// job and a panicking job are rolled back alone.
    #[tokio::test]
    async fn queued_jobs_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_table(&dir).await;
        let held = hold_writer(&store).await;
        let before = store.commits();

        let first = spawn(&store, |s| Box::pin(async move { insert(&s, 1).await }));
        let duplicate = spawn(&store, |s| Box::pin(async move { insert(&s, 1).await }));
        let panicking = spawn(&store, |s| {
            Box::pin(async move {
                s.write::<(), _>(false, |tx| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (k) VALUES (3)")
                            .execute(&mut *tx)
                            .await
                            .map_err(port_error)?;
                        panic!("a job that panics after writing");
                    })
                })
                .await
            })
        });
        let second = spawn(&store, |s| Box::pin(async move { insert(&s, 2).await }));
        release(&store, 4, held).await;
        first.await.expect("task").expect("first insert");
        second.await.expect("task").expect("second insert");
        let duplicate = duplicate.await.expect("task");
        assert!(matches!(duplicate, Err(PortError::Duplicate("k"))), "got {duplicate:?}");
        let panicked = panicking.await.expect("task");
        assert!(matches!(panicked, Err(PortError::Other(_))), "got {panicked:?}");
        assert_eq!(store.commits() - before, 2, "the blocker's batch, then one batch of four");
        assert_eq!(keys(&store).await, vec![1, 2], "the failed and the panicked jobs left nothing");
    }

    /// One-statement jobs, mixed with savepoint jobs in one batch: a failing one is undone alone
    /// by SQLite and the batch goes on; a panicking one fails its whole batch.
    #[tokio::test]
    async fn one_statement_jobs_fail_alone_and_a_panic_fails_the_batch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_table(&dir).await;

        let held = hold_writer(&store).await;
        let before = store.commits();
        let plain =
            [1, 1, 3].map(|k| spawn(&store, move |s| Box::pin(async move { insert_one(&s, k).await })));
        let with_savepoint = spawn(&store, |s| Box::pin(async move { insert(&s, 2).await }));
        let after = spawn(&store, |s| Box::pin(async move { insert_one(&s, 4).await }));
        release(&store, 5, held).await;
        let results = joined(plain).await;
        assert!(results[2].is_ok(), "insert of 3: {:?}", results[2]);
        let duplicates = results[..2].iter().filter(|r| matches!(r, Err(PortError::Duplicate("k")))).count();
        assert_eq!(duplicates, 1, "exactly one of the two inserts of 1 fails: {results:?}");
        with_savepoint.await.expect("task").expect("savepoint insert");
        after.await.expect("task").expect("insert after the failure");
        assert_eq!(store.commits() - before, 2, "the blocker's batch, then one batch of five");
        assert_eq!(keys(&store).await, vec![1, 2, 3, 4]);

        let held = hold_writer(&store).await;
        let good = spawn(&store, |s| Box::pin(async move { insert_one(&s, 10).await }));
        let panicking = spawn(&store, |s| {
            Box::pin(async move {
                s.write_one::<(), _>(false, |tx| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (k) VALUES (11)")
                            .execute(&mut *tx)
                            .await
                            .map_err(port_error)?;
                        panic!("a one-statement job that panics after writing");
                    })
                })
                .await
            })
        });
        let later = spawn(&store, |s| Box::pin(async move { insert(&s, 12).await }));
        release(&store, 3, held).await;
        for (name, task) in [("good", good), ("panicking", panicking), ("later", later)] {
            let result = task.await.expect("task");
            assert!(
                result.is_err(),
                "{name}: the batch of a panicked one-statement job fails, got {result:?}"
            );
        }
        assert_eq!(keys(&store).await, vec![1, 2, 3, 4], "nothing of the failed batch is kept");
        insert_one(&store, 13).await.expect("the writer goes on after a failed batch");
        assert_eq!(keys(&store).await, vec![1, 2, 3, 4, 13]);
    }
}
