//! Group writes of executions: concurrent `ExecutionRepository::insert` calls, and saves
//! without events, are gathered by one task per kind and written by one multi-row statement,
//! committed on its own (one round trip, one commit and one WAL flush for the whole batch
//! instead of one each). This is what a busy webhook costs: on a small machine PostgreSQL spends
//! several hundred microseconds of CPU on a one-row transaction, and most of it per statement,
//! not per row; an inline run writes twice (its claim, then its end).
//!
//! Each caller still hears back only once its row (with its owners, by trigger, and its events)
//! is committed. Batches form while earlier ones run (no artificial delay); at most
//! [`IN_FLIGHT`] run at once, each in a task of its own, so a caller that stops waiting never
//! cancels a statement half-way. When an insert batch fails on a unique violation (a duplicate
//! id), its rows are inserted one by one so that only the duplicate fails. A save batch updates
//! each row whose revision is still the one read (`UPDATE ... FROM unnest(...)`); a row it did
//! not update gets `NotFound` or `Conflict` as a save of its own would, and a second save of one
//! execution in the same batch runs alone, after the others.

use crate::error::{port_error, unique_as};
use crate::executions::{EXECUTIONS, update_statement};
use crate::rows::{EXECUTION_INSERT_ONLY_COLUMNS, EXECUTION_WRITE_COLUMNS};
use crate::sql::{Arg, bind_args, q};
use crate::write::{bind_events, with_events};
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::event::Event;
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::AbortHandle;

/// The most rows one statement inserts.
const MAX_BATCH: usize = 256;

/// Batches written at once (each on a pooled connection).
const IN_FLIGHT: usize = 4;

/// One execution row to write. To insert: the values of `id`, [`EXECUTION_WRITE_COLUMNS`],
/// [`EXECUTION_INSERT_ONLY_COLUMNS`] and `revision`, in that order, and its events. To save:
/// the values of `id`, [`EXECUTION_WRITE_COLUMNS`] and the revision read, and no events.
pub(crate) struct NewExecution {
    /// The column values.
    pub(crate) values: Vec<Arg>,
    /// The events appended with it.
    pub(crate) events: Vec<Event>,
}

/// A row waiting for its batch, and where its caller waits.
struct Pending {
    row: NewExecution,
    reply: oneshot::Sender<Result<(), PortError>>,
}

/// Writes the rows of one batch: one result per row, in order.
pub(crate) type WriteBatch =
    for<'a> fn(&'a PgPool, &'a [&'a NewExecution]) -> BoxFuture<'a, Vec<Result<(), PortError>>>;

/// The queue to the batching task; shared by every clone of a store.
#[derive(Debug)]
pub(crate) struct Batcher {
    queue: mpsc::Sender<Pending>,
    task: AbortHandle,
    /// Where batches are written.
    pool: PgPool,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Batcher {
    /// Spawns the batching task on the current tokio runtime; batches are written by `write`
    /// ([`insert_batch`] or [`save_batch`]) through `pool`.
    pub(crate) fn start(pool: PgPool, write: WriteBatch) -> Self {
        let (queue, receiver) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(gather(receiver, pool.clone(), write)).abort_handle();
        Self { queue, task, pool }
    }

    /// Closes the pool batches are written through, waiting for the connections in use.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Writes `row` in the next batch; returns once that batch is committed (the caller wakes
    /// the relays when the row had events).
    ///
    /// # Errors
    /// Inserts: `Duplicate("execution id")` for a duplicate id. Saves: `NotFound` or
    /// `Conflict` when no row with the id and revision read was there. The database's error
    /// when the batch failed; `Unavailable` when the store is gone.
    pub(crate) async fn write(&self, row: NewExecution) -> Result<(), PortError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { row, reply })
            .await
            .map_err(|_| PortError::Unavailable("the execution writer stopped".into()))?;
        answer.await.unwrap_or_else(|_| Err(PortError::Unavailable("the execution writer stopped".into())))
    }
}

/// Takes whatever is queued (up to [`MAX_BATCH`]) as soon as a slot of [`IN_FLIGHT`] is free and
/// writes it in a task of its own.
async fn gather(mut receiver: mpsc::Receiver<Pending>, pool: PgPool, write: WriteBatch) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            let rows: Vec<&NewExecution> = batch.iter().map(|p| &p.row).collect();
            let results = write(&pool, &rows).await;
            drop(rows);
            for (pending, result) in batch.into_iter().zip(results) {
                let _ = pending.reply.send(result);
            }
            drop(slot);
        });
    }
}

