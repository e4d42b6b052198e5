//! Group insert of executions: concurrent `ExecutionRepository::insert` calls are gathered by one
//! task and written by one multi-row statement, committed on its own (one round trip, one
//! commit and one WAL flush for the whole batch instead of one each). This is what a busy
//! webhook costs: on a small machine PostgreSQL spends several hundred microseconds of CPU on a
//! one-row transaction, and most of it per statement, not per row.
//!
//! Each caller still hears back only once its row (with its owners, by trigger, and its events)
//! is committed. Batches form while earlier ones run (no artificial delay); at most
//! [`IN_FLIGHT`] run at once, each in a task of its own, so a caller that stops waiting never
//! cancels a statement half-way. When a batch fails on a unique violation (a duplicate id), its
//! rows are inserted one by one so that only the duplicate fails.

use crate::error::unique_as;
use crate::rows::{EXECUTION_INSERT_ONLY_COLUMNS, EXECUTION_WRITE_COLUMNS};
use crate::sql::{Arg, q};
use crate::write::{bind_events, with_events};
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::event::Event;
use sqlx::PgPool;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::AbortHandle;

/// The most rows one statement inserts.
const MAX_BATCH: usize = 256;

/// Batches written at once (each on a pooled connection).
const IN_FLIGHT: usize = 4;

/// One execution row to insert: the values of `id`, [`EXECUTION_WRITE_COLUMNS`],
/// [`EXECUTION_INSERT_ONLY_COLUMNS`] and `revision`, in that order, and its events.
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

/// The queue to the batching task; shared by every clone of a store.
#[derive(Debug)]
pub(crate) struct InsertBatcher {
    queue: mpsc::Sender<Pending>,
    task: AbortHandle,
}

impl Drop for InsertBatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl InsertBatcher {
    /// Spawns the batching task on the current tokio runtime; batches are written through
    /// `pool`.
    pub(crate) fn start(pool: PgPool) -> Self {
        let (queue, receiver) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(gather(receiver, pool)).abort_handle();
        Self { queue, task }
    }

    /// Inserts `row` in the next batch; returns once that batch is committed (the caller wakes
    /// the relays when the row had events).
    ///
    /// # Errors
    /// `Duplicate("execution id")` for a duplicate id; the database's error when the batch
    /// failed; `Unavailable` when the store is gone.
    pub(crate) async fn insert(&self, row: NewExecution) -> Result<(), PortError> {
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
async fn gather(mut receiver: mpsc::Receiver<Pending>, pool: PgPool) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            write_batch(&pool, batch).await;
            drop(slot);
        });
    }
}

/// Writes `batch` in one statement and answers every caller; on a unique violation, row by row.
async fn write_batch(pool: &PgPool, batch: Vec<Pending>) {
    let rows: Vec<&NewExecution> = batch.iter().map(|p| &p.row).collect();
    match insert_rows(pool, &rows).await {
        Ok(()) => {
            for pending in batch {
                let _ = pending.reply.send(Ok(()));
            }
        }
        Err(PortError::Duplicate(_)) if batch.len() > 1 => {
            for pending in batch {
                let result = insert_rows(pool, &[&pending.row]).await;
                let _ = pending.reply.send(result);
            }
        }
        Err(error) => {
            for pending in batch {
                let _ = pending.reply.send(Err(error.copied()));
            }
        }
    }
}

/// Inserts `rows` with their events in one statement (committed on its own).
async fn insert_rows(pool: &PgPool, rows: &[&NewExecution]) -> Result<(), PortError> {
    let Some(first) = rows.first() else { return Ok(()) };
    let columns: Vec<&str> = std::iter::once("id")
        .chain(EXECUTION_WRITE_COLUMNS.iter().chain(EXECUTION_INSERT_ONLY_COLUMNS.iter()).copied())
        .chain(std::iter::once("revision"))
        .collect();
    let arrays =
        first.values.iter().map(|v| array_type(v).map(|t| format!("?::{t}"))).collect::<Option<Vec<_>>>();
    let arrays = arrays
        .ok_or_else(|| PortError::Other(anyhow::anyhow!("an execution column of an unexpected kind")))?;
    let sql = with_events(&format!(
        "INSERT INTO executions ({}) SELECT * FROM unnest({}) RETURNING 1",
        columns.join(", "),
        arrays.join(", ")
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
fn bind_column<'q>(
    query: QueryScalar<'q, sqlx::Postgres, i64, PgArguments>,
    rows: &[&NewExecution],
    column: usize,
) -> Result<QueryScalar<'q, sqlx::Postgres, i64, PgArguments>, PortError> {
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
