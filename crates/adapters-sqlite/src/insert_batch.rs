//! Plain execution inserts (no idempotency key) gathered per group-commit batch (see
//! `gather`): every row of a batch in multi-row statements (`INSERT ... VALUES (...), (...)`
//! for the executions, then for their outbox events), inside a savepoint of the job's own.
//!
//! Each row still fails alone: when a multi-row statement fails (a duplicate id, say), the
//! savepoint is rolled back and the rows are inserted one by one, each in that savepoint, so
//! every caller gets its own row's result. A lone row without events is one statement.

use crate::error::{port_error, unique_as};
use crate::gather::{CHUNK_SIZES, Gathered, GatheredRow, ONE_ROW, chunks};
use crate::rows::{
    EXECUTION_COLUMNS, EXECUTION_INSERT_ONLY_COLUMNS, EXECUTION_WRITE_COLUMNS, ExecutionRow,
    execution_insert_values,
};
use crate::sql::{bind_args, millis, placeholders};
use crate::write::{Tx, append_events, execute};
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

/// `INSERT INTO executions` of as many rows as each size of [`CHUNK_SIZES`].
static EXECUTION_INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let columns = execution_insert_columns();
    let row = format!("(?, {}, ?)", placeholders(columns.len()));
    CHUNK_SIZES
        .iter()
        .map(|&rows| {
            format!(
                "INSERT INTO executions (id, {}, revision) VALUES {}",
                columns.join(", "),
                vec![row.as_str(); rows].join(", ")
            )
        })
        .collect()
});

/// `INSERT INTO outbox` of as many events as each size of [`CHUNK_SIZES`].
static OUTBOX_INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    CHUNK_SIZES
        .iter()
        .map(|&rows| {
            format!(
                "INSERT INTO outbox (event_id, name, key, created_at, source, payload) VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?)"; rows].join(", ")
            )
        })
        .collect()
});

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

/// Binds the values of `events`, one outbox row after the other.
fn bind_events<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    events: &[&Event],
) -> Result<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>, PortError> {
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

impl GatheredRow for NewRow {
    fn run_all<'c>(gathered: &'c mut Gathered<Self>, tx: &'c mut Tx) -> BoxFuture<'c, bool> {
        Box::pin(insert_rows(gathered, tx))
    }

    fn has_events(&self) -> bool {
        !self.events.is_empty()
    }
}

/// Every row (and its events) in multi-row statements.
async fn insert_all(rows: &[NewRow], tx: &mut Tx) -> Result<(), PortError> {
    for (size, chunk) in chunks(rows) {
        bind_rows!(sqlx::query(AssertSqlSafe(EXECUTION_INSERTS[size].as_str())), chunk.iter())
            .execute(&mut *tx)
            .await
            .map_err(unique_as("execution id"))?;
    }
    let events: Vec<&Event> = rows.iter().flat_map(|r| r.events.iter()).collect();
    for (size, chunk) in chunks(&events) {
        bind_events(sqlx::query(AssertSqlSafe(OUTBOX_INSERTS[size].as_str())), chunk)?
            .execute(&mut *tx)
            .await
            .map_err(port_error)?;
    }
    Ok(())
}

/// Inserts the rows of `gathered` (see the module documentation).
async fn insert_rows(gathered: &mut Gathered<NewRow>, tx: &mut Tx) -> bool {
    if let [only] = gathered.rows.as_slice()
        && only.events.is_empty()
    {
        // One statement: SQLite undoes it alone when it fails.
        let result = only.insert_in(tx).await;
        let ok = result.is_ok();
        gathered.results[0] = Some(result);
        return ok;
    }
    if let Err(e) = execute(tx, "SAVEPOINT rows").await {
        gathered.fail_rest(&e);
        return false;
    }
    if insert_all(&gathered.rows, tx).await.is_ok() {
        return match execute(tx, "RELEASE rows").await {
            Ok(()) => {
                gathered.results.iter_mut().for_each(|r| *r = Some(Ok(())));
                true
            }
            Err(e) => {
                gathered.fail_rest(&e);
                false
            }
        };
    }
    // One row at a time, so that each caller hears its own row's fate.
    if let Err(e) = execute(tx, "ROLLBACK TO rows").await {
        gathered.fail_rest(&e);
        return false;
    }
    for i in 0..gathered.rows.len() {
        let result = gathered.rows[i].insert_in(tx).await;
        let closing = if result.is_ok() { "RELEASE rows; SAVEPOINT rows" } else { "ROLLBACK TO rows" };
        gathered.results[i] = Some(result);
        if let Err(e) = execute(tx, closing).await {
            // The transaction is gone: the batch fails, whatever was recorded.
            gathered.fail_rest(&e);
            return false;
        }
    }
    execute(tx, "RELEASE rows").await.is_ok()
}
