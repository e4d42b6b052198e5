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
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, FromRow, Row};
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

    async fn claim(&self, claimer: &str, limit: u32) -> Result<Vec<StoredEvent>, PortError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // One statement, run by the single writer: two relays never claim the same row.
        let query = self.bind_claim(sqlx::query(CLAIM), claimer, limit);
        let rows = self
            .write_one(false, move |tx| {
                Box::pin(async move { query.fetch_all(&mut *tx).await.map_err(port_error) })
            })
            .await?;
        Ok(claimed(rows))
    }

    async fn release_claims(&self, claimer_prefix: &str, current_claimer: &str) -> Result<u64, PortError> {
        let query = sqlx::query(RELEASE)
            .bind(claimer_prefix.to_string())
            .bind(claimer_prefix.to_string())
            .bind(current_claimer.to_string());
        self.write_one(false, move |tx| {
            Box::pin(async move {
                query.execute(&mut *tx).await.map(|done| done.rows_affected()).map_err(port_error)
            })
        })
        .await
    }

    async fn mark_published_then_claim(
        &self,
        published: &[i64],
        claimer: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, PortError> {
        if published.is_empty() || limit == 0 {
            self.mark_published(published).await?;
            return self.claim(claimer, limit).await;
        }
        // Both statements in one round trip to the writer, all or nothing by a savepoint that
        // rides along with them.
        let query = sqlx::query(AssertSqlSafe(DELETE_THEN_CLAIM.as_str())).bind(published_list(published)?);
        let query = self.bind_claim(query, claimer, limit);
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
        Ok(claimed(rows))
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

/// Claims the oldest unclaimed (or expired) events: binds the claim's expiry, the claimer,
/// now, and the limit.
const CLAIM: &str = "UPDATE outbox SET claimed_until = ?, claimed_by = ? WHERE seq IN (\
     SELECT seq FROM outbox WHERE claimed_until IS NULL OR claimed_until <= ? \
     ORDER BY seq LIMIT ?) \
     RETURNING seq, event_id, name, key, created_at, source, payload";

/// Releases the claims of other claimers with a prefix: binds the prefix twice, then the
/// current claimer.
const RELEASE: &str = "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL \
     WHERE claimed_until IS NOT NULL AND substr(claimed_by, 1, length(?)) = ? AND claimed_by <> ?";

/// Deletes published events: binds their numbers as a JSON array ([`published_list`]).
const DELETE_PUBLISHED: &str = "DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))";

/// [`DELETE_PUBLISHED`] then [`CLAIM`] in a savepoint.
static DELETE_THEN_CLAIM: LazyLock<String> =
    LazyLock::new(|| format!("SAVEPOINT relay; {DELETE_PUBLISHED}; {CLAIM}; RELEASE relay"));

/// `seqs` as the JSON array [`DELETE_PUBLISHED`] binds.
fn published_list(seqs: &[i64]) -> Result<String, PortError> {
    serde_json::to_string(seqs).map_err(|e| crate::error::unserializable("outbox numbers", e))
}

/// The claimed raw rows as events, in outbox order, each read alone: a row that cannot be
/// read as an event comes with its error.
fn claimed(rows: Vec<SqliteRow>) -> Vec<StoredEvent> {
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
    claimed
}

impl SqliteStore {
    /// Binds the arguments of [`CLAIM`] for up to `limit` events, claimed by `claimer` for the
    /// claim TTL.
    fn bind_claim<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
        claimer: &str,
        limit: u32,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.claim_ttl).unwrap_or(chrono::Duration::seconds(30));
        query.bind(millis(now + ttl)).bind(claimer.to_string()).bind(millis(now)).bind(i64::from(limit))
    }
}