/// Inserts `rows` in one statement; on a unique violation, row by row.
pub(crate) fn insert_batch<'a>(
    pool: &'a PgPool,
    rows: &'a [&'a NewExecution],
) -> BoxFuture<'a, Vec<Result<(), PortError>>> {
    Box::pin(async move {
        match insert_rows(pool, rows).await {
            Ok(()) => rows.iter().map(|_| Ok(())).collect(),
            Err(PortError::Duplicate(_)) if rows.len() > 1 => {
                let mut results = Vec::with_capacity(rows.len());
                for row in rows {
                    results.push(insert_rows(pool, &[row]).await);
                }
                results
            }
            Err(error) => rows.iter().map(|_| Err(error.copied())).collect(),
        }
    })
}

/// Saves `rows` (see the module documentation): the first save of each execution in one
/// statement, later ones alone.
pub(crate) fn save_batch<'a>(
    pool: &'a PgPool,
    rows: &'a [&'a NewExecution],
) -> BoxFuture<'a, Vec<Result<(), PortError>>> {
    Box::pin(async move {
        let mut seen = HashSet::new();
        let (first, later): (Vec<usize>, Vec<usize>) =
            (0..rows.len()).partition(|&i| seen.insert(id_of(rows[i])));
        let mut results: Vec<Result<(), PortError>> = rows.iter().map(|_| Ok(())).collect();
        let runs = std::iter::once(first).chain(later.into_iter().map(|i| vec![i]));
        for indexes in runs {
            let chunk: Vec<&NewExecution> = indexes.iter().map(|&i| rows[i]).collect();
            match update_rows(pool, &chunk).await {
                Ok(updated) => {
                    for &i in &indexes {
                        let id = id_of(rows[i]);
                        if !updated.contains(id) {
                            results[i] = Err(EXECUTIONS.missing_or_conflict(pool, id).await);
                        }
                    }
                }
                Err(error) => {
                    for &i in &indexes {
                        results[i] = Err(error.copied());
                    }
                }
            }
        }
        results
    })
}

/// The execution id of `row` (its first value).
fn id_of(row: &NewExecution) -> &str {
    match row.values.first() {
        Some(Arg::Text(id)) => id,
        _ => "",
    }
}

/// Updates `rows` (distinct ids) by one statement; the ids it updated.
async fn update_rows(pool: &PgPool, rows: &[&NewExecution]) -> Result<HashSet<String>, PortError> {
    let Some(first) = rows.first() else { return Ok(HashSet::new()) };
    if let [row] = rows {
        return update_row(pool, row).await;
    }
    let sets: Vec<String> = EXECUTION_WRITE_COLUMNS.iter().map(|c| format!("{c} = v.{c}")).collect();
    let columns: Vec<&str> = std::iter::once("id")
        .chain(EXECUTION_WRITE_COLUMNS.iter().copied())
        .chain(std::iter::once("revision"))
        .collect();
    let sql = format!(
        "UPDATE executions AS e SET {}, revision = e.revision + 1 \
         FROM unnest({}) AS v ({}) \
         WHERE e.id = v.id AND e.revision = v.revision RETURNING e.id",
        sets.join(", "),
        arrays(first)?.join(", "),
        columns.join(", ")
    );
    // Planned for each batch with its arrays (not prepared once): a plan made generic while
    // the table was small joins by scanning it, and kept doing so as the table grew (W1 on
    // PostgreSQL at c = 64 fell to ~1,200 req/s after a run at c = 1).
    let mut query = sqlx::query_scalar::<_, String>(q(&sql)).persistent(false);
    for column in 0..first.values.len() {
        query = bind_column(query, rows, column)?;
    }
    Ok(query.fetch_all(pool).await.map_err(port_error)?.into_iter().collect())
}

/// Updates the one row `row` by a prepared statement that finds it by its key (the batch of a
/// quiet moment: no plan to make); the id when it updated it.
async fn update_row(pool: &PgPool, row: &NewExecution) -> Result<HashSet<String>, PortError> {
    static SQL: LazyLock<String> = LazyLock::new(|| update_statement("id"));
    let Some((id, rest)) = row.values.split_first() else { return Ok(HashSet::new()) };
    let Some((revision, values)) = rest.split_last() else { return Ok(HashSet::new()) };
    let query = bind_args!(sqlx::query_scalar::<_, String>(q(&SQL)), values);
    let query = bind_args!(query, std::slice::from_ref(id));
    let query = bind_args!(query, std::slice::from_ref(revision));
    Ok(query.fetch_optional(pool).await.map_err(port_error)?.into_iter().collect())
}

