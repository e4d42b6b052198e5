//! `FLOWMATE_MAX_QUEUED_EXECUTIONS`: the API processes sample the number of queued executions a
//! few times a second (exported as `flowmate_executions_queued`) and refuse calls that would
//! queue more while it is over the limit (see `flow_domain::services::admission`).

use flow_domain::ports::ExecutionRepository;
use flow_domain::services::ExecutionBacklog;
use flow_engine::runtime::spawn_periodic;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the backlog is counted.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// Counts the queued executions every [`SAMPLE_EVERY`] until `cancel`; a failed count keeps
/// the last sample. A failure is logged when counting stops working and again when it works
/// once more, not at every sample.
pub fn spawn_backlog_sampler(
    backlog: Arc<ExecutionBacklog>,
    executions: Arc<dyn ExecutionRepository>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let failing = Arc::new(AtomicBool::new(false));
    spawn_periodic("backlog sampler", SAMPLE_EVERY, cancel, move || {
        let (backlog, executions, failing) =
            (Arc::clone(&backlog), Arc::clone(&executions), Arc::clone(&failing));
        async move {
            match backlog.refresh(executions.as_ref()).await {
                Ok(queued) => {
                    metrics::gauge!("flowmate_executions_queued").set(queued as f64);
                    if failing.swap(false, Ordering::Relaxed) {
                        tracing::info!(queued, "counting the queued executions works again");
                    }
                }
                Err(err) => {
                    if !failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %err, "cannot count the queued executions; the last count is kept until it works again");
                    }
                }
            }
        }
    })
}
