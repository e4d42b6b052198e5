//! The in-process event bus of FlowMate's embedded default: tokio channels with Kafka-like
//! consumer groups, so the same consumers run unchanged against Kafka in production.
//!
//! Semantics (see [`InProcessBus`]):
//! - every consumer group subscribed to an event name receives every event of that name
//!   published *after* it subscribed (nothing is retained for groups that do not exist yet, so
//!   subscribe the consumers before starting the outbox relay);
//! - within a group each event goes to one member, chosen by a hash of the event key, so events
//!   with the same key reach the same member in publication order (like Kafka partitions);
//! - each member has a bounded queue; a full queue makes `publish` wait (back-pressure).

mod bus;
mod routing;
mod stream;

pub use bus::{DEFAULT_QUEUE_CAPACITY, InProcessBus};
pub use stream::InProcessStream;

#[cfg(test)]
mod tests;
