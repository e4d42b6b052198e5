//! Plain execution inserts (no idempotency key) gathered per group-commit batch (see
//! `gather`): the rows of a batch in multi-row statements, up to 64 rows per statement
//! (`INSERT ... SELECT * FROM (VALUES (...), (...))` for the executions, then for their outbox
//! events).
//!
//! Rows without events need no savepoint: one statement is atomic, and rows are independent.
//! Rows with events are inserted with them in a savepoint of the job's own, whose statements
//! ride along with the inserts (`SAVEPOINT rows; INSERT ...`, then `INSERT ...; RELEASE
//! rows`): up to 64 rows with their events cost two round trips to the connection's thread.
//!
//! Each row still fails alone: when a multi-row statement fails (a duplicate id, say), its
//! chunk changed nothing (its savepoint is rolled back), and its rows are inserted one by one,
//! each in a savepoint, so every caller gets its own row's result.

use crate::error::{port_error, unique_as};
use crate::gather::{Gathered, GatheredRow, ONE_ROW, STATEMENT_ROWS, chunks, insert_sql};
use crate::rows::{
    EXECUTION_COLUMNS, EXECUTION_INSERT_ONLY_COLUMNS, EXECUTION_WRITE_COLUMNS, ExecutionRow,
    execution_insert_values,
};
use crate::sql::{bind_args, placeholders};
use crate::write::{
    OUTBOX_INSERTS, Tx, append_events, bind_events, check_transaction, execute, outbox_inserts,
};
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::model::Execution;
use futures::future::BoxFuture;
use sqlx::AssertSqlSafe;
use std::sync::LazyLock;

/// The columns of an execution insert, after `id` and before `revision`.
fn execution_insert_columns() -> Vec<&'static str> {
    EXECUTION_WRITE_COLUMNS.iter().chain(EXECUTION_INSERT_ONLY_COLUMNS.iter()).copied().collect()
}

/// The execution inserts of each size of [`STATEMENT_ROWS`], each with `before` and `after`
/// around it.
fn execution_inserts(before: &str, after: &str) -> Vec<String> {
    let columns = execution_insert_columns();
    let into = format!("executions (id, {}, revision)", columns.join(", "));
    let row = format!("(?, {}, ?)", placeholders(columns.len()));
    STATEMENT_ROWS.iter().map(|&rows| format!("{before}{}{after}", insert_sql(&into, &row, rows))).collect()
}

/// Execution inserts, on their own.
static EXECUTION_INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| execution_inserts("", ""));

/// Execution inserts opening the chunk's savepoint.
static EXECUTION_INSERTS_IN_SAVEPOINT: LazyLock<Vec<String>> =
    LazyLock::new(|| execution_inserts("SAVEPOINT rows; ", ""));

/// The outbox insert of a chunk's last events, releasing its savepoint.
static OUTBOX_INSERTS_RELEASING: LazyLock<Vec<String>> = LazyLock::new(|| outbox_inserts("; RELEASE rows"));

static KEY_HOLDER_SQL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE flow_id = ? AND idempotency_key = ?")
});

/// Binds the values of `rows`, one execution row after the other.
macro_rules! bind_rows {
    ($query:expr, $rows:expr) => {{
        let mut query = $query;
        for row in $rows {
            query = bind_args!(query.bind(row.id.clone()), &row.values).bind(row.revision);
        }
        query
    }};
}

/// An execution ready to insert: its row values are serialized by the caller, so the single
/// writer only binds them.
pub(crate) struct NewRow {
    id: String,
    flow_id: String,
    idempotency_key: Option<String>,
    values: Vec<crate::sql::Arg>,
    revision: i64,
    events: Vec<Event>,
}

impl NewRow {
    /// The row of `execution`, to insert with `events`.
    pub(crate) fn of(execution: &Execution, events: &[Event]) -> Result<Self, PortError> {
        Ok(Self {
            id: execution.id.to_string(),
            flow_id: execution.flow_id.to_string(),
            idempotency_key: execution.idempotency_key.clone(),
            values: execution_insert_values(execution)?,
            revision: execution.revision,
            events: events.to_vec(),
        })
    }

    /// Whether it carries no idempotency key (such rows are gathered per batch).
    pub(crate) fn is_plain(&self) -> bool {
        self.idempotency_key.is_none()
    }

    /// Inserts the row with its owners and appends the events, inside `tx`.
    pub(crate) async fn insert_in(&self, tx: &mut Tx) -> Result<(), PortError> {
        bind_rows!(sqlx::query(AssertSqlSafe(EXECUTION_INSERTS[ONE_ROW].as_str())), [self])
            .execute(&mut *tx)
            .await
            .map_err(unique_as("execution id"))?;
        // `execution_owners` follows the `owners` column by trigger (migration 0005).
        append_events(tx, &self.events).await
    }

