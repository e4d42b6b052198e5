//! Hand-written fakes of the outbox and the publisher for the engine's unit tests.

use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use flow_domain::ids::EventId;
use flow_domain::ports::{EventPublisher, Outbox, StoredEvent};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

#[derive(Default)]
struct OutboxState {
    rows: Vec<(StoredEvent, bool)>,
    consumed: HashSet<(String, EventId)>,
    next_seq: i64,
}

/// An in-memory outbox with the consumed-event rule; can be told to be unavailable.
#[derive(Default)]
pub(crate) struct FakeOutbox {
    state: Mutex<OutboxState>,
    appended: Notify,
    unavailable: AtomicU32,
}

impl FakeOutbox {
    /// Every appended event, in order.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.lock().rows.iter().filter_map(|(row, _)| row.event.clone().ok()).collect()
    }

    /// Whether every appended event is marked published.
    pub(crate) fn all_published(&self) -> bool {
        self.lock().rows.iter().all(|(_, published)| *published)
    }

    /// The next `n` calls of any method fail with `Unavailable`.
    pub(crate) fn fail_next(&self, n: u32) {
        self.unavailable.store(n, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().expect("outbox lock")
    }

    fn check_available(&self) -> Result<(), PortError> {
        let failing = self.unavailable.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() { Err(PortError::Unavailable("fake outbox down".into())) } else { Ok(()) }
    }
}

#[async_trait]
impl Outbox for FakeOutbox {
    async fn append<'a>(&self, events: &[Event], consumed: Option<&'a Consumed>) -> Result<(), PortError> {
        self.check_available()?;
        {
            let mut state = self.lock();
            if let Some(mark) = consumed
                && !state.consumed.insert((mark.consumer.clone(), mark.event_id))
            {
                return Err(PortError::AlreadyProcessed);
            }
            for event in events {
                state.next_seq += 1;
                let seq = state.next_seq;
                state.rows.push((StoredEvent { seq, event: Ok(event.clone()) }, false));
            }
        }
        self.appended.notify_one();
        Ok(())
    }

    async fn claim(&self, _claimer: &str, limit: u32) -> Result<Vec<StoredEvent>, PortError> {
        self.check_available()?;
        let state = self.lock();
        let pending = state.rows.iter().filter(|(_, published)| !published).map(|(row, _)| row.clone());
        Ok(pending.take(limit as usize).collect())
    }

    async fn mark_published(&self, seqs: &[i64]) -> Result<(), PortError> {
        self.check_available()?;
        for (row, published) in &mut self.lock().rows {
            if seqs.contains(&row.seq) {
                *published = true;
            }
        }
        Ok(())
    }

    async fn release_claims(&self, _prefix: &str, _current: &str) -> Result<u64, PortError> {
        self.check_available()?;
        Ok(0)
    }

    async fn wait_for_new(&self, max_wait: Duration) {
        let _ = tokio::time::timeout(max_wait, self.appended.notified()).await;
    }

    async fn pending_count(&self) -> Result<u64, PortError> {
        Ok(self.lock().rows.iter().filter(|(_, published)| !published).count() as u64)
    }
}

/// A publisher that fails a given number of times, then reports every accepted batch.
pub(crate) struct FakePublisher {
    failures_left: AtomicU32,
    accepted: mpsc::UnboundedSender<Vec<Event>>,
}

impl FakePublisher {
    /// A publisher failing its first `failures` calls; the receiver gets each accepted batch.
    pub(crate) fn failing(failures: u32) -> (Self, mpsc::UnboundedReceiver<Vec<Event>>) {
        let (accepted, rx) = mpsc::unbounded_channel();
        (Self { failures_left: AtomicU32::new(failures), accepted }, rx)
    }
}

#[async_trait]
impl EventPublisher for FakePublisher {
    async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        if self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(PortError::Unavailable("fake broker down".into()));
        }
        let _ = self.accepted.send(events.to_vec());
        Ok(())
    }
}
