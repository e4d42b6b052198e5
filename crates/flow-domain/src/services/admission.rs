//! Admission control for queued executions: while more executions wait to run than the
//! configured limit, calls that would queue one more (asynchronous webhook calls, and
//! synchronous ones the worker must run) are refused with "overloaded, retry after a second"
//! instead of being accepted into a backlog that only grows. Nothing accepted is ever dropped:
//! the refusal comes before anything is stored.
//!
//! The count of queued executions is a sample: a background task of each API process calls
//! [`ExecutionBacklog::refresh`] a few times a second, so every process sees the backlog of
//! every worker (it is counted in storage), and a call costs no storage round trip for it.

use crate::error::{PortError, ServiceError, ServiceResult};
use crate::model::ExecutionStatus;
use crate::ports::ExecutionRepository;
use crate::query::{ExecutionQuery, PageRequest, Visibility};
use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds a refused caller is asked to wait.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The last sampled number of queued executions and the limit they are checked against.
#[derive(Debug)]
pub struct ExecutionBacklog {
    /// Most queued executions before calls are refused; `0`: no limit.
    limit: u64,
    queued: AtomicU64,
}

impl ExecutionBacklog {
    /// A backlog refusing new queued executions while more than `limit` wait (`0`: never).
    pub fn new(limit: u64) -> Self {
        Self { limit, queued: AtomicU64::new(0) }
    }

    /// The last sampled number of queued executions.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Records a sample.
    pub fn observe(&self, queued: u64) {
        self.queued.store(queued, Ordering::Relaxed);
    }

    /// Counts the queued executions in `executions` and records the count.
    ///
    /// # Errors
    /// The store's; the last sample is kept then.
    pub async fn refresh(&self, executions: &dyn ExecutionRepository) -> Result<u64, PortError> {
        let query = ExecutionQuery {
            visibility: Visibility::All,
            flow_id: None,
            status: Some(ExecutionStatus::Queued),
            from: None,
            to: None,
            step: None,
            page: PageRequest { size: 1, number: 1 },
        };
        let queued = executions.list(&query).await?.total;
        self.observe(queued);
        Ok(queued)
    }

    /// Whether one more execution may be queued now.
    ///
    /// # Errors
    /// `Overloaded` while the last sample is over the limit.
    pub fn admit(&self) -> ServiceResult<()> {
        if self.limit > 0 && self.queued() >= self.limit {
            return Err(ServiceError::Overloaded { retry_after_secs: RETRY_AFTER_SECS });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockExecutionRepository;
    use crate::query::Page;
    use futures::executor::block_on;

    #[test]
    fn refuses_while_the_sampled_backlog_is_at_the_limit() {
        let backlog = ExecutionBacklog::new(100);
        assert!(backlog.admit().is_ok());
        backlog.observe(100);
        assert!(matches!(backlog.admit(), Err(ServiceError::Overloaded { retry_after_secs: 1 })));
        backlog.observe(99);
        assert!(backlog.admit().is_ok());
    }

    #[test]
    fn no_limit_never_refuses() {
        let backlog = ExecutionBacklog::new(0);
        backlog.observe(u64::MAX);
        assert!(backlog.admit().is_ok());
    }

    #[test]
    fn refresh_counts_queued_executions_of_every_tenant() {
        let mut store = MockExecutionRepository::new();
        store
            .expect_list()
            .withf(|q| {
                q.visibility == Visibility::All
                    && q.status == Some(ExecutionStatus::Queued)
                    && q.flow_id.is_none()
            })
            .times(1)
            .returning(|_| Ok(Page { items: Vec::new(), total: 7 }));
        let backlog = ExecutionBacklog::new(5);
        assert_eq!(block_on(backlog.refresh(&store)).unwrap(), 7);
        assert_eq!(backlog.queued(), 7);
        assert!(backlog.admit().is_err());
    }
}
