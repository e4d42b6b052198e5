//! SQLite storage for FlowMate's embedded default.
//!
//! [`SqliteStore`] implements every storage port of `flow-domain` (flows, templates, users,
//! tenants, tokens, executions, external components, the transactional outbox) and
//! [`Health`](flow_domain::ports::Health) on one SQLite file in WAL mode. All writes go through a single-connection writer pool, so write
//! transactions never contend for SQLite's lock; reads use a separate pool. Each mutating port
//! method is one transaction: the state change, its outbox events and the consumer's
//! processed-event mark commit together. The schema lives in `migrations/`, embedded and applied
//! by [`SqliteStore::connect`].

mod components;
mod error;
mod executions;
mod flows;
mod identity;
mod listing;
mod outbox;
mod rows;
mod sql;
mod store;
mod templates;
mod tokens;
mod usage;
mod write;

pub use store::{SqliteConfig, SqliteStore};
