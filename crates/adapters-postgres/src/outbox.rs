//! `Outbox`: the relay's side of the transactional outbox (claim, mark published, wait) and
//! direct appends by consumers whose only effect is to publish. Claims use the database's
//! `FOR UPDATE SKIP LOCKED` and a claim expiry; `wait_for_new` is woken by `LISTEN/NOTIFY`.

use crate::error::port_error;
use crate::rows::OutboxRow;
use crate::sql::{millis, q};
use crate::store::PostgresStore;
use crate::write::{append_events, record_consumed};
use async_trait::async_trait;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use flow_domain::ports::{Outbox, StoredEvent};
use sqlx::{FromRow, Row};
use std::time::Duration;

/// Sequence numbers deleted per statement by `mark_published`.
const DELETE_CHUNK: usize = 500;

#[async_trait]
impl Outbox for PostgresStore {
    async fn append<'a>(&self, events: &[Event], consumed: Option<&'a Consumed>) -> Result<(), PortError> {
        let mut tx = self.begin_write().await?;
        record_consumed(&mut tx, consumed).await?;
        append_events(&mut tx, events).await?;
        self.commit(tx, !events.is_empty()).await
    }

    async fn claim(&self, claimer: &str, limit: u32) -> Result<Vec<StoredEvent>, PortError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.claim_ttl).unwrap_or(chrono::Duration::seconds(30));
        // `SKIP LOCKED`: a concurrent relay passes over rows being claimed and takes the next
        // ones; the claim expiry then keeps them from other relays until this one marks them
        // published, or dies (or its process restarts: `release_claims`).
        let rows = sqlx::query(q("UPDATE outbox SET claimed_until = ?, claimed_by = ? WHERE seq IN (\
                 SELECT seq FROM outbox WHERE claimed_until IS NULL OR claimed_until <= ? \
                 ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED) \
             RETURNING seq, event_id, name, key, created_at, source, payload::text AS payload"))
        .bind(millis(now + ttl))
        .bind(claimer.to_string())
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(port_error)?;
        // Each row alone: one that cannot be read as an event comes with its error.
        let mut claimed: Vec<StoredEvent> = rows
            .iter()
            .map(|row| StoredEvent {
                seq: row.try_get::<i64, _>("seq").unwrap_or_default(),
                event: OutboxRow::from_row(row)
                    .map_err(|e| crate::error::corrupt(&format!("outbox row ({e})")))
                    .and_then(OutboxRow::event)
                    .map_err(|e| e.to_string()),
            })
            .collect();
        claimed.sort_by_key(|stored| stored.seq);
        Ok(claimed)
    }

    async fn release_claims(&self, claimer_prefix: &str, current_claimer: &str) -> Result<u64, PortError> {
        let done = sqlx::query(q("UPDATE outbox SET claimed_until = NULL, claimed_by = NULL \
             WHERE claimed_until IS NOT NULL AND substr(claimed_by, 1, length(?)) = ? AND claimed_by <> ?"))
        .bind(claimer_prefix.to_string())
        .bind(claimer_prefix.to_string())
        .bind(current_claimer.to_string())
        .execute(&self.pool)
        .await
        .map_err(port_error)?;
        Ok(done.rows_affected())
    }

    async fn mark_published(&self, seqs: &[i64]) -> Result<(), PortError> {
        for chunk in seqs.chunks(DELETE_CHUNK) {
            sqlx::query(q("DELETE FROM outbox WHERE seq = ANY(?)"))
                .bind(chunk.to_vec())
                .execute(&self.pool)
                .await
                .map_err(port_error)?;
        }
        Ok(())
    }

    async fn wait_for_new(&self, max_wait: Duration) {
        // A permit stored by a local commit or a `NOTIFY` since the last wait makes this
        // return at once.
        let _ = tokio::time::timeout(max_wait, self.outbox_signal.notified()).await;
    }

    async fn pending_count(&self) -> Result<u64, PortError> {
        let n: i64 = sqlx::query_scalar(q("SELECT COUNT(*) FROM outbox"))
            .fetch_one(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
