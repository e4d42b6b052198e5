//! `ExecutionRepository`: executions with their owners, worker leases claimed by one atomic
//! statement, optimistic concurrency on `revision`, idempotent inserts keyed per flow. Every
//! write is one group-commit job (see `write`). The usage report lives in `usage`.

use crate::error::port_error;
use crate::insert_batch::NewRow;
use crate::listing::Resource;
use crate::rows::{EXECUTION_COLUMNS, EXECUTION_WRITE_COLUMNS, ExecutionRow, decode_each, execution_values};
use crate::save_batch::SaveRow;
use crate::sql::{Arg, Filter, bind_args, millis};
use crate::store::SqliteStore;
use crate::write::append_events;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::ids::{ExecutionId, TenantId};
use flow_domain::model::{Execution, ExecutionStatus};
use flow_domain::ports::{ExecutionRepository, StepUsage};
use flow_domain::query::{ExecutionQuery, Page, Sort, SortField};
use sqlx::AssertSqlSafe;
use std::sync::LazyLock;

pub(crate) const EXECUTIONS: Resource = Resource {
    table: "executions",
    key: "id",
    owners_table: "execution_owners",
    owner_fk: "execution_id",
    columns: EXECUTION_COLUMNS,
};

/// Newest first, ties by id (descending too).
const NEWEST_FIRST: Sort = Sort { field: SortField::CreatedAt, descending: true };

static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = EXECUTION_WRITE_COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
    format!(
        "UPDATE executions SET {}, revision = revision + 1 WHERE id = ? AND revision = ?",
        sets.join(", ")
    )
});

static GET_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?"));

/// One conditional statement, run by the single writer, so two claims never both succeed. It
/// counts the run it hands out (`attempts`), refusing once the limit is reached.
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

impl SqliteStore {
    /// The executions of raw `rows`, each read alone (see `rows::decode_each`).
    fn decode_executions(&self, rows: Vec<sqlx::sqlite::SqliteRow>) -> Vec<Execution> {
        decode_each(rows, "executions", "id", &self.unreadable, |row: ExecutionRow| Execution::try_from(row))
    }
}

#[async_trait]
impl ExecutionRepository for SqliteStore {
    async fn insert(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
        let row = NewRow::of(execution, events)?;
        if row.is_plain() {
            // Gathered with the other inserts of its batch into multi-row statements.
            return self.insert_row(row).await;
        }
        // One statement (owners follow by trigger) and the events.
        self.write_with_events(!events.is_empty(), move |tx| Box::pin(async move { row.insert_in(tx).await }))
            .await
    }

    async fn get(&self, id: ExecutionId) -> Result<Option<Execution>, PortError> {
        let row = sqlx::query_as::<_, ExecutionRow>(AssertSqlSafe(GET_SQL.as_str()))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(port_error)?;
        // An unreadable document or owners give the execution's readable remains.
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
            filter.and("created_at >= ?", [Arg::Int(millis(from))]);
        }
        if let Some(to) = query.to {
            filter.and("created_at < ?", [Arg::Int(millis(to))]);
        }
        if let Some(step) = &query.step {
            // Step ids are the keys of one JSON object: at most one matches per execution.
            filter.and(
                "EXISTS (SELECT 1 FROM json_each(executions.doc, '$.steps') s WHERE s.key = ?)",
                [Arg::Text(step.clone())],
            );
        }
        let page = EXECUTIONS.page(&self.reader, &filter, NEWEST_FIRST, query.page).await?;
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
        let query = sqlx::query_as::<_, ExecutionRow>(AssertSqlSafe(CLAIM_SQL.as_str()))
            .bind(ExecutionStatus::Running.as_str())
            .bind(worker.to_string())
            .bind(millis(lease_until))
            .bind(millis(now))
            .bind(id.to_string())
            .bind(i64::from(limit.get()))
            .bind(ExecutionStatus::Queued.as_str())
            .bind(ExecutionStatus::Running.as_str())
            .bind(millis(now));
        // One conditional statement.
        let row = self
            .write_one(false, move |tx| {
                Box::pin(async move { query.fetch_optional(&mut *tx).await.map_err(port_error) })
            })
            .await?;
        row.map(Execution::try_from).transpose()
    }

    async fn save(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
        if events.is_empty() {
            // Gathered with the other saves of its batch into multi-row statements.
            return self.save_row(SaveRow::of(execution)?).await;
        }
        let id = execution.id.to_string();
        let values = execution_values(execution)?;
        let (revision, events) = (execution.revision, events.to_vec());
        // One statement (an update that matched no row changed nothing) and the events.
        self.write(true, move |tx| {
            Box::pin(async move {
                let updated = bind_args!(sqlx::query(AssertSqlSafe(UPDATE_SQL.as_str())), &values)
                    .bind(id.clone())
                    .bind(revision)
                    .execute(&mut *tx)
                    .await
                    .map_err(port_error)?;
                if updated.rows_affected() == 0 {
                    return Err(EXECUTIONS.missing_or_conflict(tx, &id).await);
                }
                // `execution_owners` follows the `owners` column by trigger (migration 0005).
                append_events(tx, &events).await
            })
        })
        .await
    }

    async fn list_expired_leases(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Execution>, PortError> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE status = ? AND lease_until IS NOT NULL AND lease_until <= ? \
             ORDER BY lease_until, id LIMIT ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(ExecutionStatus::Running.as_str())
            .bind(millis(now))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
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
        let rows = sqlx::query(AssertSqlSafe(ORPHANED_SQL.as_str()))
            .bind(ExecutionStatus::Running.as_str())
            .bind(owner_prefix.to_string())
            .bind(owner_prefix.to_string())
            .bind(current_owner.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
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
        // One job of the single writer: the lookup and the insert are never interleaved with
        // another call's, so of two calls with one key exactly one inserts (a later job of the
        // same batch sees the earlier one's insert).
        let row = NewRow::of(execution, events)?;
        self.write(!events.is_empty(), move |tx| {
            Box::pin(async move {
                if let Some(holder) = row.key_holder(tx).await? {
                    if holder.created_at >= window_start {
                        return Ok(Some(holder));
                    }
                    // Outside the window: the old execution gives the key up (its revision is
                    // kept, so a worker running it is not disturbed).
                    sqlx::query("UPDATE executions SET idempotency_key = NULL WHERE id = ?")
                        .bind(holder.id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(port_error)?;
                }
                row.insert_in(tx).await?;
                Ok(None)
            })
        })
        .await
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
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(ExecutionStatus::Queued.as_str())
            .bind(millis(before))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
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
        crate::usage::step_usage(&self.reader, tenant, from, to).await
    }
}
