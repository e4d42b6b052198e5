//! [`InProcessBus`]: the publisher, subscriber and health check over the subscription table.

use crate::routing::{Table, Target};
use crate::stream::InProcessStream;
use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ports::{BusMonitor, EventPublisher, EventStream, EventSubscriber, Health, MemberStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events a member's queue holds before `publish` waits for the member to catch up.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// An event bus living in this process. Cheap to clone; clones share the same subscriptions.
///
/// Delivery guarantees, compared with the port contract:
/// - a group receives the events published after it subscribed; while a group has no member,
///   events for it are not retained;
/// - within a group, the member for an event is chosen by the hash of its key, so per-key order
///   holds for any number of members while membership does not change. When a member's stream
///   is dropped, its queued and unacknowledged events are redelivered to the remaining members
///   of its group (order around such a change is not guaranteed, as with a Kafka rebalance);
/// - nothing survives the process: durability comes from the outbox, which is only marked
///   published once `publish` has queued the events.
#[derive(Clone)]
pub struct InProcessBus {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    table: Mutex<Table>,
    capacity: usize,
    pub(crate) closed: CancellationToken,
}

impl InProcessBus {
    /// A bus whose member queues hold [`DEFAULT_QUEUE_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_QUEUE_CAPACITY)
    }

    /// A bus whose member queues hold `capacity` events (at least one) before `publish` waits.
    pub fn with_capacity(capacity: usize) -> Self {
        let inner = Inner {
            table: Mutex::new(Table::default()),
            capacity: capacity.max(1),
            closed: CancellationToken::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Shuts the bus down: every stream's `next` returns `None` from now on, and `publish` and
    /// `subscribe` fail with `Unavailable`.
    pub fn close(&self) {
        self.inner.closed.cancel();
        self.inner.table().clear();
    }

    /// Whether [`InProcessBus::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ensure_open(&self) -> Result<(), PortError> {
        if self.closed.is_cancelled() {
            Err(PortError::Unavailable("the in-process event bus is closed".into()))
        } else {
            Ok(())
        }
    }

    /// Queues `event` for one member of every interested group, waiting while a queue is full.
    async fn deliver(&self, event: &Event) -> Result<(), PortError> {
        let targets = self.table().targets(event);
        for target in targets {
            self.send(target, event).await?;
        }
        Ok(())
    }

    /// Queues `event` for one member of `group`; dropped when the group has no member left.
    pub(crate) async fn deliver_to_group(&self, group: &str, event: &Event) -> Result<(), PortError> {
        let target = self.table().target_in(group, event);
        match target {
            Some(target) => self.send(target, event).await,
            None => Ok(()),
        }
    }

    /// Sends to `target`; when that member is gone, removes it and routes to another member.
    async fn send(&self, mut target: Target, event: &Event) -> Result<(), PortError> {
        loop {
            self.ensure_open()?;
            if target.tx.send(event.clone()).await.is_ok() {
                return Ok(());
            }
            let next = {
                let mut table = self.table();
                table.leave(&target.group, target.member);
                table.target_in(&target.group, event)
            };
            match next {
                Some(next) => target = next,
                None => return Ok(()),
            }
        }
    }
}

#[async_trait]
impl EventPublisher for InProcessBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        self.inner.ensure_open()?;
        for event in events {
            self.inner.deliver(event).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventSubscriber for InProcessBus {
    async fn subscribe(
        &self,
        group: &str,
        names: &[&'static str],
    ) -> Result<Box<dyn EventStream>, PortError> {
        self.inner.ensure_open()?;
        let (tx, rx) = mpsc::channel(self.inner.capacity);
        let member = self.inner.table().join(group, names, tx);
        Ok(Box::new(InProcessStream::new(Arc::clone(&self.inner), group.to_owned(), member, rx)))
    }
}

#[async_trait]
impl Health for InProcessBus {
    async fn check(&self) -> Result<(), String> {
        self.inner.ensure_open().map_err(|e| e.to_string())
    }
}

/// Subscriptions in process are always served: there is no group membership to watch.
impl BusMonitor for InProcessBus {
    fn members(&self) -> Vec<MemberStatus> {
        Vec::new()
    }
}
