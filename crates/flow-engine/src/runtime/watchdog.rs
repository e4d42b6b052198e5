//! Runs the flows side's [`Watchdog`] periodically, so no flow stays in `starting` or
//! `stopping` while the engine runs.

use super::spawn_periodic;
use flow_domain::ports::ReportedOnce;
use flow_domain::services::Watchdog;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Runs [`Watchdog::pass`] every `every` (the first pass right away) until `cancel` fires;
/// failures are logged and the next pass tries again. A flow the watchdog cannot handle is
/// logged once (per flow and reason), not at every pass.
pub fn spawn_watchdog(watchdog: Arc<Watchdog>, every: Duration, cancel: CancellationToken) -> JoinHandle<()> {
    let reported = Arc::new(ReportedOnce::default());
    spawn_periodic("watchdog", every, cancel, move || {
        let (watchdog, reported) = (Arc::clone(&watchdog), Arc::clone(&reported));
        async move {
            match watchdog.pass().await {
                Ok(pass) => {
                    if !pass.acted.is_empty() {
                        tracing::info!(flows = ?pass.acted, "watchdog acted on flows stuck in transition");
                    }
                    for (flow, reason) in pass.skipped {
                        if reported.first_report(&format!("{flow}:{reason}")) {
                            tracing::warn!(%flow, %reason, "watchdog skipped a flow it cannot handle");
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "watchdog pass failed"),
            }
        }
    })
}
