//! The write side shared by every port: a write transaction on the single writer connection,
//! the outbox append and processed-event mark that go into it, and the commit that wakes the
//! relay.

use crate::error::port_error;
use crate::sql::millis;
use crate::store::SqliteStore;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use sqlx::{Sqlite, Transaction};

/// A write transaction on the writer connection.
pub(crate) type Tx = Transaction<'static, Sqlite>;

impl SqliteStore {
    /// Starts a write transaction (`BEGIN IMMEDIATE`: the write lock is taken up front).
    pub(crate) async fn begin_write(&self) -> Result<Tx, PortError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(port_error)
    }

    /// Commits `tx`; wakes a waiting relay when events were appended.
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
    let inserted = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?) \
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(consumed.consumer.clone())
    .bind(consumed.event_id.to_string())
    .bind(millis(Utc::now()))
    .execute(&mut **tx)
    .await
    .map_err(port_error)?;
    if inserted.rows_affected() == 0 { Err(PortError::AlreadyProcessed) } else { Ok(()) }
}

/// Appends `events` to the outbox, in order.
pub(crate) async fn append_events(tx: &mut Tx, events: &[Event]) -> Result<(), PortError> {
    for event in events {
        let payload = serde_json::to_string(&event.payload)
            .map_err(|e| crate::error::unserializable("event payload", e))?;
        sqlx::query(
            "INSERT INTO outbox (event_id, name, key, created_at, source, payload) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(event.id.to_string())
        .bind(event.name.clone())
        .bind(event.key.clone())
        .bind(millis(event.created_at))
        .bind(event.source.clone())
        .bind(payload)
        .execute(&mut **tx)
        .await
        .map_err(port_error)?;
    }
    Ok(())
}
