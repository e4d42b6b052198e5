//! Ports: what the domain needs from the outside world, named for the need, not the technology.
//!
//! Every mutating storage method is one atomic business operation: the adapter writes the state
//! change, the given events into its outbox, and (when given) the [`Consumed`] mark in one
//! transaction. Mocks of every port are generated with `mockall` for tests (feature `mock`).
//!
//! [`Consumed`]: crate::event::Consumed

mod bus;
mod catalogue;
mod engine;
mod reported_once;
mod retention;
mod security;
mod storage;

pub use bus::{BusMonitor, EventPublisher, EventStream, EventSubscriber, MemberStatus, Stall};
pub use catalogue::{ComponentCatalogue, ComponentFunction, ComponentKind, ComponentSpec};
pub use engine::InlineRunner;
pub use reported_once::ReportedOnce;
pub use retention::ExecutionRetention;
pub use security::{PasswordHasher, TokenMinter};
pub use storage::{
    ComponentRepository, ExecutionRepository, FlowRepository, Health, InsertDurability, Outbox, StepUsage,
    StoredEvent, TemplateRepository, TenantRepository, TokenRepository, UserRepository,
};

#[cfg(any(test, feature = "mock"))]
pub use bus::{MockEventPublisher, MockEventSubscriber};
#[cfg(any(test, feature = "mock"))]
pub use engine::MockInlineRunner;
#[cfg(any(test, feature = "mock"))]
pub use retention::MockExecutionRetention;
#[cfg(any(test, feature = "mock"))]
pub use security::{MockPasswordHasher, MockTokenMinter};
#[cfg(any(test, feature = "mock"))]
pub use storage::{
    MockComponentRepository, MockExecutionRepository, MockFlowRepository, MockOutbox, MockTemplateRepository,
    MockTenantRepository, MockTokenRepository, MockUserRepository,
};