    /// The execution of the same flow holding this row's idempotency key, if any (read in `tx`).
    pub(crate) async fn key_holder(&self, tx: &mut Tx) -> Result<Option<Execution>, PortError> {
        let Some(key) = &self.idempotency_key else { return Ok(None) };
        let row = sqlx::query_as::<_, ExecutionRow>(AssertSqlSafe(KEY_HOLDER_SQL.as_str()))
            .bind(self.flow_id.clone())
            .bind(key.clone())
            .fetch_optional(&mut *tx)
            .await
            .map_err(port_error)?;
        row.map(Execution::try_from).transpose()
    }
}

impl GatheredRow for NewRow {
    fn run_all<'c>(gathered: &'c mut Gathered<Self>, tx: &'c mut Tx) -> BoxFuture<'c, bool> {
        Box::pin(insert_rows(gathered, tx))
    }

    fn has_events(&self) -> bool {
        !self.events.is_empty()
    }
}

/// How a chunk's insert failed.
enum ChunkFailure {
    /// The chunk changed nothing and the transaction goes on (a duplicate id, say).
    Refused,
    /// The transaction may be gone: nothing more can run in it.
    Broken(PortError),
}

/// Inserts `rows` (at most the largest of [`STATEMENT_ROWS`]; `size` indexes the smallest
/// statement that holds them) and their events, all or nothing.
async fn insert_chunk(rows: &[NewRow], size: usize, tx: &mut Tx) -> Result<(), ChunkFailure> {
    let events: Vec<&Event> = rows.iter().flat_map(|r| r.events.iter()).collect();
    if events.is_empty() {
        return match bind_rows!(sqlx::query(AssertSqlSafe(EXECUTION_INSERTS[size].as_str())), rows.iter())
            .execute(&mut *tx)
            .await
        {
            Ok(_) => Ok(()),
            // A failed statement changed nothing; some errors end the transaction too.
            Err(_) => check_transaction(tx)
                .await
                .map_or_else(|e| Err(ChunkFailure::Broken(e)), |()| Err(ChunkFailure::Refused)),
        };
    }
    let inserted = async {
        bind_rows!(sqlx::query(AssertSqlSafe(EXECUTION_INSERTS_IN_SAVEPOINT[size].as_str())), rows.iter())
            .execute(&mut *tx)
            .await
            .map_err(port_error)?;
        let event_chunks: Vec<_> = chunks(&events).collect();
        let last = event_chunks.len() - 1;
        for (i, (size, chunk)) in event_chunks.into_iter().enumerate() {
            let sql = if i == last { &OUTBOX_INSERTS_RELEASING[size] } else { &OUTBOX_INSERTS[size] };
            bind_events(sqlx::query(AssertSqlSafe(sql.as_str())), chunk)?
                .execute(&mut *tx)
                .await
                .map_err(port_error)?;
        }
        Ok::<(), PortError>(())
    }
    .await;
    match inserted {
        Ok(()) => Ok(()),
        Err(_) => match execute(tx, "ROLLBACK TO rows; RELEASE rows").await {
            Ok(()) => Err(ChunkFailure::Refused),
            Err(e) => Err(ChunkFailure::Broken(e)),
        },
    }
}

/// Inserts the rows of `gathered` (see the module documentation). `false` only when the
/// transaction may be gone.
async fn insert_rows(gathered: &mut Gathered<NewRow>, tx: &mut Tx) -> bool {
    let mut start = 0;
    let sized: Vec<(usize, usize)> =
        chunks(&gathered.rows).map(|(size, chunk)| (size, chunk.len())).collect();
    for (size, len) in sized {
        let range = start..start + len;
        start += len;
        match insert_chunk(&gathered.rows[range.clone()], size, tx).await {
            Ok(()) => gathered.results[range].iter_mut().for_each(|r| *r = Some(Ok(()))),
            Err(ChunkFailure::Refused) => {
                if let Err(e) = insert_one_by_one(gathered, range, tx).await {
                    gathered.fail_rest(&e);
                    return false;
                }
            }
            Err(ChunkFailure::Broken(e)) => {
                gathered.fail_rest(&e);
                return false;
            }
        }
    }
    true
}

/// Inserts the rows `range` of `gathered` one at a time, each in a savepoint, so that each
/// caller hears its own row's fate. An error when the transaction may be gone.
async fn insert_one_by_one(
    gathered: &mut Gathered<NewRow>,
    range: std::ops::Range<usize>,
    tx: &mut Tx,
) -> Result<(), PortError> {
    for i in range {
        execute(tx, "SAVEPOINT rows").await?;
        let result = gathered.rows[i].insert_in(tx).await;
        let closing = if result.is_ok() { "RELEASE rows" } else { "ROLLBACK TO rows; RELEASE rows" };
        gathered.results[i] = Some(result);
        execute(tx, closing).await?;
    }
    Ok(())
}
