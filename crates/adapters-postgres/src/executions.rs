//! `ExecutionRepository`: executions with their owners, worker leases claimed by one atomic
//! statement, optimistic concurrency on `revision`, idempotent inserts keyed per flow. The
//! usage report lives in `usage`.

use crate::batch::NewExecution;
use crate::error::{IDEMPOTENCY_KEY, port_error, unique_as};
use crate::listing::Resource;
use crate::rows::{
    EXECUTION_COLUMNS, EXECUTION_INSERT_ONLY_COLUMNS, EXECUTION_WRITE_COLUMNS, ExecutionRow, decode_each,
    execution_insert_values, execution_values,
};
use crate::sql::{Arg, Filter, bind_args, millis, placeholders, q};
use crate::store::PostgresStore;
use crate::write::{Tx, bind_events, with_events};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::ids::{ExecutionId, TenantId};
use flow_domain::model::{Execution, ExecutionStatus};
use flow_domain::ports::{ExecutionRepository, InsertDurability, StepUsage};
use flow_domain::query::{ExecutionQuery, Page, Sort, SortField};
use std::sync::LazyLock;

pub(crate) const EXECUTIONS: Resource = Resource {
    table: "executions",
    key: "id",
    owners_table: "execution_owners",
    owner_fk: "execution_id",
    columns: EXECUTION_COLUMNS,
};

/// How many times `insert_idempotent` starts over after losing a race for its key.
const IDEMPOTENT_ATTEMPTS: usize = 5;

/// Newest first, ties by id (descending too).
const NEWEST_FIRST: Sort = Sort { field: SortField::CreatedAt, descending: true };

/// The insert with its events, one statement (owners follow by trigger, migrations 0003 and
/// 0004).
static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<&str> =
        EXECUTION_WRITE_COLUMNS.iter().chain(EXECUTION_INSERT_ONLY_COLUMNS.iter()).copied().collect();
    with_events(&format!(
        "INSERT INTO executions (id, {}, revision) VALUES (?, {}, ?) RETURNING 1",
        columns.join(", "),
        placeholders(columns.len())
    ))
});

/// The conditional update of one execution: its written columns, then its id and the revision
/// read, as placeholders; `returning` is what it answers for the row written.
pub(crate) fn update_statement(returning: &str) -> String {
    let sets: Vec<String> = EXECUTION_WRITE_COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
    format!(
        "UPDATE executions SET {}, revision = revision + 1 WHERE id = ? AND revision = ? RETURNING {returning}",
        sets.join(", ")
    )
}

/// The conditional update with its events, one statement; answers 1 when the row was written.
static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| with_events(&update_statement("1")));

static GET_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?"));

static KEY_HOLDER_SQL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE flow_id = ? AND idempotency_key = ?")
});

/// Inserts `execution` with its owners (by trigger) and appends `events`, inside `tx`.
async fn insert_in(tx: &mut Tx, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
    let values = execution_insert_values(execution)?;
    let query =
        bind_args!(sqlx::query_scalar::<_, i64>(q(&INSERT_SQL)).bind(execution.id.to_string()), &values)
            .bind(execution.revision);
    bind_events(query, events)?.fetch_one(&mut **tx).await.map_err(unique_as("execution id"))?;
    Ok(())
}

/// The execution of `execution`'s flow holding its idempotency key, if any (read in `tx`).
async fn key_holder(tx: &mut Tx, execution: &Execution) -> Result<Option<Execution>, PortError> {
    let Some(key) = &execution.idempotency_key else { return Ok(None) };
    let row = sqlx::query_as::<_, ExecutionRow>(q(&KEY_HOLDER_SQL))
        .bind(execution.flow_id.to_string())
        .bind(key.clone())
        .fetch_optional(&mut **tx)
        .await
        .map_err(port_error)?;
    row.map(Execution::try_from).transpose()
}

/// One conditional statement: a concurrent claim of the same row waits for this one and then
/// re-checks the condition on the updated row, so two claims never both succeed. It counts the
/// run it hands out (`attempts`), refusing once the limit is reached.
static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE executions SET status = ?, lease_owner = ?, lease_until = ?, \
         started_at = COALESCE(started_at, ?), attempts = attempts + 1, revision = revision + 1 \
         WHERE id = ? AND attempts < ? \
         AND (status = ? OR (status = ? AND (lease_until IS NULL OR lease_until <= ?))) \
         RETURNING {EXECUTION_COLUMNS}"
    )
});

/// Running executions leased by another incarnation of a process (the owner's prefix), in
/// the order of their lease.
static ORPHANED_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions \
         WHERE status = ? AND substr(lease_owner, 1, length(?)) = ? AND lease_owner <> ? \
         ORDER BY lease_until, id LIMIT ?"
    )
});

impl PostgresStore {
    /// The executions of raw `rows`, each read alone (see `rows::decode_each`).
    fn decode_executions(&self, rows: Vec<sqlx::postgres::PgRow>) -> Vec<Execution> {
        decode_each(rows, "executions", "id", &self.unreadable, |row: ExecutionRow| Execution::try_from(row))
    }
}

#[async_trait]
impl ExecutionRepository for PostgresStore {
    async fn insert(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
        // Gathered with concurrent inserts into one statement (see `batch`).
        let mut values = vec![Arg::Text(execution.id.to_string())];
        values.extend(execution_insert_values(execution)?);
        values.push(Arg::Int(execution.revision));
        let batcher = match InsertDurability::of(execution, events) {
            InsertDurability::Machine => &self.inserts,
            InsertDurability::Process => &self.claims,
        };
        batcher.write(NewExecution { values, events: events.to_vec() }).await?;
        self.committed(!events.is_empty());
        Ok(())
    }

