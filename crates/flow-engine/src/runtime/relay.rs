//! The outbox relay: publishes committed events in outbox order and marks them published. A
//! batch is marked only after the bus accepted it, so a crash at any instant loses nothing (it
//! may publish a batch twice; consumers are idempotent). A published batch is marked by the
//! same outbox write that claims the next one ([`Outbox::mark_published_then_claim`]), and on
//! stop.
//!
//! Claims are made in the name of this process incarnation; at start the relay first releases
//! the claims an earlier incarnation of this process left (it was killed while publishing), so
//! their events go out now instead of once the claims expire. An outbox row that cannot be read
//! back as an event is dropped with one error log line (it can never be published), instead of
//! failing every batch it is claimed in.
//!
//! Metrics: `flowmate_outbox_published_total` (events relayed by this process) and
//! `flowmate_outbox_pending` (events waiting, as last seen by this process's relay: 0 when it
//! idles, counted again after each failure, so it shows the outbox growing while the bus is down).

use super::backoff::Backoff;
use flow_domain::error::PortError;
use flow_domain::model::ProcessIdentity;
use flow_domain::ports::{EventPublisher, Outbox};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events claimed and published per batch.
pub const RELAY_BATCH: u32 = 256;

/// Longest wait for new outbox events before looking again.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// One step of the relay: marks `published` (the events of the last step, published)
/// published, claims up to `limit` more for `claimer`, publishes them in order and leaves
/// their positions in `published`, to be marked by the next step. A claimed row that cannot be
/// read is logged and marked with them, never published. Returns how many were published (0
/// when nothing was pending).
///
/// # Errors
/// The outbox's or the publisher's error; `published` is then empty when the events it held
/// were marked, and nothing newly claimed is in it.
pub async fn relay_step(
    outbox: &dyn Outbox,
    publisher: &dyn EventPublisher,
    published: &mut Vec<i64>,
    claimer: &str,
    limit: u32,
) -> Result<usize, PortError> {
    let claimed = outbox.mark_published_then_claim(published, claimer, limit).await?;
    published.clear();
    if claimed.is_empty() {
        return Ok(0);
    }
    let seqs: Vec<i64> = claimed.iter().map(|stored| stored.seq).collect();
    let mut events = Vec::with_capacity(claimed.len());
    for stored in claimed {
        match stored.event {
            Ok(event) => events.push(event),
            Err(reason) => tracing::error!(
                seq = stored.seq, %reason,
                "an outbox row cannot be read as an event; it is dropped, never published"
            ),
        }
    }
    if !events.is_empty() {
        publisher.publish(&events).await?;
    }
    *published = seqs;
    Ok(events.len())
}

/// Relays the outbox until `cancel` fires, claiming in the name of `process`: first releases
/// the claims an earlier incarnation of `process` left, then relays batches of
/// [`RELAY_BATCH`] back to back while events are pending, then waits for new ones (at most a
/// second); failures are logged and retried with exponential back-off (up to 5 s). Stops
/// between batches, marking the last one published.
pub fn spawn_relay(
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    process: ProcessIdentity,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::new();
        let mut published = Vec::new();
        let mut released = false;
        while !cancel.is_cancelled() {
            if !released {
                match outbox.release_claims(process.name_prefix(), process.owner()).await {
                    Ok(0) => released = true,
                    Ok(count) => {
                        released = true;
                        tracing::info!(
                            count,
                            "released the outbox claims an earlier run of this process left"
                        );
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot release earlier outbox claims; retried"),
                }
            }
            match relay_step(
                outbox.as_ref(),
                publisher.as_ref(),
                &mut published,
                process.owner(),
                RELAY_BATCH,
            )
            .await
            {
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
        if let Err(err) = outbox.mark_published(&published).await {
            // Published again after the claim expires; consumers are idempotent.
            tracing::warn!(error = %err, "outbox relay could not mark its last batch published");
        }
        tracing::info!("outbox relay stopped");
    })
}
