//! `ExecutionRepository`: executions with their owners, worker leases claimed by one atomic
//! statement, optimistic concurrency on `revision`.

use crate::error::{port_error, unique_as};
use crate::listing::Resource;
use crate::rows::{EXECUTION_COLUMNS, EXECUTION_WRITE_COLUMNS, ExecutionRow, execution_values};
use crate::sql::{Arg, Filter, bind_args, millis, placeholders};
use crate::store::SqliteStore;
use crate::write::append_events;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ids::ExecutionId;
use flow_domain::model::{Execution, ExecutionStatus};
use flow_domain::ports::ExecutionRepository;
use flow_domain::query::{ExecutionQuery, Page, Sort, SortField};
use sqlx::AssertSqlSafe;
use std::sync::LazyLock;

const EXECUTIONS: Resource = Resource {
    table: "executions",
    owners_table: "execution_owners",
    owner_fk: "execution_id",
    columns: EXECUTION_COLUMNS,
};

/// Newest first, ties by id (descending too).
const NEWEST_FIRST: Sort = Sort { field: SortField::CreatedAt, descending: true };

static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO executions (id, {}, revision) VALUES (?, {}, ?)",
        EXECUTION_WRITE_COLUMNS.join(", "),
        placeholders(EXECUTION_WRITE_COLUMNS.len())
    )
});

static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = EXECUTION_WRITE_COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
    format!(
        "UPDATE executions SET {}, revision = revision + 1 WHERE id = ? AND revision = ?",
        sets.join(", ")
    )
});

static GET_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?"));

/// One statement on the single writer connection, so two claims never both succeed.
static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE executions SET status = ?, lease_owner = ?, lease_until = ?, \
         started_at = COALESCE(started_at, ?), revision = revision + 1 \
         WHERE id = ? AND (status = ? OR (status = ? AND (lease_until IS NULL OR lease_until <= ?))) \
         RETURNING {EXECUTION_COLUMNS}"
    )
});

#[async_trait]
impl ExecutionRepository for SqliteStore {
    async fn insert(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
        let id = execution.id.to_string();
        let values = execution_values(execution)?;
        let mut tx = self.begin_write().await?;
        bind_args!(sqlx::query(AssertSqlSafe(INSERT_SQL.as_str())).bind(id.clone()), &values)
            .bind(execution.revision)
            .execute(&mut *tx)
            .await
            .map_err(unique_as("execution id"))?;
        EXECUTIONS.replace_owners(&mut tx, &id, &execution.owners).await?;
        append_events(&mut tx, events).await?;
        self.commit(tx, !events.is_empty()).await
    }

    async fn get(&self, id: ExecutionId) -> Result<Option<Execution>, PortError> {
        let row = sqlx::query_as::<_, ExecutionRow>(AssertSqlSafe(GET_SQL.as_str()))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
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
            filter.and("created_at >= ?", [Arg::Int(millis(from))]);
        }
        if let Some(to) = query.to {
            filter.and("created_at < ?", [Arg::Int(millis(to))]);
        }
        let page = EXECUTIONS.page::<ExecutionRow>(&self.reader, &filter, NEWEST_FIRST, query.page).await?;
        let items = page.items.into_iter().map(Execution::try_from).collect::<Result<_, _>>()?;
        Ok(Page { items, total: page.total })
    }

    async fn claim(
        &self,
        id: ExecutionId,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Execution>, PortError> {
        let row = sqlx::query_as::<_, ExecutionRow>(AssertSqlSafe(CLAIM_SQL.as_str()))
            .bind(ExecutionStatus::Running.as_str())
            .bind(worker.to_string())
            .bind(millis(lease_until))
            .bind(millis(now))
            .bind(id.to_string())
            .bind(ExecutionStatus::Queued.as_str())
            .bind(ExecutionStatus::Running.as_str())
            .bind(millis(now))
            .fetch_optional(&self.writer)
            .await
            .map_err(port_error)?;
        row.map(Execution::try_from).transpose()
    }

    async fn save(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
        let id = execution.id.to_string();
        let values = execution_values(execution)?;
        let mut tx = self.begin_write().await?;
        let updated = bind_args!(sqlx::query(AssertSqlSafe(UPDATE_SQL.as_str())), &values)
            .bind(id.clone())
            .bind(execution.revision)
            .execute(&mut *tx)
            .await
            .map_err(port_error)?;
        if updated.rows_affected() == 0 {
            return Err(EXECUTIONS.missing_or_conflict(&mut tx, &id).await);
        }
        EXECUTIONS.replace_owners(&mut tx, &id, &execution.owners).await?;
        append_events(&mut tx, events).await?;
        self.commit(tx, !events.is_empty()).await
    }

    async fn list_expired_leases(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Execution>, PortError> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE status = ? AND lease_until IS NOT NULL AND lease_until <= ? \
             ORDER BY lease_until, id LIMIT ?"
        );
        let rows = sqlx::query_as::<_, ExecutionRow>(AssertSqlSafe(sql))
            .bind(ExecutionStatus::Running.as_str())
            .bind(millis(now))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(port_error)?;
        rows.into_iter().map(Execution::try_from).collect()
    }

    // PLACEHOLDER (replaced by the SQLite work on issue 3)
    async fn insert_idempotent(
        &self,
        _execution: &Execution,
        _events: &[Event],
        _window_start: DateTime<Utc>,
    ) -> Result<Option<Execution>, PortError> {
        Err(PortError::Other(anyhow::anyhow!("PLACEHOLDER")))
    }

    // PLACEHOLDER
    async fn list_queued_before(&self, _before: DateTime<Utc>, _limit: u32) -> Result<Vec<Execution>, PortError> {
        Err(PortError::Other(anyhow::anyhow!("PLACEHOLDER")))
    }

    // PLACEHOLDER
    async fn usage(
        &self,
        _tenant: Option<flow_domain::ids::TenantId>,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
    ) -> Result<Vec<flow_domain::ports::StepUsage>, PortError> {
        Err(PortError::Other(anyhow::anyhow!("PLACEHOLDER")))
    }
}
