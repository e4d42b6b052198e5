//! Event bus ports. Adapters: `adapters-inprocess` (embedded) and `adapters-kafka` (production).

use crate::error::PortError;
use crate::event::Event;
use async_trait::async_trait;

/// Publishes events. Events with the same key MUST be delivered in publication order.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes `events` in order; returns once the bus has accepted all of them.
    ///
    /// # Errors
    /// `Unavailable` when the bus cannot take them now (the relay retries later).
    async fn publish(&self, events: &[Event]) -> Result<(), PortError>;
}

/// A subscription of one consumer group.
#[async_trait]
pub trait EventStream: Send {
    /// The next event of the subscribed names; `None` when the bus shuts down.
    async fn next(&mut self) -> Option<Event>;

    /// Acknowledges `event` after it was handled; unacknowledged events may be redelivered.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn ack(&mut self, event: &Event) -> Result<(), PortError>;
}

/// Creates subscriptions. Within one `group`, each event is delivered to one member; every
/// group receives every event of the names it subscribed to (at least once).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventSubscriber: Send + Sync {
    /// Subscribes `group` to the events named in `names`.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn subscribe(&self, group: &str, names: &[&'static str])
    -> Result<Box<dyn EventStream>, PortError>;
}
