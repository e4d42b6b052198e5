//! FlowMate's domain: the model as validated types, the flow lifecycle as a pure state machine,
//! the permission and ownership policy, the use cases, and the ports adapters implement.
//!
//! This crate is pure: it knows nothing of HTTP, SQL, Kafka or an async runtime. Adapters
//! implement the traits in [`ports`]; the services in [`services`] hold them as `Arc<dyn ...>`.

pub mod actor;
pub mod cache;
pub mod error;
pub mod event;
pub mod execution_lifecycle;
mod expiring;
pub mod expr;
pub mod ids;
pub mod lifecycle;
pub mod limits;
pub mod merge;
pub mod model;
pub mod permission;
pub mod ports;
pub mod query;
pub mod services;
pub mod time;
pub mod token_cache;
pub mod validate;

pub use error::{FieldError, Rejection};
