//! The engine as the webhook use case sees it: running a short flow to its end inside the
//! calling process, so a synchronous call is answered without a trip through the event bus and
//! a worker (the whole execution is then stored once, ended, before the answer).

use crate::model::{Execution, Flow};
use async_trait::async_trait;
use std::sync::Arc;

/// Runs executions in memory, in the caller's process.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait InlineRunner: Send + Sync {
    /// Whether `flow` may run inline: every node is a component with no effect outside the
    /// execution and a bounded running time (no outbound calls, no waiting).
    fn runs_inline(&self, flow: &Flow) -> bool;

    /// Runs `execution` (queued, with its input) through `flow` to its end and returns it
    /// ended: `succeeded` or `failed`, with every step and the counters. Nothing is stored.
    async fn run_inline(&self, flow: Arc<Flow>, execution: Execution) -> Execution;
}
