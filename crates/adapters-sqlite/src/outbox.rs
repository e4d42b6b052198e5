//! `Outbox`: the relay's side of the transactional outbox (claim, mark published, wait) and
//! direct appends by consumers whose only effect is to publish. Every write (claims and
//! deletions too) is one group-commit job (see `write`).

use crate::error::port_error;
use crate::rows::OutboxRow;
use crate::sql::millis;
use crate::store::SqliteStore;
use crate::write::{append_events, execute, record_consumed};
use async_trait::async_trait;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use flow_domain::ports::{Outbox, StoredEvent};
use sqlx::AssertSqlSafe;
use std::sync::LazyLock;
use std::time::Duration;

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
        // One statement, run by the single writer: two relays never claim the same row.
        let query = self.bind_claim(sqlx::query_as::<_, OutboxRow>(CLAIM), limit);
        let rows = self
            .write_one(false, move |tx| {
                Box::pin(async move { query.fetch_all(&mut *tx).await.map_err(port_error) })
            })
            .await?;
        claimed(rows)
    }

    async fn mark_published_then_claim(
        &self,
        published: &[i64],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, PortError> {
        if published.is_empty() || limit == 0 {
            self.mark_published(published).await?;
            return self.claim(limit).await;
        }
        // Both statements in one round trip to the writer, all or nothing by a savepoint that
        // rides along with them.
        let query = sqlx::query_as::<_, OutboxRow>(AssertSqlSafe(DELETE_THEN_CLAIM.as_str()))
            .bind(published_list(published)?);
        let query = self.bind_claim(query, limit);
        let rows = self
            .write_one(false, move |tx| {
                Box::pin(async move {
                    match query.fetch_all(&mut *tx).await {
                        Ok(rows) => Ok(rows),
                        Err(e) => {
                            // Undone, so that the job changed nothing, as `write_one` requires.
                            execute(tx, "ROLLBACK TO relay; RELEASE relay").await?;
                            Err(port_error(e))
                        }
                    }
                })
            })
            .await?;
        claimed(rows)
    }

    async fn mark_published(&self, seqs: &[i64]) -> Result<(), PortError> {
        if seqs.is_empty() {
            return Ok(());
        }
        // One statement of one text whatever the count, so it needs no savepoint of its own
        // and the writer connection prepares it once.
        let query = sqlx::query(DELETE_PUBLISHED).bind(published_list(seqs)?);
        self.write_one(false, move |tx| {
            Box::pin(async move { query.execute(&mut *tx).await.map(|_| ()).map_err(port_error) })
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

/// Claims the oldest unclaimed (or expired) events: binds the claim's expiry, now, and the limit.
const CLAIM: &str = "UPDATE outbox SET claimed_until = ? WHERE seq IN (\
     SELECT seq FROM outbox WHERE claimed_until IS NULL OR claimed_until <= ? \
     ORDER BY seq LIMIT ?) \
     RETURNING seq, event_id, name, key, created_at, source, payload";

/// Deletes published events: binds their numbers as a JSON array ([`published_list`]).
const DELETE_PUBLISHED: &str = "DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))";

/// [`DELETE_PUBLISHED`] then [`CLAIM`] in a savepoint.
static DELETE_THEN_CLAIM: LazyLock<String> =
    LazyLock::new(|| format!("SAVEPOINT relay; {DELETE_PUBLISHED}; {CLAIM}; RELEASE relay"));

/// `seqs` as the JSON array [`DELETE_PUBLISHED`] binds.
fn published_list(seqs: &[i64]) -> Result<String, PortError> {
    serde_json::to_string(seqs).map_err(|e| crate::error::unserializable("outbox numbers", e))
}

/// The claimed rows as events, in outbox order.
fn claimed(mut rows: Vec<OutboxRow>) -> Result<Vec<StoredEvent>, PortError> {
    rows.sort_by_key(OutboxRow::seq);
    rows.into_iter().map(StoredEvent::try_from).collect()
}

impl SqliteStore {
    /// Binds the arguments of [`CLAIM`] for up to `limit` events, claimed for the claim TTL.
    fn bind_claim<'q>(
        &self,
        query: sqlx::query::QueryAs<'q, sqlx::Sqlite, OutboxRow, sqlx::sqlite::SqliteArguments>,
        limit: u32,
    ) -> sqlx::query::QueryAs<'q, sqlx::Sqlite, OutboxRow, sqlx::sqlite::SqliteArguments> {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.claim_ttl).unwrap_or(chrono::Duration::seconds(30));
        query.bind(millis(now + ttl)).bind(millis(now)).bind(i64::from(limit))
    }
}
