//! `ExecutionRetention`: deletes executions that ended before a cutoff, oldest first, one
//! bounded batch per transaction. Their owner rows go by a statement trigger (migration 0006);
//! their steps live in the row's `doc`. Rows another purge (another worker) is deleting are
//! skipped, not waited for. The partial index `executions_by_finish` (migration 0002) finds
//! the oldest ended rows without scanning the table.

use crate::error::port_error;
use crate::sql::{millis, q};
use crate::store::PostgresStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::model::ExecutionStatus;
use flow_domain::ports::ExecutionRetention;

/// Ended statuses only: a queued or running execution is never deleted, whatever its age.
const PURGE_SQL: &str = "DELETE FROM executions WHERE id IN ( \
       SELECT id FROM executions \
       WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN (?, ?, ?) \
       ORDER BY finished_at LIMIT ? FOR UPDATE SKIP LOCKED)";

#[async_trait]
impl ExecutionRetention for PostgresStore {
    async fn purge_ended_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, PortError> {
        // One statement: its own transaction. Counts the execution rows only.
        let done = sqlx::query(q(PURGE_SQL))
            .bind(millis(before))
            .bind(ExecutionStatus::Succeeded.as_str())
            .bind(ExecutionStatus::Failed.as_str())
            .bind(ExecutionStatus::Cancelled.as_str())
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(done.rows_affected())
    }
}
