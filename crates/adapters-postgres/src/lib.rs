//! PostgreSQL storage for FlowMate in production.
//!
//! [`PostgresStore`] implements every storage port of `flow-domain` (flows, templates, users,
//! tenants, tokens, executions, external components, the transactional outbox) and
//! [`Health`](flow_domain::ports::Health) on one PostgreSQL database, with the same semantics as
//! the SQLite adapter. Each mutating port method is one transaction: the state change, its
//! outbox events (with a `NOTIFY` that wakes relays in every process) and the consumer's
//! processed-event mark commit together. Relays claim outbox rows with `FOR UPDATE SKIP
//! LOCKED` and a claim expiry; workers claim executions with one conditional `UPDATE`. The
//! schema lives in `migrations/`, embedded and applied by [`PostgresStore::connect`].

mod batch;
mod components;
mod error;
mod executions;
mod flows;
mod identity;
mod listener;
mod listing;
mod outbox;
mod retention;
mod rows;
mod sql;
mod store;
mod templates;
mod tokens;
mod usage;
mod write;

pub use store::{PostgresConfig, PostgresStore};
