//! The outbox relay: publishes committed events in outbox order and marks them published. A
//! batch is marked only after the bus accepted it, so a crash at any instant loses nothing (it
//! may publish a batch twice; consumers are idempotent).
//!
//! Metrics: `flowmate_outbox_published_total` (events relayed by this process) and
//! `flowmate_outbox_pending` (events waiting, as last seen by this process's relay: 0 when it
//! idles, counted again after each failure, so it shows the outbox growing while the bus is down).

use super::backoff::Backoff;
use flow_domain::error::PortError;
use flow_domain::ports::{EventPublisher, Outbox};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events claimed and published per batch.
pub const RELAY_BATCH: u32 = 256;

/// Longest wait for new outbox events before looking again.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Claims up to `limit` events, publishes them in order and marks them published; returns how
/// many were relayed (0 when nothing was pending).
///
/// # Errors
/// The outbox's or the publisher's error; nothing is marked published then.
pub async fn relay_once(
    outbox: &dyn Outbox,
    publisher: &dyn EventPublisher,
    limit: u32,
) -> Result<usize, PortError> {
    let claimed = outbox.claim(limit).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let seqs: Vec<i64> = claimed.iter().map(|stored| stored.seq).collect();
    let events: Vec<_> = claimed.into_iter().map(|stored| stored.event).collect();
    publisher.publish(&events).await?;
    outbox.mark_published(&seqs).await?;
    Ok(events.len())
}

/// Relays the outbox until `cancel` fires: batches of [`RELAY_BATCH`] back to back while events
/// are pending, then waits for new ones (at most a second); failures are logged and retried
/// with exponential back-off (up to 5 s). Stops between batches.
pub fn spawn_relay(
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::new();
        while !cancel.is_cancelled() {
            match relay_once(outbox.as_ref(), publisher.as_ref(), RELAY_BATCH).await {
                Ok(0) => {
                    backoff.reset();
                    metrics::gauge!("flowmate_outbox_pending").set(0.0);
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => break,
                        () = outbox.wait_for_new(IDLE_WAIT) => {}
                    }
                }
                Ok(relayed) => {
                    backoff.reset();
                    metrics::counter!("flowmate_outbox_published_total").increment(relayed as u64);
                    tracing::debug!(relayed, "outbox events published");
                }
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "outbox relay failed");
                    if let Ok(pending) = outbox.pending_count().await {
                        metrics::gauge!("flowmate_outbox_pending").set(pending as f64);
                    }
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        tracing::info!("outbox relay stopped");
    })
}
