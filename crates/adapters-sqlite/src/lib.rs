//! SQLite storage for FlowMate's embedded default.
//!
//! [`SqliteStore`] implements every storage port of `flow-domain` (flows, templates, users,
//! tenants, tokens, executions, external components, the transactional outbox) and
//! [`Health`](flow_domain::ports::Health) on one SQLite file in WAL mode. Reads use a pool of
//! read-only connections. Every write goes to one writer task that owns the single writer
//! connection and commits with *group commit*: the writes waiting for it run in one transaction,
//! each in its own savepoint (one write's failure never affects another), and are answered once
//! that transaction has committed, so concurrent writes share one WAL sync. The hottest writes
//! (plain execution inserts, execution saves without events) are gathered per transaction into
//! multi-row statements, each row still with its own result. Each mutating port
//! method is still one atomic operation: the state change, its outbox events and the
//! consumer's processed-event mark commit together or not at all. The schema lives in
//! `migrations/`, embedded and applied by [`SqliteStore::connect`].

mod checkpoint;
mod components;
mod error;
mod executions;
mod flows;
mod gather;
mod identity;
mod insert_batch;
mod listing;
mod outbox;
mod retention;
mod rows;
mod save_batch;
mod sql;
mod store;
mod templates;
mod tokens;
mod usage;
mod write;

pub use store::{SqliteConfig, SqliteStore};
