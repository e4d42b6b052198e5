//! What a consumer loop drives: an [`EventHandler`], with an adapter for the flows side's
//! [`LifecycleListener`].

use async_trait::async_trait;
use flow_domain::event::Event;
use flow_domain::services::LifecycleListener;
use std::sync::Arc;

/// Handles events delivered to a consumer group. Handlers MUST be idempotent: delivery is at
/// least once.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Handles `event`.
    ///
    /// # Errors
    /// When the event should be retried (see [`crate::runtime::is_transient`] for which
    /// errors are retried without limit).
    async fn handle(&self, event: &Event) -> anyhow::Result<()>;
}

/// Runs the flows side's [`LifecycleListener`] (engine confirmations, user deletions) as a
/// consumer's handler.
#[derive(Clone)]
pub struct LifecycleHandler(pub Arc<LifecycleListener>);

#[async_trait]
impl EventHandler for LifecycleHandler {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.0.handle(event).await.map_err(anyhow::Error::new)
    }
}
