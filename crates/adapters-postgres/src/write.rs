//! The write side shared by every port: a write transaction, the outbox append (with its
//! `NOTIFY`) and processed-event mark that go into it, and the commit that wakes local relays.

use crate::error::port_error;
use crate::listener::OUTBOX_CHANNEL;
use crate::sql::{millis, q};
use crate::store::PostgresStore;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use sqlx::{Postgres, Transaction};

/// A write transaction.
pub(crate) type Tx = Transaction<'static, Postgres>;

/// The transaction-level advisory lock taken before appending outbox events: appenders commit
/// one at a time from there, so sequence numbers are visible in commit order (a relay never
/// publishes seq 7 before a still-uncommitted seq 6 appears). Taken last, just before commit.
const OUTBOX_APPEND_LOCK: i64 = 0x0046_6c6f_774f_6278; // "FlowObx"

impl PostgresStore {
    /// Starts a write transaction (READ COMMITTED; conditional updates re-check their row).
    pub(crate) async fn begin_write(&self) -> Result<Tx, PortError> {
        self.pool.begin().await.map_err(port_error)
    }

    /// Commits `tx`; wakes a waiting local relay when events were appended.
    pub(crate) async fn commit(&self, tx: Tx, appended_events: bool) -> Result<(), PortError> {
        tx.commit().await.map_err(port_error)?;
        if appended_events {
            // `notify_one` stores a permit when nobody waits, so the wake-up is never lost.
            self.outbox_signal.notify_one();
        }
        Ok(())
    }
}

/// Records that `consumed.consumer` handled `consumed.event_id`.
///
/// # Errors
/// `AlreadyProcessed` when it was already recorded; the caller then drops (rolls back) `tx`.
pub(crate) async fn record_consumed(tx: &mut Tx, consumed: Option<&Consumed>) -> Result<(), PortError> {
    let Some(consumed) = consumed else { return Ok(()) };
    let inserted =
        sqlx::query(q("INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?) \
         ON CONFLICT (consumer, event_id) DO NOTHING"))
        .bind(consumed.consumer.clone())
        .bind(consumed.event_id.to_string())
        .bind(millis(Utc::now()))
        .execute(&mut **tx)
        .await
        .map_err(port_error)?;
    if inserted.rows_affected() == 0 { Err(PortError::AlreadyProcessed) } else { Ok(()) }
}

/// Appends `events` to the outbox, in order, and notifies listeners (delivered at commit).
pub(crate) async fn append_events(tx: &mut Tx, events: &[Event]) -> Result<(), PortError> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(q("SELECT pg_advisory_xact_lock(?)"))
        .bind(OUTBOX_APPEND_LOCK)
        .execute(&mut **tx)
        .await
        .map_err(port_error)?;
    for event in events {
        sqlx::query(q(
            "INSERT INTO outbox (event_id, name, key, created_at, source, payload) VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(event.id.to_string())
        .bind(event.name.clone())
        .bind(event.key.clone())
        .bind(millis(event.created_at))
        .bind(event.source.clone())
        .bind(sqlx::types::Json(&event.payload))
        .execute(&mut **tx)
        .await
        .map_err(port_error)?;
    }
    sqlx::query(q("SELECT pg_notify(?, '')"))
        .bind(OUTBOX_CHANNEL)
        .execute(&mut **tx)
        .await
        .map_err(port_error)?;
    Ok(())
}
