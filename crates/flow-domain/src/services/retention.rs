//! Execution retention: one purge pass deletes the executions that ended longer ago than the
//! retention period, in bounded batches, so the store stays bounded while the service runs.
//! The engine roles run a pass periodically; the period and the retention come from
//! configuration.

use crate::error::ServiceResult;
use crate::ports::ExecutionRetention;
use crate::time::Clock;
use std::sync::Arc;

/// How much to keep and how much to delete at once.
#[derive(Debug, Clone, Copy)]
pub struct RetentionConfig {
    /// How long an ended execution is kept after its `finishedAt`.
    pub keep: chrono::Duration,
    /// Executions deleted by one batch (one transaction).
    pub batch: u32,
    /// Batches one pass runs at most; the next pass goes on where this one stopped.
    pub max_batches: u32,
}

impl RetentionConfig {
    /// Keeps ended executions for `keep`; deletes up to 1,000 per batch and 100 batches per pass.
    pub fn keeping(keep: chrono::Duration) -> Self {
        Self { keep, batch: 1_000, max_batches: 100 }
    }
}

/// Deletes the executions that ended before now minus the retention period.
pub struct ExecutionPurge {
    store: Arc<dyn ExecutionRetention>,
    clock: Arc<dyn Clock>,
    config: RetentionConfig,
}

impl ExecutionPurge {
    /// A purge over `store`.
    pub fn new(store: Arc<dyn ExecutionRetention>, clock: Arc<dyn Clock>, config: RetentionConfig) -> Self {
        Self { store, clock, config }
    }

    /// The retention settings.
    pub fn config(&self) -> RetentionConfig {
        self.config
    }

    /// One pass: deletes batches of executions ended before `now - keep` until a batch comes
    /// back short (nothing more is eligible) or `max_batches` ran. Returns how many executions
    /// were deleted. A retention so long that the cutoff precedes every representable instant
    /// deletes nothing.
    ///
    /// # Errors
    /// Storage failures (batches already deleted stay deleted).
    pub async fn purge_once(&self) -> ServiceResult<u64> {
        let Some(cutoff) = self.clock.now().checked_sub_signed(self.config.keep) else {
            return Ok(0);
        };
        let batch = self.config.batch.max(1);
        let mut deleted = 0;
        for _ in 0..self.config.max_batches {
            let n = self.store.purge_ended_before(cutoff, batch).await?;
            deleted += n;
            if n < u64::from(batch) {
                break;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{PortError, ServiceError};
    use crate::time::ManualClock;
    use async_trait::async_trait;
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use futures::executor::block_on;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Answers each batch from a script and records what it was asked.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<VecDeque<Result<u64, PortError>>>,
        calls: Mutex<Vec<(DateTime<Utc>, u32)>>,
    }

    impl Scripted {
        fn new(answers: Vec<Result<u64, PortError>>) -> Arc<Self> {
            Arc::new(Self { answers: Mutex::new(answers.into()), calls: Mutex::default() })
        }

        fn calls(&self) -> Vec<(DateTime<Utc>, u32)> {
            self.calls.lock().expect("calls").clone()
        }
    }

    #[async_trait]
    impl ExecutionRetention for Scripted {
        async fn purge_ended_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, PortError> {
            self.calls.lock().expect("calls").push((before, limit));
            self.answers.lock().expect("answers").pop_front().unwrap_or(Ok(0))
        }
    }

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().expect("date")
    }

    fn purge(store: Arc<Scripted>, keep: Duration, batch: u32, max_batches: u32) -> ExecutionPurge {
        ExecutionPurge::new(
            store,
            Arc::new(ManualClock::new(noon())),
            RetentionConfig { keep, batch, max_batches },
        )
    }

    #[test]
    fn deletes_batches_before_now_minus_keep_until_one_comes_back_short() {
        let store = Scripted::new(vec![Ok(3), Ok(3), Ok(1), Ok(3)]);
        let deleted = block_on(purge(store.clone(), Duration::days(7), 3, 10).purge_once()).expect("pass");
        assert_eq!(deleted, 7);
        let cutoff = noon() - Duration::days(7);
        assert_eq!(
            store.calls(),
            vec![(cutoff, 3), (cutoff, 3), (cutoff, 3)],
            "same cutoff, stop when short"
        );
    }

    #[test]
    fn an_empty_store_costs_one_batch() {
        let store = Scripted::new(vec![]);
        assert_eq!(
            block_on(purge(store.clone(), Duration::hours(1), 100, 10).purge_once()).expect("pass"),
            0
        );
        assert_eq!(store.calls().len(), 1);
    }

    #[test]
    fn one_pass_runs_at_most_max_batches() {
        let store = Scripted::new((0..10).map(|_| Ok(5)).collect());
        let deleted = block_on(purge(store.clone(), Duration::minutes(30), 5, 4).purge_once()).expect("pass");
        assert_eq!((deleted, store.calls().len()), (20, 4));
    }

    #[test]
    fn a_storage_failure_stops_the_pass_and_is_reported() {
        let store = Scripted::new(vec![Ok(2), Err(PortError::Unavailable("down".into())), Ok(2)]);
        let result = block_on(purge(store.clone(), Duration::days(1), 2, 10).purge_once());
        assert!(matches!(result, Err(ServiceError::Unavailable(_))), "{result:?}");
        assert_eq!(store.calls().len(), 2, "no batch after the failure");
    }

    #[test]
    fn a_retention_beyond_the_calendar_deletes_nothing() {
        let store = Scripted::new(vec![Ok(1)]);
        let deleted = block_on(purge(store.clone(), Duration::MAX, 10, 10).purge_once()).expect("pass");
        assert_eq!((deleted, store.calls().len()), (0, 0));
    }

    #[test]
    fn a_zero_batch_is_treated_as_one() {
        let store = Scripted::new(vec![Ok(1), Ok(0)]);
        let deleted = block_on(purge(store.clone(), Duration::days(1), 0, 10).purge_once()).expect("pass");
        assert_eq!(deleted, 1);
        assert!(store.calls().iter().all(|(_, limit)| *limit == 1));
    }
}
