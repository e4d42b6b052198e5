//! The engine's long-running loops: the outbox relay, event consumers and the watchdog. Each
//! runs as a tokio task and stops when its [`CancellationToken`] is cancelled, between units of
//! work (a relay batch, a handled event, a watchdog pass).
//!
//! [`CancellationToken`]: tokio_util::sync::CancellationToken

mod backoff;
mod consumer;
mod periodic;
mod relay;
mod retention;
#[cfg(test)]
mod tests;
mod watchdog;

pub use crate::handler::{EventHandler, LifecycleHandler};
pub use consumer::{MAX_ATTEMPTS, is_transient, spawn_consumer};
pub use periodic::spawn_periodic;
pub use relay::{RELAY_BATCH, relay_step, spawn_relay};
pub use retention::spawn_retention;
pub use watchdog::spawn_watchdog;
