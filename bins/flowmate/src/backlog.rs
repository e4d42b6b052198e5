//! `FLOWMATE_MAX_QUEUED_EXECUTIONS`: the API processes sample the number of queued executions a
//! few times a second (exported as `flowmate_executions_queued`) and refuse calls that would
//! queue more while it is over the limit (see `flow_domain::services::admission`).

use flow_domain::ports::ExecutionRepository;
use flow_domain::services::ExecutionBacklog;
use flow_engine::runtime::spawn_periodic;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the backlog is counted.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// Counts the queued executions every [`SAMPLE_EVERY`] until `cancel`; a failed count keeps
/// the last sample (and is logged).
pub fn spawn_backlog_sampler(
    backlog: Arc<ExecutionBacklog>,
    executions: Arc<dyn ExecutionRepository>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    spawn_periodic("backlog sampler", SAMPLE_EVERY, cancel, move || {
        let (backlog, executions) = (Arc::clone(&backlog), Arc::clone(&executions));
        async move {
            match backlog.refresh(executions.as_ref()).await {
                Ok(queued) => metrics::gauge!("flowmate_executions_queued").set(queued as f64),
                Err(err) => tracing::warn!(error = %err, "cannot count the queued executions"),
            }
        }
    })
}
