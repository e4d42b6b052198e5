//! `Outbox`: the relay's side of the transactional outbox (claim, mark published, wait) and
//! direct appends by consumers whose only effect is to publish. Every write (claims and
//! deletions too) is one group-commit job (see `write`).

use crate::error::port_error;
use crate::rows::OutboxRow;
use crate::sql::{Arg, bind_args, millis, placeholders};
use crate::store::SqliteStore;
use crate::write::{append_events, record_consumed};
use async_trait::async_trait;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use flow_domain::ports::{Outbox, StoredEvent};
use sqlx::AssertSqlSafe;
use std::time::Duration;

/// Sequence numbers deleted per statement by `mark_published`.
const DELETE_CHUNK: usize = 500;

#[async_trait]
impl Outbox for SqliteStore {
    async fn append<'a>(&self, events: &[Event], consumed: Option<&'a Consumed>) -> Result<(), PortError> {
        let (events, consumed) = (events.to_vec(), consumed.cloned());
        self.write(!events.is_empty(), move |tx| {
            Box::pin(async move {
                record_consumed(tx, consumed.as_ref()).await?;
                append_events(tx, &events).await
            })
        })
        .await
    }

    async fn claim(&self, limit: u32) -> Result<Vec<StoredEvent>, PortError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.claim_ttl).unwrap_or(chrono::Duration::seconds(30));
        // One statement, run by the single writer: two relays never claim the same row.
        let query = sqlx::query_as::<_, OutboxRow>(
            "UPDATE outbox SET claimed_until = ? WHERE seq IN (\
                 SELECT seq FROM outbox WHERE claimed_until IS NULL OR claimed_until <= ? \
                 ORDER BY seq LIMIT ?) \
             RETURNING seq, event_id, name, key, created_at, source, payload",
        )
        .bind(millis(now + ttl))
        .bind(millis(now))
        .bind(i64::from(limit));
        let mut rows = self
            .write_one(false, move |tx| {
                Box::pin(async move { query.fetch_all(&mut *tx).await.map_err(port_error) })
            })
            .await?;
        rows.sort_by_key(|row| row.seq());
        rows.into_iter().map(StoredEvent::try_from).collect()
    }

    async fn mark_published(&self, seqs: &[i64]) -> Result<(), PortError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let seqs = seqs.to_vec();
        self.write(false, move |tx| {
            Box::pin(async move {
                for chunk in seqs.chunks(DELETE_CHUNK) {
                    let sql = format!("DELETE FROM outbox WHERE seq IN ({})", placeholders(chunk.len()));
                    let args: Vec<Arg> = chunk.iter().map(|s| Arg::Int(*s)).collect();
                    bind_args!(sqlx::query(AssertSqlSafe(sql)), &args)
                        .execute(&mut *tx)
                        .await
                        .map_err(port_error)?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn wait_for_new(&self, max_wait: Duration) {
        // A permit stored by a commit since the last wait makes this return at once.
        let _ = tokio::time::timeout(max_wait, self.outbox_signal.notified()).await;
    }

    async fn pending_count(&self) -> Result<u64, PortError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.reader)
            .await
            .map_err(port_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
