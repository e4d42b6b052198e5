//! `outbox` rows.

use super::{from_json, parse_id};
use crate::sql::from_millis;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ids::EventId;
use flow_domain::ports::StoredEvent;

/// A row of `outbox`.
#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    seq: i64,
    event_id: String,
    name: String,
    key: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    source: String,
    payload: super::Jv,
}

impl TryFrom<OutboxRow> for StoredEvent {
    type Error = PortError;

    fn try_from(row: OutboxRow) -> Result<Self, PortError> {
        Ok(StoredEvent {
            seq: row.seq,
            event: Event {
                id: parse_id::<EventId>(&row.event_id)?,
                name: row.name,
                key: row.key,
                created_at: from_millis(row.created_at)?,
                source: row.source,
                payload: from_json(row.payload, "event payload")?,
            },
        })
    }
}

impl OutboxRow {
    /// Its position in the outbox.
    pub(crate) fn seq(&self) -> i64 {
        self.seq
    }
}
