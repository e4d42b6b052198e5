//! Runs the [`ExecutionPurge`] periodically in the engine roles, so ended executions older
//! than the retention period are deleted and the store stays bounded.

use super::spawn_periodic;
use flow_domain::services::ExecutionPurge;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Calls [`ExecutionPurge::purge_once`] every `every` (the first pass right away) until
/// `cancel` fires, which also abandons a pass in progress between its batches' commits;
/// failures are logged and the next pass tries again.
pub fn spawn_retention(
    purge: Arc<ExecutionPurge>,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let stop = cancel.clone();
    spawn_periodic("execution retention", every, cancel, move || {
        let (purge, stop) = (Arc::clone(&purge), stop.clone());
        async move {
            let pass = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                pass = purge.purge_once() => pass,
            };
            match pass {
                Ok(0) => {}
                Ok(deleted) => {
                    metrics::counter!("flowmate_executions_purged_total").increment(deleted);
                    tracing::info!(deleted, "deleted executions past the retention period");
                }
                Err(err) => tracing::warn!(error = %err, "execution retention pass failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use flow_domain::error::PortError;
    use flow_domain::ports::ExecutionRetention;
    use flow_domain::services::RetentionConfig;
    use flow_domain::time::SystemClock;
    use tokio::sync::mpsc;
    use tokio::time::timeout;

    /// Reports every batch it is asked for; the first pass finds two batches' worth, the
    /// second fails, later ones find nothing.
    struct Reporting {
        batches: mpsc::UnboundedSender<DateTime<Utc>>,
        calls: std::sync::atomic::AtomicU32,
    }

    #[async_trait]
    impl ExecutionRetention for Reporting {
        async fn purge_ended_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, PortError> {
            let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = self.batches.send(before);
            match call {
                0 => Ok(u64::from(limit)),
                1 => Ok(1),
                2 => Err(PortError::Unavailable("down".into())),
                _ => Ok(0),
            }
        }
    }

    #[tokio::test]
    async fn runs_passes_until_cancelled_and_survives_a_failed_pass() {
        let (tx, mut batches) = mpsc::unbounded_channel();
        let store = Arc::new(Reporting { batches: tx, calls: Default::default() });
        let config = RetentionConfig { keep: chrono::Duration::hours(1), batch: 10, max_batches: 5 };
        let purge = Arc::new(ExecutionPurge::new(store, Arc::new(SystemClock), config));
        let cancel = CancellationToken::new();
        let task = spawn_retention(purge, Duration::from_millis(5), cancel.clone());
        let wait = Duration::from_secs(30);
        let mut cutoffs = Vec::new();
        // Pass 1: a full batch then a short one; pass 2: fails; pass 3: nothing to delete.
        for _ in 0..4 {
            cutoffs.push(timeout(wait, batches.recv()).await.expect("a batch in time").expect("batch"));
        }
        let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
        assert!(cutoffs.iter().all(|c| *c <= an_hour_ago), "cutoff is now minus the retention");
        assert_eq!(cutoffs[0], cutoffs[1], "one cutoff per pass");
        cancel.cancel();
        timeout(wait, task).await.expect("stops when cancelled").expect("no panic");
    }
}
