//! Execution retention: forgetting executions that ended long ago, so the store stays bounded
//! however long the service runs. A port of its own (not a method of
//! [`ExecutionRepository`](super::ExecutionRepository)) because only the retention pass needs
//! it and it is the one operation that deletes executions.

use crate::error::PortError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Deletes ended executions in bounded batches.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ExecutionRetention: Send + Sync {
    /// Deletes at most `limit` executions that ended (`succeeded`, `failed` or `cancelled`)
    /// strictly before `before`, oldest `finishedAt` first, in every tenant, and returns how
    /// many it deleted. Everything stored with a deleted execution (its owners, its steps and
    /// their sample output) goes with it, in the same transaction. Executions that are
    /// `queued` or `running`, or have no `finishedAt`, are never deleted, whatever their age.
    /// A count below `limit` means nothing more was eligible when the batch ran.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached; `Other` otherwise (nothing is deleted).
    async fn purge_ended_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, PortError>;
}
