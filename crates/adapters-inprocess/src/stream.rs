//! [`InProcessStream`]: one member's subscription; hands its leftovers back to its group when
//! dropped.

use crate::bus::Inner;
use crate::routing::MemberId;
use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ports::EventStream;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The stream of one member of a consumer group.
pub struct InProcessStream {
    inner: Arc<Inner>,
    group: String,
    member: MemberId,
    rx: mpsc::Receiver<Event>,
    /// Delivered by `next` and not acknowledged yet, oldest first.
    unacked: Vec<Event>,
}

impl InProcessStream {
    pub(crate) fn new(inner: Arc<Inner>, group: String, member: MemberId, rx: mpsc::Receiver<Event>) -> Self {
        Self { inner, group, member, rx, unacked: Vec::new() }
    }
}

#[async_trait]
impl EventStream for InProcessStream {
    async fn next(&mut self) -> Option<Event> {
        if self.inner.closed.is_cancelled() {
            return None;
        }
        let event = tokio::select! {
            biased;
            () = self.inner.closed.cancelled() => None,
            event = self.rx.recv() => event,
        }?;
        self.unacked.push(event.clone());
        Some(event)
    }

    /// Forgets `event` (nothing is persisted in process); acknowledging twice is harmless.
    async fn ack(&mut self, event: &Event) -> Result<(), PortError> {
        self.unacked.retain(|e| e.id != event.id);
        Ok(())
    }
}

impl Drop for InProcessStream {
    /// Leaves the group and redelivers the unacknowledged and still-queued events to the
    /// group's remaining members (in the background, on the current tokio runtime).
    fn drop(&mut self) {
        self.inner.table().leave(&self.group, self.member);
        if self.inner.closed.is_cancelled() {
            return;
        }
        self.rx.close();
        let mut leftovers = std::mem::take(&mut self.unacked);
        while let Ok(event) = self.rx.try_recv() {
            leftovers.push(event);
        }
        if leftovers.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(group = %self.group, lost = leftovers.len(), "stream dropped outside a runtime; events not redelivered");
            return;
        };
        let inner = Arc::clone(&self.inner);
        let group = std::mem::take(&mut self.group);
        runtime.spawn(async move {
            for event in &leftovers {
                if let Err(err) = inner.deliver_to_group(&group, event).await {
                    tracing::warn!(%group, error = %err, "cannot redeliver an event of a departed member");
                    return;
                }
            }
        });
    }
}
