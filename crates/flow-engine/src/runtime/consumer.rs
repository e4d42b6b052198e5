//! A consumer loop: takes events of one consumer group from the bus, hands each to an
//! [`EventHandler`], and acknowledges it once handled.
//!
//! Failures: a transient error (a backend is unavailable) is retried with back-off until it
//! succeeds or the consumer is cancelled, so nothing is skipped while the database is down; any
//! other error is retried up to [`MAX_ATTEMPTS`] times, then logged and the event acknowledged
//! (the watchdog re-publishes lifecycle events of flows left in transition).

use super::backoff::Backoff;
use crate::handler::EventHandler;
use flow_domain::error::{PortError, ServiceError};
use flow_domain::event::Event;
use flow_domain::ports::{EventStream, EventSubscriber};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Attempts at handling an event that fails with a non-transient error before it is skipped.
pub const MAX_ATTEMPTS: u32 = 3;

/// Whether `err` says a backend is unavailable (retried without limit), anywhere in its chain.
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<PortError>(), Some(PortError::Unavailable(_)))
            || matches!(cause.downcast_ref::<ServiceError>(), Some(ServiceError::Unavailable(_)))
    })
}

/// Subscribes `group` to `names`, then consumes in a task until `cancel` fires or the bus
/// shuts down. The subscription exists when this returns, so events published afterwards
/// reach the group.
///
/// # Errors
/// When the subscription fails.
pub async fn spawn_consumer(
    subscriber: Arc<dyn EventSubscriber>,
    group: &str,
    names: &[&'static str],
    handler: Arc<dyn EventHandler>,
    cancel: CancellationToken,
) -> Result<JoinHandle<()>, PortError> {
    let stream = subscriber.subscribe(group, names).await?;
    let group = group.to_owned();
    Ok(tokio::spawn(consume(stream, group, handler, cancel)))
}

async fn consume(
    mut stream: Box<dyn EventStream>,
    group: String,
    handler: Arc<dyn EventHandler>,
    cancel: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            next = stream.next() => next,
        };
        let Some(event) = next else {
            tracing::info!(%group, "event stream ended");
            break;
        };
        if !handle(handler.as_ref(), &event, &group, &cancel).await {
            break;
        }
        if let Err(err) = stream.ack(&event).await {
            tracing::warn!(%group, event_id = %event.id, error = %err, "cannot acknowledge event; it may be redelivered");
        }
    }
    tracing::info!(%group, "consumer stopped");
}

/// Handles `event` with retries; `false` when cancelled before the event was done with (it is
/// then left unacknowledged for redelivery).
async fn handle(handler: &dyn EventHandler, event: &Event, group: &str, cancel: &CancellationToken) -> bool {
    let mut backoff = Backoff::new();
    let mut failures = 0;
    loop {
        let err = match handler.handle(event).await {
            Ok(()) => return true,
            Err(err) => err,
        };
        let transient = is_transient(&err);
        if !transient {
            failures += 1;
        }
        if failures >= MAX_ATTEMPTS {
            tracing::error!(%group, event_id = %event.id, event = %event.name, error = format!("{err:#}"), "event skipped after repeated failures");
            return true;
        }
        let delay = backoff.next_delay();
        tracing::warn!(%group, event_id = %event.id, event = %event.name, error = format!("{err:#}"), transient, retry_in_ms = delay.as_millis() as u64, "event handling failed");
        tokio::select! {
            biased;
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
    }
}