    async fn get(&self, id: ExecutionId) -> Result<Option<Execution>, PortError> {
        let row = sqlx::query_as::<_, ExecutionRow>(q(&GET_SQL))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(port_error)?;
        row.map(Execution::try_from).transpose()
    }

    async fn list(&self, query: &ExecutionQuery) -> Result<Page<Execution>, PortError> {
        let mut filter = Filter::default();
        EXECUTIONS.visible(&mut filter, &query.visibility);
        if let Some(flow_id) = query.flow_id {
            filter.and("flow_id = ?", [Arg::Text(flow_id.to_string())]);
        }
        if let Some(status) = query.status {
            filter.and("status = ?", [Arg::Text(status.as_str().into())]);
        }
        if let Some(from) = query.from {
            filter.and("created_at >= ?", [Arg::Time(millis(from))]);
        }
        if let Some(to) = query.to {
            filter.and("created_at < ?", [Arg::Time(millis(to))]);
        }
        if let Some(step) = &query.step {
            // Step ids are the keys of one JSON object: at most one matches per execution.
            filter.and("jsonb_exists(step_summary, ?)", [Arg::Text(step.clone())]);
        }
        let page = EXECUTIONS.page(&self.pool, &filter, NEWEST_FIRST, query.page).await?;
        Ok(Page { items: self.decode_executions(page.items), total: page.total })
    }

    async fn claim(
        &self,
        id: ExecutionId,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: AttemptLimit,
    ) -> Result<Option<Execution>, PortError> {
        let row = sqlx::query_as::<_, ExecutionRow>(q(&CLAIM_SQL))
            .bind(ExecutionStatus::Running.as_str())
            .bind(worker.to_string())
            .bind(millis(lease_until))
            .bind(millis(now))
            .bind(id.to_string())
            .bind(i64::from(limit.get()))
            .bind(ExecutionStatus::Queued.as_str())
            .bind(ExecutionStatus::Running.as_str())
            .bind(millis(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(port_error)?;
        row.map(Execution::try_from).transpose()
    }

    async fn save(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
        let id = execution.id.to_string();
        if events.is_empty() {
            // Gathered with concurrent saves into one statement (see `batch`).
            let mut values = vec![Arg::Text(id)];
            values.extend(execution_values(execution)?);
            values.push(Arg::Int(execution.revision));
            return self.saves.write(NewExecution { values, events: Vec::new() }).await;
        }
        let values = execution_values(execution)?;
        // One statement with its events, committed on its own: one round trip.
        let query = bind_args!(sqlx::query_scalar::<_, i64>(q(&UPDATE_SQL)), &values)
            .bind(id.clone())
            .bind(execution.revision);
        let written = bind_events(query, events)?.fetch_one(&self.pool).await.map_err(port_error)?;
        if written == 0 {
            return Err(EXECUTIONS.missing_or_conflict(&self.pool, &id).await);
        }
        self.committed(!events.is_empty());
        Ok(())
    }

    async fn list_expired_leases(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Execution>, PortError> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE status = ? AND lease_until IS NOT NULL AND lease_until <= ? \
             ORDER BY lease_until, id LIMIT ?"
        );
        let rows = sqlx::query(q(&sql))
            .bind(ExecutionStatus::Running.as_str())
            .bind(millis(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(self.decode_executions(rows))
    }

    async fn list_orphaned_leases(
        &self,
        owner_prefix: &str,
        current_owner: &str,
        limit: u32,
    ) -> Result<Vec<Execution>, PortError> {
        let rows = sqlx::query(q(&ORPHANED_SQL))
            .bind(ExecutionStatus::Running.as_str())
            .bind(owner_prefix.to_string())
            .bind(owner_prefix.to_string())
            .bind(current_owner.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(self.decode_executions(rows))
    }

    async fn insert_idempotent(
        &self,
        execution: &Execution,
        events: &[Event],
        window_start: DateTime<Utc>,
    ) -> Result<Option<Execution>, PortError> {
        // The unique index on (flow_id, idempotency_key) decides races: of two calls with one
        // key, the second's insert waits for the first to commit, fails, and the second call
        // starts over, finding the first's execution.
        for _ in 0..IDEMPOTENT_ATTEMPTS {
            let mut tx = self.begin_write().await?;
            if let Some(holder) = key_holder(&mut tx, execution).await? {
                if holder.created_at >= window_start {
                    tx.rollback().await.map_err(port_error)?;
                    return Ok(Some(holder));
                }
                // Outside the window: the old execution gives the key up (its revision is kept,
                // so a worker running it is not disturbed).
                sqlx::query(q("UPDATE executions SET idempotency_key = NULL WHERE id = ?"))
                    .bind(holder.id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(port_error)?;
            }
            match insert_in(&mut tx, execution, events).await {
                Ok(()) => {
                    self.commit(tx, !events.is_empty()).await?;
                    return Ok(None);
                }
                Err(PortError::Duplicate(IDEMPOTENCY_KEY)) => drop(tx),
                Err(err) => return Err(err),
            }
        }
        Err(PortError::Conflict)
    }

    async fn list_queued_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Execution>, PortError> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE status = ? AND created_at < ? \
             ORDER BY created_at, id LIMIT ?"
        );
        let rows = sqlx::query(q(&sql))
            .bind(ExecutionStatus::Queued.as_str())
            .bind(millis(before))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(self.decode_executions(rows))
    }

    async fn usage(
        &self,
        tenant: Option<TenantId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StepUsage>, PortError> {
        crate::usage::step_usage(&self.pool, tenant, from, to).await
    }
}
