//! FlowMate's engine: runs flows. This crate holds the component catalogue and the components,
//! the orchestrator that deploys and undeploys flows on lifecycle events, the executor that
//! runs executions, the sandbox that runs user programs, the cron scheduler, and the background loops (outbox relay, event
//! consumers, watchdog, execution recovery).
//!
//! It depends on `flow-domain`'s ports only; storage and bus adapters are plugged in by the
//! binary.

pub mod catalogue;
pub mod components;
pub mod executor;
pub mod handler;
pub mod orchestrator;
pub mod runtime;
pub mod sandbox;
pub mod scheduler;
pub mod triggers;

#[cfg(test)]
mod testing;

pub use catalogue::{BuiltinCatalogue, Catalogue};
pub use components::{CallContext, Component, ComponentError, ComponentRegistry};
pub use executor::{EXECUTOR_CONSUMER, Executor, ExecutorConfig, spawn_leftover_recovery, spawn_recovery};
pub use handler::{EventHandler, LifecycleHandler};
pub use orchestrator::{ENGINE_CONSUMER, Orchestrator};
pub use sandbox::{Sandbox, SandboxConfig};
pub use scheduler::{Scheduler, spawn_scheduler};
pub use triggers::{TriggerKind, TriggerRegistration, TriggerRegistry};
