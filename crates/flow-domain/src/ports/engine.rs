//! The engine as the webhook use case sees it: running a short flow to its end inside the
//! calling process, so a synchronous call is answered without a trip through the event bus and
//! a worker.
//!
//! The run is counted durably before it begins, as every run is: the caller stores the
//! execution taken by [`InlineRunner::claim_inline`] (`running`, its first run counted, leased
//! to this process) before [`InlineRunner::run_inline`], and stores it ended afterwards. If the
//! process dies during the run, recovery finds the lease of a dead process and treats the run
//! as any lost run: run again elsewhere, or failed once the attempt limit is reached.

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

    /// Takes the queued `execution` for a run in this process, in memory: `running`, started
    /// now, its first run counted and leased to this process. Store it before running it.
    fn claim_inline(&self, execution: &mut Execution);

    /// Runs `execution` (taken by [`InlineRunner::claim_inline`]) through `flow` to its end
    /// and returns it ended: `succeeded` or `failed`, with every step and the counters, its
    /// lease released. Nothing is stored.
    async fn run_inline(&self, flow: Arc<Flow>, execution: Execution) -> Execution;
}
