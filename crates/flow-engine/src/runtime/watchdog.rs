//! Runs the flows side's [`Watchdog`] periodically, so no flow stays in `starting` or
//! `stopping` while the engine runs.

use super::spawn_periodic;
use flow_domain::services::Watchdog;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Calls [`Watchdog::tick`] every `every` (the first pass right away) until `cancel` fires;
/// failures are logged and the next pass tries again.
pub fn spawn_watchdog(watchdog: Arc<Watchdog>, every: Duration, cancel: CancellationToken) -> JoinHandle<()> {
    spawn_periodic("watchdog", every, cancel, move || {
        let watchdog = Arc::clone(&watchdog);
        async move {
            match watchdog.tick().await {
                Ok(acted) if !acted.is_empty() => {
                    tracing::info!(flows = ?acted, "watchdog acted on flows stuck in transition");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "watchdog pass failed"),
            }
        }
    })
}
