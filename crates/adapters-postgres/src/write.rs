//! The write side shared by every port: a write transaction, the outbox append and
//! processed-event mark that go into it, and the commit that wakes the relays.
//!
//! Appends take no lock beyond their rows and send no `NOTIFY` inside the transaction (both
//! serialise every appending commit behind one lock: ~400 appends/s, one fsync each). After a
//! commit that appended events, the local relay is woken at once and a `NOTIFY` for the relays
//! of other processes is requested from the store's notifier, which coalesces the requests into
//! one notification at a time. Sequence numbers of concurrent appends may become visible out of
//! order; the relay claims whatever is unclaimed (no watermark), so a late one is published
//! later, never lost. Events of one flow stay in order: their transactions are serialised by
//! the flow's row (lifecycle) or by the consumer handling that flow's events one at a time.

use crate::error::port_error;
use crate::sql::{millis, q};
use crate::store::PostgresStore;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{Postgres, Transaction};

/// A write transaction.
pub(crate) type Tx = Transaction<'static, Postgres>;

impl PostgresStore {
    /// Starts a write transaction (READ COMMITTED; conditional updates re-check their row).
    pub(crate) async fn begin_write(&self) -> Result<Tx, PortError> {
        self.pool.begin().await.map_err(port_error)
    }

    /// Commits `tx`; when events were appended, wakes a waiting local relay and asks the
    /// notifier to tell the other processes.
    pub(crate) async fn commit(&self, tx: Tx, appended_events: bool) -> Result<(), PortError> {
        tx.commit().await.map_err(port_error)?;
        self.committed(appended_events);
        Ok(())
    }

    /// After a commit that appended events (a transaction's, or a statement's committed on its
    /// own): wakes a waiting local relay and asks the notifier to tell the other processes.
    pub(crate) fn committed(&self, appended_events: bool) {
        if appended_events {
            // `notify_one` stores a permit when nobody waits, so the wake-up is never lost.
            self.outbox_signal.notify_one();
            self.notify_request.notify_one();
        }
    }
}

/// `statement` (one data-modifying statement ending in `RETURNING 1`) and the append of events
/// to the outbox as one statement, so that a write with its events is one round trip committed
/// on its own: `WITH main AS (statement), appended AS (INSERT INTO outbox ...) SELECT count(*)
/// FROM main`. The events are appended only when `statement` wrote its row, in the order given;
/// the statement answers how many rows `statement` wrote. Bind the statement's own values, then
/// [`bind_events`].
pub(crate) fn with_events(statement: &str) -> String {
    format!(
        "WITH main AS ({statement}), appended AS (\
         INSERT INTO outbox (event_id, name, key, created_at, source, payload) \
         SELECT e.event_id, e.name, e.key, e.created_at, e.source, e.payload::jsonb \
         FROM (SELECT count(*) AS n FROM main) AS written, \
         unnest(?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::text[], ?::text[]) \
         WITH ORDINALITY AS e (event_id, name, key, created_at, source, payload, position) \
         WHERE written.n > 0 ORDER BY e.position) \
         SELECT count(*) FROM main"
    )
}

/// Binds the outbox columns of `events`, one array per column, to a statement of [`with_events`].
///
/// # Errors
/// When an event's payload cannot be serialized.
pub(crate) fn bind_events<'q>(
    query: QueryScalar<'q, Postgres, i64, PgArguments>,
    events: &[Event],
) -> Result<QueryScalar<'q, Postgres, i64, PgArguments>, PortError> {
    let payloads = events
        .iter()
        .map(|e| serde_json::to_string(&e.payload))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| crate::error::unserializable("event payload", e))?;
    Ok(query
        .bind(events.iter().map(|e| e.id.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.name.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.key.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| millis(e.created_at)).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.source.clone()).collect::<Vec<_>>())
        .bind(payloads))
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

/// Appends `events` to the outbox, in order.
pub(crate) async fn append_events(tx: &mut Tx, events: &[Event]) -> Result<(), PortError> {
    if events.is_empty() {
        return Ok(());
    }
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
    Ok(())
}