/// The typed array placeholders (`?::text[]`, ...) of the columns of `row`.
fn arrays(row: &NewExecution) -> Result<Vec<String>, PortError> {
    row.values
        .iter()
        .map(|v| array_type(v).map(|t| format!("?::{t}")))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| PortError::Other(anyhow::anyhow!("an execution column of an unexpected kind")))
}

/// Inserts `rows` with their events in one statement (committed on its own).
async fn insert_rows(pool: &PgPool, rows: &[&NewExecution]) -> Result<(), PortError> {
    let Some(first) = rows.first() else { return Ok(()) };
    let columns: Vec<&str> = std::iter::once("id")
        .chain(EXECUTION_WRITE_COLUMNS.iter().chain(EXECUTION_INSERT_ONLY_COLUMNS.iter()).copied())
        .chain(std::iter::once("revision"))
        .collect();
    let sql = with_events(&format!(
        "INSERT INTO executions ({}) SELECT * FROM unnest({}) RETURNING 1",
        columns.join(", "),
        arrays(first)?.join(", ")
    ));
    let mut query = sqlx::query_scalar::<_, i64>(q(&sql));
    for column in 0..first.values.len() {
        query = bind_column(query, rows, column)?;
    }
    let events: Vec<Event> = rows.iter().flat_map(|row| row.events.iter().cloned()).collect();
    bind_events(query, &events)?.fetch_one(pool).await.map_err(unique_as("execution id"))?;
    Ok(())
}

/// The SQL array type (with the cast to the column's type) for a column holding `value`.
fn array_type(value: &Arg) -> Option<&'static str> {
    match value {
        Arg::Text(_) | Arg::OptText(_) => Some("text[]"),
        Arg::Int(_) => Some("int8[]"),
        Arg::Time(_) | Arg::OptTime(_) => Some("timestamptz[]"),
        Arg::Json(_) => Some("text[]::jsonb[]"),
        Arg::TextArray(_) => None,
    }
}

/// Binds column `column` of every row as one array.
fn bind_column<'q, O>(
    query: QueryScalar<'q, sqlx::Postgres, O, PgArguments>,
    rows: &[&NewExecution],
    column: usize,
) -> Result<QueryScalar<'q, sqlx::Postgres, O, PgArguments>, PortError> {
    let cells = rows.iter().map(|row| row.values.get(column));
    Ok(match rows[0].values.get(column) {
        Some(Arg::Text(_) | Arg::OptText(_)) => query.bind(
            cells
                .map(|cell| match cell {
                    Some(Arg::Text(v)) => Ok(Some(v.clone())),
                    Some(Arg::OptText(v)) => Ok(v.clone()),
                    _ => Err(mixed(column)),
                })
                .collect::<Result<Vec<Option<String>>, _>>()?,
        ),
        Some(Arg::Int(_)) => query.bind(
            cells
                .map(|cell| match cell {
                    Some(Arg::Int(v)) => Ok(*v),
                    _ => Err(mixed(column)),
                })
                .collect::<Result<Vec<i64>, _>>()?,
        ),
        Some(Arg::Time(_) | Arg::OptTime(_)) => query.bind(
            cells
                .map(|cell| match cell {
                    Some(Arg::Time(v)) => Ok(Some(*v)),
                    Some(Arg::OptTime(v)) => Ok(*v),
                    _ => Err(mixed(column)),
                })
                .collect::<Result<Vec<Option<DateTime<Utc>>>, _>>()?,
        ),
        Some(Arg::Json(_)) => query.bind(
            cells
                .map(|cell| match cell {
                    Some(Arg::Json(v)) => Ok(v.get().to_owned()),
                    _ => Err(mixed(column)),
                })
                .collect::<Result<Vec<String>, _>>()?,
        ),
        Some(Arg::TextArray(_)) | None => return Err(mixed(column)),
    })
}

/// A row whose column `column` does not hold the same kind of value as the first row's.
fn mixed(column: usize) -> PortError {
    PortError::Other(anyhow::anyhow!("execution rows of one batch differ in the kind of column {column}"))
}
