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
